"""A handler the worker-process tests stand in for a function's: its query string says what to do."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    query = event.get("queryStringParameters") or {}
    action = query.get("do", "pid")
    if action == "crash":
        os._exit(3)
    if action == "raise":
        raise RuntimeError("handler crashed")
    if action == "block":
        # Says it has started, then holds the event until the test releases it.
        Path(query["started"]).touch()
        while not Path(query["release"]).exists():
            time.sleep(0.01)
    if action == "sleep":
        time.sleep(float(query["seconds"]))
    if action == "big":
        return {"statusCode": 200, "body": "x" * int(query["bytes"])}
    return {"statusCode": 200, "body": json.dumps({"pid": os.getpid(), "function": context.function_name})}
