"""Small JSON objects under control/ in the results bucket that say when the database is next needed,
so that functions on a timer can leave an idle database alone (a paused Aurora stays paused)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from loupe.config import get_settings
from loupe.observability import logger
from loupe.results.store import s3_client

# S3's answers to a conditional write whose condition no longer holds.
_CHANGED_SINCE_READ = ("PreconditionFailed", "ConditionalRequestConflict")


@dataclass(frozen=True)
class Mark:
    """An object as read: its content (None: absent or unreadable) and its version (None: absent)."""

    content: dict[str, Any] | None
    etag: str | None


def read(key: str) -> Mark:
    """The object at `key`; absent, unreadable or with no bucket configured, a mark without content."""
    bucket = get_settings().results_bucket
    if bucket is None:
        return Mark(None, None)
    try:
        found = s3_client().get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "NoSuchKey":
            logger.warning("control mark unreadable", extra={"key": key, "error_type": type(error).__name__})
        return Mark(None, None)
    except BotoCoreError as error:
        logger.warning("control mark unreadable", extra={"key": key, "error_type": type(error).__name__})
        return Mark(None, None)
    try:
        content = json.loads(found["Body"].read())
    except ValueError:
        content = None
    return Mark(content if isinstance(content, dict) else None, found["ETag"])


def write(key: str, content: dict[str, Any], *, unless_changed_since: Mark | None = None) -> bool:
    """Write the object; with `unless_changed_since`, only if it is still that version (absent if it was).
    False when it was not written; failures are logged, never raised (a mark only saves work)."""
    bucket = get_settings().results_bucket
    if bucket is None:
        return False
    condition: dict[str, str] = {}
    if unless_changed_since is not None:
        etag = unless_changed_since.etag
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
    try:
        s3_client().put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(content).encode(),
            ContentType="application/json",
            **condition,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in _CHANGED_SINCE_READ:
            logger.warning("control mark not written", extra={"key": key, "error_type": type(error).__name__})
        return False
    except BotoCoreError as error:
        logger.warning("control mark not written", extra={"key": key, "error_type": type(error).__name__})
        return False
    return True
