"""When the scheduler next has work, kept outside the database (one small object in the results
bucket): an idle minute's tick reads it and leaves the database alone, so a paused Aurora stays paused."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError

from loupe.config import get_settings
from loupe.observability import logger
from loupe.results.store import s3_client

KEY = "control/scheduler-next-tick.json"
# The longest the scheduler trusts the object without looking at the database: it bounds how late
# work could start should a change ever fail to poke it.
HORIZON = timedelta(hours=6)
_LOOK_NOW = datetime.fromtimestamp(0, UTC)
# S3's answers to a conditional write whose condition no longer holds.
_CHANGED_SINCE_READ = ("PreconditionFailed", "ConditionalRequestConflict")


@dataclass(frozen=True)
class Mark:
    """The object as read: when work is next due (None: no object, look now), and its version."""

    due_at: datetime | None
    etag: str | None

    def idle_at(self, now: datetime) -> bool:
        return self.due_at is not None and now < self.due_at


def read() -> Mark:
    """The mark, or one saying "look now" when there is none or it cannot be read."""
    bucket = get_settings().results_bucket
    if bucket is None:
        return Mark(None, None)
    try:
        found = s3_client().get_object(Bucket=bucket, Key=KEY)
        due_at = datetime.fromisoformat(json.loads(found["Body"].read())["due_at"])
    except (ClientError, BotoCoreError, ValueError, KeyError, TypeError):
        return Mark(None, None)
    return Mark(due_at, found["ETag"])


def keep(due_at: datetime, now: datetime, read_before: Mark) -> bool:
    """Write the next due time, unless the object changed since `read_before` (a change poked it while
    the tick looked at the database: its poke wins). False when it was not written."""
    bucket = get_settings().results_bucket
    if bucket is None:
        return False
    condition = {"IfMatch": read_before.etag} if read_before.etag else {"IfNoneMatch": "*"}
    body = json.dumps({"due_at": min(due_at, now + HORIZON).isoformat()}).encode()
    try:
        s3_client().put_object(Bucket=bucket, Key=KEY, Body=body, ContentType="application/json", **condition)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _CHANGED_SINCE_READ:
            return False
        raise
    return True


def poke() -> None:
    """Something may be due sooner than the mark says (a schedule saved, an alert to deliver): the next
    tick looks at the database. Called after the change commits; a failure only delays, by HORIZON at
    most, so it is logged, not raised."""
    bucket = get_settings().results_bucket
    if bucket is None:
        return
    try:
        body = json.dumps({"due_at": _LOOK_NOW.isoformat()}).encode()
        s3_client().put_object(Bucket=bucket, Key=KEY, Body=body, ContentType="application/json")
    except (ClientError, BotoCoreError) as error:
        logger.warning("scheduler not poked", extra={"error_type": type(error).__name__})
