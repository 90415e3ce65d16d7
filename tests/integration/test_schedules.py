"""Schedules through real API Gateway events and a real PostgreSQL: cron, time zones, the minimum
interval, parameters checked against the query, tenancy, ETags and the schedule's runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.types.json import Jsonb

from loupe.config import get_settings
from tests import factories

SCHEDULES = "/api/v1/schedules"

PARAMETERS = [
    {"name": "region", "type": "enum", "options": ["eu", "us"], "default": None, "required": True},
    {"name": "since", "type": "date", "options": None, "default": "2026-01-01", "required": True},
    {"name": "limit", "type": "number", "options": None, "default": None, "required": False},
]


def set_role(database_url: str, user_id: str, role: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE memberships SET role = %s WHERE user_id = %s", (role, user_id))


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, response.body
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    return error


def query_with_parameters(database_url: str, organization_id: str) -> str:
    query_id = factories.query(
        database_url,
        organization_id,
        sql="SELECT * FROM t WHERE r = {{ region }} AND d > {{ since }} LIMIT {{ limit }}",
    )
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE queries SET parameters = %s WHERE id = %s", (Jsonb(PARAMETERS), query_id))
    return query_id


def parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def test_create_computes_next_run_in_the_zone_and_stores_utc(api: Any, register: Any, clean_db: str) -> None:
    account = register()
    query_id = factories.query(clean_db, account.organization_id)
    body = {"name": "Morning", "query_id": query_id, "cron": " 0  7 * * * ", "timezone": "America/New_York"}
    created = api.post(SCHEDULES, json_body=body, token=account.access_token)
    assert created.status == 201, created.body
    made = created.json()
    assert created.header("Location") == f"{SCHEDULES}/{made['id']}"
    assert made["cron"] == "0 7 * * *"
    assert made["enabled"] is True
    assert made["parameters"] == {}
    next_run = parse(made["next_run_at"])
    assert next_run.utcoffset() == timedelta(0)
    assert datetime.now(UTC) < next_run <= datetime.now(UTC) + timedelta(days=1)
    local = next_run.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (7, 0)
    with psycopg.connect(clean_db) as conn:
        row = conn.execute("SELECT next_run_at FROM schedules WHERE id = %s", (made["id"],)).fetchone()
    assert row is not None
    assert row[0] == next_run
    read = api.get(f"{SCHEDULES}/{made['id']}", token=account.access_token)
    assert read.json() == made


def test_timezone_defaults_to_utc(api: Any, register: Any, clean_db: str) -> None:
    account = register()
    query_id = factories.query(clean_db, account.organization_id)
    made = api.post(
        SCHEDULES,
        json_body={"name": "s", "query_id": query_id, "cron": "30 * * * *"},
        token=account.access_token,
    ).json()
    assert made["timezone"] == "UTC"
    assert parse(made["next_run_at"]).minute == 30


@pytest.mark.parametrize(
    ("cron", "issue"),
    [
        ("* * * *", "five fields"),
        ("0 0 * * * *", "five fields"),
        ("@daily", "five fields"),
        ("61 * * * *", "not a valid cron"),
        ("0 0 * 13 *", "not a valid cron"),
        ("0 0 30 2 *", "never fires"),
        ("* * * * *", "minimum"),
        ("0,3 9 * * *", "minimum"),
    ],
)
def test_bad_cron_is_422(api: Any, register: Any, clean_db: str, cron: str, issue: str) -> None:
    account = register()
    query_id = factories.query(clean_db, account.organization_id)
    response = api.post(
        SCHEDULES, json_body={"name": "s", "query_id": query_id, "cron": cron}, token=account.access_token
    )
    error = assert_error(response, 422, "validation_error")
    assert error["details"][0]["field"] == "body.cron"
    assert issue in error["details"][0]["issue"]


def test_minimum_interval_is_configurable(
    api: Any, register: Any, clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = register()
    query_id = factories.query(clean_db, account.organization_id)
    body = {"name": "s", "query_id": query_id, "cron": "*/10 * * * *"}
    assert api.post(SCHEDULES, json_body=body, token=account.access_token).status == 201
    monkeypatch.setenv("LOUPE_SCHEDULE_MIN_INTERVAL_SECONDS", "900")
    get_settings.cache_clear()
    assert_error(api.post(SCHEDULES, json_body=body, token=account.access_token), 422, "validation_error")
    monkeypatch.setenv("LOUPE_SCHEDULE_MIN_INTERVAL_SECONDS", "60")
    get_settings.cache_clear()
    every_minute = {**body, "cron": "* * * * *"}
    assert api.post(SCHEDULES, json_body=every_minute, token=account.access_token).status == 201


@pytest.mark.parametrize("timezone", ["Mars/Olympus_Mons", "../../etc/passwd", "", "UTC+1"])
def test_unknown_timezone_is_422(api: Any, register: Any, clean_db: str, timezone: str) -> None:
    account = register()
    query_id = factories.query(clean_db, account.organization_id)
    response = api.post(
        SCHEDULES,
        json_body={"name": "s", "query_id": query_id, "cron": "0 7 * * *", "timezone": timezone},
        token=account.access_token,
    )
    error = assert_error(response, 422, "validation_error")
    assert error["details"][0]["field"].startswith("body.timezone")


def test_parameters_are_checked_against_the_query(api: Any, register: Any, clean_db: str) -> None:
    account = register()
    query_id = query_with_parameters(clean_db, account.organization_id)

    def create(parameters: dict[str, Any]) -> Any:
        body = {"name": "s", "query_id": query_id, "cron": "0 7 * * *", "parameters": parameters}
        return api.post(SCHEDULES, json_body=body, token=account.access_token)

    made = create({"region": "eu"})
    assert made.status == 201, made.body
    assert made.json()["parameters"] == {"region": "eu"}
    assert create({"region": "us", "since": "2026-02-01", "limit": 10}).status == 201

    missing = assert_error(create({}), 422, "validation_error")
    assert missing["details"] == [
        {"field": "body.parameters.region", "issue": "required: the query gives it no default"}
    ]
    wrong = assert_error(
        create({"region": "asia", "since": "yesterday", "limit": "ten", "other": 1}), 422, "validation_error"
    )
    assert {detail["field"] for detail in wrong["details"]} == {
        "body.parameters.region",
        "body.parameters.since",
        "body.parameters.limit",
        "body.parameters.other",
    }


def test_another_organizations_query_is_404(api: Any, register: Any, clean_db: str) -> None:
    mine, theirs = register(), register()
    foreign = factories.query(clean_db, theirs.organization_id)
    response = api.post(
        SCHEDULES, json_body={"name": "s", "query_id": foreign, "cron": "0 7 * * *"}, token=mine.access_token
    )
    error = assert_error(response, 404, "not_found")
    assert error["details"] == [{"field": "body.query_id", "issue": "not found"}]

    own = factories.query(clean_db, mine.organization_id)
    made = api.post(
        SCHEDULES, json_body={"name": "s", "query_id": own, "cron": "0 7 * * *"}, token=mine.access_token
    ).json()
    moved = api.request(
        "PATCH", f"{SCHEDULES}/{made['id']}", json_body={"query_id": foreign}, token=mine.access_token
    )
    assert_error(moved, 404, "not_found")


def test_patch_recomputes_next_run_and_disabling_clears_it(api: Any, register: Any, clean_db: str) -> None:
    account = register()
    token = account.access_token
    query_id = factories.query(clean_db, account.organization_id)
    made = api.post(
        SCHEDULES, json_body={"name": "s", "query_id": query_id, "cron": "0 7 * * *"}, token=token
    ).json()
    path = f"{SCHEDULES}/{made['id']}"
    etag = api.get(path, token=token).header("ETag")

    moved = api.request(
        "PATCH", path, json_body={"timezone": "Asia/Tokyo"}, headers={"If-Match": etag}, token=token
    )
    assert moved.status == 200, moved.body
    local = parse(moved.json()["next_run_at"]).astimezone(ZoneInfo("Asia/Tokyo"))
    assert (local.hour, local.minute) == (7, 0)
    assert moved.header("ETag") != etag

    assert_error(
        api.request("PATCH", path, json_body={"name": "x"}, headers={"If-Match": etag}, token=token),
        412,
        "precondition_failed",
    )

    renamed = api.request("PATCH", path, json_body={"name": "renamed"}, token=token).json()
    assert renamed["next_run_at"] == moved.json()["next_run_at"]

    disabled = api.request("PATCH", path, json_body={"enabled": False}, token=token).json()
    assert disabled["next_run_at"] is None
    with psycopg.connect(clean_db) as conn:
        conn.execute(
            "UPDATE schedules SET consecutive_failures = 5, disabled_reason = 'failed 5 times' WHERE id = %s",
            (made["id"],),
        )
    enabled = api.request(
        "PATCH", path, json_body={"enabled": True, "cron": "15 8 * * 1"}, token=token
    ).json()
    local = parse(enabled["next_run_at"]).astimezone(ZoneInfo("Asia/Tokyo"))
    assert (local.weekday(), local.hour, local.minute) == (0, 8, 15)
    assert enabled["consecutive_failures"] == 0
    assert enabled["disabled_reason"] is None

    assert_error(api.request("PATCH", path, json_body={"cron": None}, token=token), 422, "validation_error")
    assert_error(
        api.request("PATCH", path, json_body={"cron": "* * * * *"}, token=token), 422, "validation_error"
    )


def test_created_disabled_has_no_next_run(api: Any, register: Any, clean_db: str) -> None:
    account = register()
    query_id = factories.query(clean_db, account.organization_id)
    made = api.post(
        SCHEDULES,
        json_body={"name": "s", "query_id": query_id, "cron": "0 7 * * *", "enabled": False},
        token=account.access_token,
    ).json()
    assert made["next_run_at"] is None


def test_patch_parameters_are_checked_against_the_stored_query(
    api: Any, register: Any, clean_db: str
) -> None:
    account = register()
    query_id = query_with_parameters(clean_db, account.organization_id)
    made = api.post(
        SCHEDULES,
        json_body={"name": "s", "query_id": query_id, "cron": "0 7 * * *", "parameters": {"region": "eu"}},
        token=account.access_token,
    ).json()
    path = f"{SCHEDULES}/{made['id']}"
    bad = api.request("PATCH", path, json_body={"parameters": {"limit": 3}}, token=account.access_token)
    assert_error(bad, 422, "validation_error")
    # A query without parameters does not accept the kept values.
    plain = factories.query(clean_db, account.organization_id)
    moved = api.request("PATCH", path, json_body={"query_id": plain}, token=account.access_token)
    assert_error(moved, 422, "validation_error")
    both = api.request(
        "PATCH", path, json_body={"query_id": plain, "parameters": {}}, token=account.access_token
    )
    assert both.status == 200, both.body
    assert both.json()["parameters"] == {}


def test_viewer_reads_but_cannot_write(api: Any, register: Any, clean_db: str) -> None:
    account = register()
    token = account.access_token
    query_id = factories.query(clean_db, account.organization_id)
    body = {"name": "s", "query_id": query_id, "cron": "0 7 * * *"}
    made = api.post(SCHEDULES, json_body=body, token=token).json()
    set_role(clean_db, account.user_id, "viewer")
    path = f"{SCHEDULES}/{made['id']}"
    assert api.get(path, token=token).status == 200
    assert api.get(f"{path}/runs", token=token).status == 200
    assert_error(api.post(SCHEDULES, json_body=body, token=token), 403, "forbidden")
    assert_error(api.request("PATCH", path, json_body={"enabled": False}, token=token), 403, "forbidden")
    assert_error(api.delete(path, token=token), 403, "forbidden")


def test_another_organizations_schedule_is_404(api: Any, register: Any, clean_db: str) -> None:
    mine, theirs = register(), register()
    query_id = factories.query(clean_db, theirs.organization_id)
    made = api.post(
        SCHEDULES,
        json_body={"name": "s", "query_id": query_id, "cron": "0 7 * * *"},
        token=theirs.access_token,
    ).json()
    path = f"{SCHEDULES}/{made['id']}"
    assert_error(api.get(path, token=mine.access_token), 404, "not_found")
    assert_error(api.get(f"{path}/runs", token=mine.access_token), 404, "not_found")
    assert_error(
        api.request("PATCH", path, json_body={"name": "x"}, token=mine.access_token), 404, "not_found"
    )
    assert_error(api.delete(path, token=mine.access_token), 404, "not_found")
    assert api.get(SCHEDULES, token=mine.access_token).json()["total"] == 0


def test_list_filters(api: Any, register: Any, clean_db: str) -> None:
    account = register()
    token = account.access_token
    first, second = (factories.query(clean_db, account.organization_id) for _ in range(2))
    for query_id, enabled in ((first, True), (first, False), (second, True)):
        body = {"name": "s", "query_id": query_id, "cron": "0 7 * * *", "enabled": enabled}
        assert api.post(SCHEDULES, json_body=body, token=token).status == 201
    assert api.get(SCHEDULES, query={"query_id": first}, token=token).json()["total"] == 2
    assert api.get(SCHEDULES, query={"enabled": "false"}, token=token).json()["total"] == 1
    by_next = api.get(SCHEDULES, query={"sort": "next_run_at"}, token=token)
    assert by_next.status == 200


def test_runs_of_a_schedule(api: Any, register: Any, clean_db: str) -> None:
    account = register()
    token = account.access_token
    query_id = factories.query(clean_db, account.organization_id)
    made = api.post(
        SCHEDULES, json_body={"name": "s", "query_id": query_id, "cron": "0 7 * * *"}, token=token
    ).json()
    other = api.post(
        SCHEDULES, json_body={"name": "t", "query_id": query_id, "cron": "0 8 * * *"}, token=token
    ).json()
    started = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
    with psycopg.connect(clean_db) as conn:
        datasource_id = conn.execute(
            "SELECT datasource_id FROM queries WHERE id = %s", (query_id,)
        ).fetchone()
        assert datasource_id is not None
        for schedule_id, status, offset in (
            (made["id"], "succeeded", 0),
            (made["id"], "failed", 1),
            (other["id"], "succeeded", 2),
        ):
            conn.execute(
                "INSERT INTO runs (organization_id, query_id, schedule_id, datasource_id, sql, cache_key,"
                " status, error, created_at, started_at, finished_at)"
                " VALUES (%s, %s, %s, %s, 'SELECT 1', 'k', %s, %s, %s, %s, %s)",
                (
                    account.organization_id,
                    query_id,
                    schedule_id,
                    datasource_id[0],
                    status,
                    Jsonb({"code": "query_failed", "message": "boom"}) if status == "failed" else None,
                    started + timedelta(days=offset),
                    started + timedelta(days=offset),
                    started + timedelta(days=offset, seconds=2),
                ),
            )
    runs = api.get(f"{SCHEDULES}/{made['id']}/runs", token=token)
    assert runs.status == 200, runs.body
    page = runs.json()
    assert page["total"] == 2
    assert [run["status"] for run in page["items"]] == ["failed", "succeeded"]
    assert page["items"][0]["error"] == {"code": "query_failed", "message": "boom"}
    assert page["items"][1]["duration_ms"] == 2000
    failed = api.get(f"{SCHEDULES}/{made['id']}/runs", query={"status": "failed"}, token=token).json()
    assert failed["total"] == 1
    assert_error(
        api.get(f"{SCHEDULES}/{made['id']}/runs", query={"tag": "x"}, token=token), 422, "validation_error"
    )
