"""The janitor against the real PostgreSQL and moto's S3: exactly the runs, results and objects past each
organization's retention go, expired credentials and tokens are purged, and a second pass does nothing."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import boto3
import psycopg
import pytest

from infra.local.events import LocalLambdaContext, scheduled_event
from infra.local.template_routes import load_handler
from loupe.results.store import result_prefix
from loupe.services import janitor
from tests.integration import runs_support
from tests.integration.runs_support import BUCKET, deliver, run_query, setup_org

aws = runs_support.aws
postgres_database = runs_support.postgres_database

RULE = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/JanitorFunction"
NOTHING_LEFT = {
    "results_expired": 0,
    "runs_deleted": 0,
    "objects_deleted": 0,
    "sessions_purged": 0,
    "refresh_tokens_purged": 0,
    "password_resets_purged": 0,
    "invitations_purged": 0,
    "login_attempts_purged": 0,
    "rate_limit_hits_purged": 0,
    "alert_firings_purged": 0,
    "revisions_purged": 0,
}


def run_janitor() -> dict[str, int]:
    result: dict[str, int] = load_handler("JanitorFunction")(
        scheduled_event(RULE), LocalLambdaContext("JanitorFunction", timeout_seconds=900)
    )
    return result


def finished_run(api: Any, token: str, query_id: str, database_url: str, aws: str, days_ago: int) -> str:
    """A run that really executed (its result is in S3), then dated `days_ago` days back."""
    started = run_query(api, token, query_id, parameters={"minimum": 1 + days_ago % 5})
    assert started.status == 202, started.body
    run_id = str(started.json()["id"])
    deliver(aws)
    runs_support.drain(aws)
    age = timedelta(days=days_ago)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE runs SET created_at = created_at - %s, started_at = started_at - %s,"
            " finished_at = finished_at - %s WHERE id = %s AND status = 'succeeded'",
            (age, age, age, run_id),
        )
    return run_id


def objects(organization_id: str, run_id: str) -> list[str]:
    prefix = result_prefix(UUID(organization_id), UUID(run_id))
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [stored["Key"] for stored in listed.get("Contents", [])]


def run_state(database_url: str, run_id: str) -> tuple[str, bool] | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT status, result_location IS NOT NULL FROM runs WHERE id = %s", (run_id,)
        ).fetchone()
    return None if row is None else (row[0], row[1])


def set_settings(api: Any, token: str, settings: dict[str, Any]) -> None:
    changed = api.request(
        "PATCH", "/api/v1/organizations/current", json_body={"settings": settings}, token=token
    )
    assert changed.status == 200, changed.body


def test_runs_and_results_past_each_organizations_retention_go_with_their_objects(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    keeper, _, keeper_query = setup_org(api, register, postgres_database)  # defaults: results 30, runs 90
    strict, _, strict_query = setup_org(api, register, postgres_database)
    set_settings(api, strict.access_token, {"result_retention_days": 7, "run_retention_days": 10})
    token = keeper.access_token
    recent = finished_run(api, token, keeper_query, clean_db, aws, 20)
    result_expired = finished_run(api, token, keeper_query, clean_db, aws, 40)
    exported = api.get(f"/api/v1/runs/{result_expired}/export", query={"format": "csv"}, token=token)
    assert exported.status == 302, exported.body
    too_old = finished_run(api, token, keeper_query, clean_db, aws, 100)
    strict_expired = finished_run(api, strict.access_token, strict_query, clean_db, aws, 8)
    strict_deleted = finished_run(api, strict.access_token, strict_query, clean_db, aws, 11)
    with psycopg.connect(clean_db) as conn:
        # A run that never finished is the reaper's, whatever its age.
        conn.execute(
            "INSERT INTO runs (organization_id, datasource_id, sql, cache_key, status, created_at)"
            " SELECT organization_id, datasource_id, sql, cache_key, 'queued', now() - interval '1000 days'"
            " FROM runs WHERE id = %s",
            (recent,),
        )
    keeper_org, strict_org = keeper.organization_id, strict.organization_id
    assert len(objects(keeper_org, result_expired)) == 3, "manifest, a chunk and the export"

    counts = run_janitor()

    assert counts == NOTHING_LEFT | {"results_expired": 2, "runs_deleted": 2, "objects_deleted": 9}
    assert run_state(clean_db, recent) == ("succeeded", True)
    assert len(objects(keeper_org, recent)) == 2
    assert run_state(clean_db, result_expired) == ("succeeded", False)
    assert objects(keeper_org, result_expired) == []
    assert run_state(clean_db, too_old) is None
    assert objects(keeper_org, too_old) == []
    assert run_state(clean_db, strict_expired) == ("succeeded", False)
    assert run_state(clean_db, strict_deleted) is None
    assert objects(strict_org, strict_deleted) == []
    with psycopg.connect(clean_db) as conn:
        (queued,) = conn.execute("SELECT count(*) FROM runs WHERE status = 'queued'").fetchone() or (0,)
    assert queued == 1

    shown = api.get(f"/api/v1/runs/{result_expired}", token=token).json()
    assert (shown["status"], shown["results_expired"]) == ("succeeded", True)
    assert api.get(f"/api/v1/runs/{recent}", token=token).json()["results_expired"] is False
    gone = api.get(f"/api/v1/runs/{result_expired}/results", token=token)
    assert (gone.status, gone.json()["error"]["code"]) == (410, "result_expired")
    assert (
        api.get(f"/api/v1/runs/{result_expired}/export", query={"format": "csv"}, token=token).status == 410
    )

    assert run_janitor() == NOTHING_LEFT


def test_expired_credentials_tokens_and_invitations_are_purged(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    org, user = admin.organization_id, admin.user_id
    schedule_id = api.post(
        "/api/v1/schedules",
        json_body={"name": "s", "query_id": query_id, "cron": "0 * * * *", "parameters": {"minimum": 1}},
        token=admin.access_token,
    ).json()["id"]

    def token_hash() -> bytes:
        return secrets.token_bytes(32)

    tables = (
        "sessions",
        "refresh_tokens",
        "password_resets",
        "invitations",
        "login_attempts",
        "alert_firings",
    )

    def table_counts() -> dict[str, int]:
        with psycopg.connect(clean_db) as conn:
            return {
                table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
                for table in tables
            }

    before = table_counts()
    now = datetime.now(UTC)
    with psycopg.connect(clean_db) as conn:
        sessions = {
            name: conn.execute(
                "INSERT INTO sessions (organization_id, user_id, expires_at, revoked_at)"
                " VALUES (%s, %s, %s, %s) RETURNING id",
                (org, user, now + expires, now - revoked if revoked else None),
            ).fetchone()[0]  # type: ignore[index]
            for name, expires, revoked in (
                ("expired", timedelta(days=-1), None),
                ("revoked_long_ago", timedelta(days=5), timedelta(days=2)),
                ("revoked_just_now", timedelta(days=5), timedelta(minutes=1)),
            )
        }
        for expires in (timedelta(days=-1), timedelta(days=1)):
            conn.execute(
                "INSERT INTO refresh_tokens (organization_id, session_id, token_hash, expires_at)"
                " VALUES (%s, %s, %s, now() + %s)",
                (org, sessions["revoked_just_now"], token_hash(), expires),
            )
        for expires, used in (
            (timedelta(minutes=-1), False),
            (timedelta(minutes=20), True),
            (timedelta(minutes=20), False),
        ):
            conn.execute(
                "INSERT INTO password_resets (user_id, token_hash, expires_at, used_at)"
                " VALUES (%s, %s, now() + %s, CASE WHEN %s THEN now() END)",
                (user, token_hash(), expires, used),
            )
        for expires in (timedelta(days=-1), timedelta(days=6)):
            conn.execute(
                "INSERT INTO invitations (organization_id, email, role, token_hash, expires_at)"
                " VALUES (%s, %s, 'viewer', %s, now() + %s)",
                (org, f"{secrets.token_hex(4)}@example.com", token_hash(), expires),
            )
        for age in (timedelta(days=2), timedelta(minutes=5)):
            conn.execute(
                "INSERT INTO login_attempts (email, succeeded, created_at)"
                " VALUES ('a@example.com', false, now() - %s)",
                (age,),
            )
        for age in (timedelta(days=91), timedelta(days=89)):
            conn.execute(
                "INSERT INTO alert_firings (organization_id, schedule_id, rule_id, rule, created_at)"
                " VALUES (%s, %s, gen_random_uuid(), '{}', now() - %s)",
                (org, schedule_id, age),
            )

    added = {"sessions": 3, "refresh_tokens": 2, "password_resets": 3, "invitations": 2}
    added |= {"login_attempts": 2, "alert_firings": 2}
    assert table_counts() == {table: before[table] + added[table] for table in tables}

    counts = run_janitor()

    purged = {"sessions": 2, "refresh_tokens": 1, "password_resets": 2, "invitations": 1}
    purged |= {"login_attempts": 1, "alert_firings": 1}
    assert counts == NOTHING_LEFT | {f"{table}_purged": count for table, count in purged.items()}
    assert table_counts() == {table: before[table] + added[table] - purged[table] for table in tables}
    with psycopg.connect(clean_db) as conn:
        kept = {row[0] for row in conn.execute("SELECT id FROM sessions").fetchall()}
    assert sessions["revoked_just_now"] in kept
    assert sessions["expired"] not in kept
    # The caller's own session is live: it still works.
    assert api.get("/api/v1/auth/me", token=admin.access_token).status == 200
    assert run_janitor() == NOTHING_LEFT


def test_work_goes_in_bounded_batches_and_stops_at_the_deadline(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    old_runs = [
        finished_run(api, admin.access_token, query_id, clean_db, aws, 100 + index) for index in range(5)
    ]
    with psycopg.connect(clean_db) as conn:
        for _ in range(5):
            conn.execute(
                "INSERT INTO login_attempts (email, succeeded, created_at)"
                " VALUES ('b@example.com', true, now() - interval '3 days')"
            )
    monkeypatch.setattr(janitor, "RUN_BATCH", 2)
    monkeypatch.setattr(janitor, "PURGE_BATCH", 2)

    past = datetime.now(UTC) - timedelta(seconds=1)
    assert janitor.sweep(datetime.now(UTC), deadline=past) == NOTHING_LEFT
    assert all(run_state(clean_db, run_id) is not None for run_id in old_runs)

    counts = janitor.sweep(datetime.now(UTC))
    assert (counts["runs_deleted"], counts["objects_deleted"], counts["login_attempts_purged"]) == (5, 10, 5)
    assert all(run_state(clean_db, run_id) is None for run_id in old_runs)


def test_revisions_past_the_count_or_the_age_are_pruned_but_never_the_newest(
    api: Any, register: Any, clean_db: str, aws: str
) -> None:
    account = register()
    token = account.access_token
    path = "/api/v1/canvases"
    made = api.post(path, json_body={"name": "v1", "time_preset": "last_7d"}, token=token).json()
    item = f"{path}/{made['id']}"
    for name in ("v2", "v3", "v4"):
        etag = api.get(item, token=token).header("ETag")
        changed = api.request(
            "PATCH", item, json_body={"name": name}, token=token, headers={"If-Match": etag}
        )
        assert changed.status == 200, changed.body
    other = api.post(path, json_body={"name": "old", "time_preset": "last_7d"}, token=token).json()
    gone = api.post(path, json_body={"name": "gone", "time_preset": "last_7d"}, token=token).json()
    with psycopg.connect(clean_db) as conn:
        # The only revision of `other` is old, yet the newest; `gone` went behind the service's back.
        conn.execute(
            "UPDATE revisions SET created_at = now() - interval '400 days' WHERE resource_id = %s",
            (other["id"],),
        )
        conn.execute("DELETE FROM canvases WHERE id = %s", (gone["id"],))
    set_settings(api, token, {"revision_retention_count": 2})
    assert run_janitor() == NOTHING_LEFT | {"revisions_purged": 3}
    numbers = [entry["number"] for entry in api.get(f"{item}/revisions", token=token).json()["items"]]
    assert numbers == [4, 3]
    assert api.get(f"{path}/{other['id']}/revisions", token=token).json()["total"] == 1
    set_settings(api, token, {"revision_retention_count": 100, "revision_retention_days": 1})
    with psycopg.connect(clean_db) as conn:
        conn.execute(
            "UPDATE revisions SET created_at = now() - interval '2 days'"
            " WHERE resource_id = %s AND number = 3",
            (made["id"],),
        )
    assert run_janitor() == NOTHING_LEFT | {"revisions_purged": 1}
    assert [entry["number"] for entry in api.get(f"{item}/revisions", token=token).json()["items"]] == [4]
    assert run_janitor() == NOTHING_LEFT
