"""Feeds a local queue (moto: runs, exports, dead letters) to its function in batches, as Lambda's SQS
event source does: messages the handler reports as failed stay on the queue and come back after the
visibility timeout; the others are deleted."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

from infra.local.console import Console, Outcome
from infra.local.events import sqs_event
from infra.local.invokers import FunctionError, Invoke


def correlation_ids(messages: list[dict[str, Any]]) -> str:
    """The correlation ids Loupe's messages carry in their JSON body, for the batch's console line."""
    found: list[str] = []
    for message in messages:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            correlation = json.loads(message["Body"]).get("correlation_id")
            if correlation and correlation not in found:
                found.append(str(correlation))
    return ",".join(found) or "-"


class QueuePoller:
    def __init__(
        self, sqs: Any, queue_url: str, function: str, invoke: Invoke, console: Console | None = None
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._function = function
        self._invoke = invoke  # the stack's: the function's own workers, as Lambda would run it
        self._console = console
        self._arn: str = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._poll, name=f"{function}-queue-poller", daemon=True)

    def start(self) -> QueuePoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)
        # Close our keep-alive connections before moto stops, so the closing side (and its TIME_WAIT)
        # is this client's port, not moto's, which the next start may want to bind again.
        self._sqs.close()

    def poll_once(self) -> int:
        """One receive and one invocation; returns how many messages were handled."""
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=5,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        kind = f"sqs {len(messages)} record{'s' if len(messages) > 1 else ''}"
        with (
            self._console.background(self._function, kind, correlation_ids(messages))
            if self._console is not None
            else contextlib.nullcontext(Outcome())
        ) as outcome:
            result = self._invoke(self._function, sqs_event(messages, self._arn))
            failed = {item["itemIdentifier"] for item in (result or {}).get("batchItemFailures", [])}
            outcome.status = f"{len(failed)} failed" if failed else "ok"
        for message in messages:
            if message["MessageId"] not in failed:
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def _poll(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception as error:  # the local stack keeps polling, as the event source would
                # A failed invocation is on the console's line of its event already.
                if self._console is None or not isinstance(error, FunctionError):
                    print(f"{self._function} queue poller: {type(error).__name__}: {error}", flush=True)
                self._stopping.wait(2)
