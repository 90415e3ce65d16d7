"""Readiness checks of the dependencies a request needs: the database, and where configured the runs
queue and the results bucket."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loupe import db
from loupe.config import get_settings
from loupe.observability import logger


def check_dependencies() -> dict[str, str]:
    settings = get_settings()
    checks = {"database": _check("database", _ping_database)}
    queue_url, bucket = settings.runs_queue_url, settings.results_bucket
    if queue_url is not None:
        checks["queue"] = _check("queue", lambda: _queue_answers(queue_url))
    if bucket is not None:
        checks["bucket"] = _check("bucket", lambda: _bucket_answers(bucket))
    return checks


def _check(name: str, probe: Callable[[], Any]) -> str:
    try:
        probe()
    except Exception as error:  # any failure means "not ready"; the reason goes to the log only
        logger.warning(f"readiness: {name} check failed", extra={"error_type": type(error).__name__})
        return "unavailable"
    return "ok"


def _ping_database() -> None:
    with db.transaction() as conn:
        conn.execute("SELECT 1")


def _queue_answers(queue_url: str) -> None:
    # Imported here: the health function's cold start does not pay for boto3 until it is asked.
    from loupe.queue import sqs_client

    sqs_client().get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])


def _bucket_answers(bucket: str) -> None:
    from loupe.results.store import s3_client

    s3_client().head_bucket(Bucket=bucket)
