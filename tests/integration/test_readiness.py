"""/health/ready with the runs queue and the results bucket configured (moto): each answers, and a
missing one makes the function not ready."""

from __future__ import annotations

from typing import Any

import pytest

from loupe.config import get_settings
from tests.integration import runs_support

aws = runs_support.aws


def test_the_queue_and_the_bucket_are_checked(api: Any, clean_db: str, aws: str) -> None:
    response = api.get("/api/v1/health/ready")
    assert response.status == 200, response.body
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "queue": "ok", "bucket": "ok"}}


@pytest.mark.parametrize(
    ("variable", "value", "check"),
    [
        ("LOUPE_RESULTS_BUCKET", "no-such-bucket-here", "bucket"),
        ("LOUPE_RUNS_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue", "queue"),
    ],
)
def test_a_missing_dependency_is_503(
    api: Any, clean_db: str, aws: str, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, check: str
) -> None:
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    response = api.get("/api/v1/health/ready")
    assert response.status == 503
    assert response.json()["checks"][check] == "unavailable"
    assert response.json()["checks"]["database"] == "ok"
