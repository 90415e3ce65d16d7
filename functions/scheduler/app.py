"""Lambda entry point of the scheduler, fired every minute by an EventBridge schedule: due schedules
become runs, runs not yet queued are sent to the scheduled-runs queue, alerts not yet delivered are
sent again."""

from dataclasses import asdict
from datetime import datetime, timedelta

from loupe.entry.scheduled import scheduled_function
from loupe.services.scheduler import tick


def _tick(now: datetime, deadline: datetime) -> dict[str, int]:
    return asdict(tick(now, deadline))


# Kept back from the invocation's time for the outbox passes that follow the last batch.
lambda_handler = scheduled_function(_tick, "scheduler tick", stop_margin=timedelta(seconds=15))
