"""One local execution environment (`python -m infra.local.function_worker FUNCTION FD [MODULE:HANDLER]`):
imports the function's handler once, then serves the events its pool writes on stdin, one at a time.

Each answer is one line of JSON on file descriptor FD (stdout and stderr are the function's log): first
{"ready": pid} or the init error, then {"result": ...} or {"errorType": ..., "errorMessage": ...} per event.
Before each answer the log gets an end-of-event mark, so the stack knows which lines were the event's.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import traceback
from typing import IO, Any

from infra.local.console import END_OF_EVENT
from infra.local.events import LocalLambdaContext
from infra.local.template_routes import load_handler
from loupe import db


def error_reply(error: BaseException) -> dict[str, str]:
    """What Lambda reports of a failed invocation; the traceback goes to the function's log."""
    traceback.print_exc()
    return {"errorType": type(error).__name__, "errorMessage": str(error)}


def end_of_event() -> None:
    """Mark the end of what the init or the event wrote; stderr is the same pipe as stdout."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.write(1, END_OF_EVENT)


def reply(replies: IO[bytes], message: dict[str, Any]) -> None:
    try:
        line = json.dumps(message).encode()
    except (TypeError, ValueError) as error:  # Lambda's Runtime.MarshalError
        line = json.dumps(error_reply(error)).encode()
    end_of_event()
    replies.write(line + b"\n")
    replies.flush()


def import_handler(function: str, handler: str | None) -> Any:
    """The template's handler of `function`, or `handler` (MODULE:ATTRIBUTE) standing in for it."""
    if handler is None:
        return load_handler(function)
    module, _, attribute = handler.partition(":")
    return getattr(importlib.import_module(module), attribute)


def main(argv: list[str]) -> int:
    function, replies_fd, *stand_in = argv
    # Ctrl-C reaches the whole terminal's process group: the stack stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with os.fdopen(int(replies_fd), "wb") as replies:
        try:
            handler = import_handler(function, stand_in[0] if stand_in else None)
        except Exception as error:  # Lambda's Runtime.ImportModuleError: the pool reports it
            reply(replies, error_reply(error))
            return 1
        reply(replies, {"ready": os.getpid()})
        try:
            # EOF: the stack closed the pipe (it is stopping, or it died).
            for line in sys.stdin.buffer:
                request = json.loads(line)
                context = LocalLambdaContext(function, request["timeout"], request["memory"])
                try:
                    answer = {"result": handler(request["event"], context)}
                except Exception as error:
                    answer = error_reply(error)
                reply(replies, answer)
        finally:
            db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
