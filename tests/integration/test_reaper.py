"""The lease reaper against the real PostgreSQL (SQS in moto): a runner that claimed a run and stopped is
simulated by a claim never finished, its lease moved into the past, and its message still in flight."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import boto3
import psycopg
import pytest

from infra.local.events import LocalLambdaContext, scheduled_event
from infra.local.template_routes import load_handler
from loupe import db, run_claims
from loupe.config import get_settings
from loupe.repositories import runs as runs_repository
from loupe.services.reaper import ReapCounts, reap
from tests import factories
from tests.integration import runs_support
from tests.integration.runs_support import receive, run_row

# pytest finds fixtures by the module's names: this makes the shared one this module's.
aws = runs_support.aws


def claimed_run(api: Any, token: str, datasource_id: str, queue_url: str) -> str:
    """A run queued through the API whose message a runner took, claimed, then died with."""
    response = api.post(
        "/api/v1/runs", json_body={"datasource_id": datasource_id, "sql": "SELECT 1"}, token=token
    )
    assert response.status == 202, response.body
    run_id: str = response.json()["id"]
    assert held(queue_url) == [run_id]
    with db.transaction():
        assert runs_repository.claim(UUID(run_id), 60) is not None
    return run_id


def held(queue_url: str) -> list[str]:
    """The run ids of the queued messages, taken as Lambda takes a runner's: in flight (not visible)
    until the runner returns, which a runner that died never does."""
    messages = boto3.client("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=3600
    )
    return [json.loads(message["Body"])["run_id"] for message in messages.get("Messages", [])]


def taken(queue_url: str) -> list[str]:
    """The run ids of the queued messages, which are deleted as a runner deletes what it handled."""
    messages = receive(queue_url)
    for message in messages:
        boto3.client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(message["Body"])["run_id"] for message in messages]


def lapse(database_url: str, run_id: str, attempts: int | None = None) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE runs SET lease_expires_at = now() - interval '1 minute',"
            " attempts = coalesce(%s, attempts) WHERE id = %s",
            (attempts, run_id),
        )


def test_lapsed_runs_are_requeued_until_their_attempts_run_out(
    api: Any, register: Any, clean_db: str, aws: str
) -> None:
    admin = register()
    datasource_id = factories.datasource(clean_db, admin.organization_id)
    retried, given_up, alive, locked = (
        claimed_run(api, admin.access_token, datasource_id, aws) for _ in range(4)
    )
    lapse(clean_db, retried)
    lapse(clean_db, given_up, attempts=3)
    lapse(clean_db, locked)

    with psycopg.connect(clean_db) as holder:
        # A runner taking the run over holds its row: the reaper passes it by instead of waiting.
        holder.execute("SELECT 1 FROM runs WHERE id = %s FOR UPDATE", (locked,))
        now = datetime.now(UTC)
        assert reap(now) == ReapCounts(requeued=1, failed=1, cancelled=0)

    again = run_row(clean_db, retried)
    assert (again["status"], again["attempts"], again["lease_expires_at"]) == ("queued", 1, None)
    with psycopg.connect(clean_db) as conn:
        enqueued = conn.execute("SELECT enqueued_at FROM runs WHERE id = %s", (retried,)).fetchone()
    assert enqueued == (now,)
    assert taken(aws) == [retried]
    failed = run_row(clean_db, given_up)
    assert (failed["status"], failed["error"]["code"]) == ("failed", "lease_expired")
    assert run_row(clean_db, alive)["status"] == "running"
    assert run_row(clean_db, locked)["status"] == "running"

    # The lock is gone: the next pass takes the last lapsed run; the re-queued one is claimed again.
    assert reap(datetime.now(UTC)) == ReapCounts(requeued=1, failed=0, cancelled=0)
    assert taken(aws) == [locked]
    with db.transaction():
        reclaimed = runs_repository.claim(UUID(retried), 60)
    assert reclaimed is not None
    assert reclaimed.attempts == 2


def test_the_scheduled_reaper_function_ends_a_cancelled_run_instead_of_retrying_it(
    api: Any, register: Any, clean_db: str, aws: str
) -> None:
    admin = register()
    datasource_id = factories.datasource(clean_db, admin.organization_id)
    cancelled, crashed = (claimed_run(api, admin.access_token, datasource_id, aws) for _ in range(2))
    # The cancel came while its runner was dying: the mark is set but nobody stopped the statement.
    assert api.post(f"/api/v1/runs/{cancelled}/cancel", token=admin.access_token).status == 202
    lapse(clean_db, cancelled)
    lapse(clean_db, crashed)

    counts = load_handler("ReaperFunction")(
        scheduled_event("arn:aws:scheduler:us-east-1:123456789012:schedule/default/reaper"),
        LocalLambdaContext("ReaperFunction", timeout_seconds=60),
    )

    assert counts == {"requeued": 1, "failed": 0, "cancelled": 1}
    ended = run_row(clean_db, cancelled)
    assert (ended["status"], ended["error"]["code"]) == ("cancelled", "cancelled")
    assert run_row(clean_db, crashed)["status"] == "queued"
    assert taken(aws) == [crashed]


def test_with_no_run_message_in_a_queue_the_reaper_leaves_the_database_alone(
    api: Any, register: Any, clean_db: str, aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = register()
    datasource_id = factories.datasource(clean_db, admin.organization_id)
    run_id = claimed_run(api, admin.access_token, datasource_id, aws)
    lapse(clean_db, run_id)
    # Its message gone (a duplicate delivery deleted it), a claim within a lease's length still says a run
    # may be in flight: the reaper looks.
    boto3.client("sqs").purge_queue(QueueUrl=aws)
    now = datetime.now(UTC)
    run_claims.claimed(now - run_claims.WINDOW + timedelta(minutes=1))
    assert reap(now) == ReapCounts(requeued=1, failed=0, cancelled=0)
    assert taken(aws) == [run_id]  # the re-queued message, consumed as a runner would
    # No message and no claim for longer than a lease lasts: no run is in flight, and the reaper asks
    # nothing of the database, which here could not even be reached.
    run_claims.claimed(now - run_claims.WINDOW)
    db.close()
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/unreachable")
    get_settings.cache_clear()
    assert reap(now) == ReapCounts()
    assert run_row(clean_db, run_id)["status"] == "queued"
