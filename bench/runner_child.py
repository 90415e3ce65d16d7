"""A queue's function in a fresh process, for one batch: `python -m bench.runner_child QUEUE_URL [FUNCTION]`
(the runner by default, or the export function).

Prints `BENCH_RESULT {json}`: the invocation's wall time and the process's peak resident memory, which
the parent compares across row counts. The environment (database, moto, settings) comes from the parent.
"""

import json
import resource
import sys
import time
from pathlib import Path

import boto3

from infra.local.events import LocalLambdaContext, sqs_event
from infra.local.template_routes import load_handler

RESULT_MARKER = "BENCH_RESULT "


def peak_rss_kib() -> int:
    """This process's peak resident memory. Not getrusage's ru_maxrss: Linux carries it across fork and
    exec, so a child started by a large parent reports the parent's size."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> int:
    queue_url = sys.argv[1]
    function = sys.argv[2] if len(sys.argv) > 2 else "RunnerFunction"
    handler = load_handler(function)
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, AttributeNames=["All"])[
        "Messages"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    started = time.perf_counter()
    result = handler(sqs_event(messages, arn), LocalLambdaContext(function, 900, 1024))
    seconds = time.perf_counter() - started
    for message in messages:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    report = {"seconds": seconds, "peak_rss_mb": peak_rss_kib() / 1024, "result": result}
    sys.stdout.write(RESULT_MARKER + json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
