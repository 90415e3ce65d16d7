"""One cold start in a fresh process: `python -m bench.cold candidate|floor`, request JSON on stdin.

Prints `BENCH_RESULT {json}` with in-process timings; the parent measures the process's wall time.
"""

import time

STARTED = time.perf_counter()

import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

RESULT_MARKER = "BENCH_RESULT "

# Modules of the dev venv the deployed layer lacks (bench/layer.py): importing them fails, as in Lambda.
for _module in filter(None, os.environ.get("BENCH_BLOCKED_MODULES", "").split(",")):
    sys.modules.setdefault(_module, None)  # type: ignore[arg-type]


class _Context:
    """The Lambda context attributes Powertools reads."""

    function_name = "AuthFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:AuthFunction"
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/AuthFunction"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def candidate(payload: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """Import the function's module from its CodeUri as Lambda does, then serve the request."""
    spec = importlib.util.spec_from_file_location("loupe_function_AuthFunction", payload["handler_path"])
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    handler = getattr(module, payload["handler_name"])
    imported = time.perf_counter()
    response: dict[str, Any] = handler(payload["event"], _Context())
    return imported, response


def floor(payload: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """Import only psycopg, pydantic and the Powertools resolver, then run the same SQL by hand."""
    from uuid import UUID

    import psycopg  # noqa: F401
    import pydantic  # noqa: F401
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver  # noqa: F401

    from bench import floor, statements

    imported = time.perf_counter()
    caller = statements.Caller(
        user_id=UUID(payload["user_id"]),
        session_id=UUID(payload["session_id"]),
        organization_id=UUID(payload["organization_id"]),
    )
    # Left open, as the handler leaves its connection for the next invocation.
    conn = statements.connect(os.environ["DATABASE_URL"])
    return imported, floor.respond(statements.run(conn, caller))


def main() -> None:
    mode = sys.argv[1]
    payload = json.loads(sys.stdin.read())
    imported, response = candidate(payload) if mode == "candidate" else floor(payload)
    done = time.perf_counter()
    status = response.get("statusCode")
    result = {
        "mode": mode,
        "status": status,
        "import_s": imported - STARTED,
        "request_s": done - imported,
        "total_s": done - STARTED,
    }
    sys.stdout.flush()
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    if status != 200:
        sys.stderr.write(f"unexpected response: {response}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
