"""Lambda entry point of the lease reaper, fired by an EventBridge schedule: runs whose runner stopped
mid-run (their lease lapsed) go back to the queue, or fail once they have used up their attempts."""

from dataclasses import asdict
from datetime import datetime, timedelta

from loupe.entry.scheduled import scheduled_function
from loupe.services.reaper import reap


def _reap(now: datetime, deadline: datetime) -> dict[str, int]:
    # One bounded batch per invocation: it ends long before any deadline.
    return asdict(reap(now))


lambda_handler = scheduled_function(_reap, "reaped lapsed runs", stop_margin=timedelta(0))
