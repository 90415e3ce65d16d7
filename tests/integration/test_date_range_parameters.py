"""Date-range parameters through the API: a preset (or custom ends) given as the value, used in the SQL
as `{{ period.from }}` and `{{ period.to }}`, resolved when the run starts in the organization's time
zone, bound as typed dates; the run records the ends it ran with, and the cache keys on them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from loupe.models.time_ranges import resolve_dates
from tests.integration import runs_support
from tests.integration.runs_support import deliver, run_query

aws = runs_support.aws
postgres_database = runs_support.postgres_database

DAYS_SQL = (
    "SELECT day FROM (SELECT DATE '2025-01-01' + n AS day FROM generate_series(0, 1200) AS n) AS days"
    " WHERE day >= {{ period.from }} AND day < {{ period.to }} ORDER BY day"
)
# The organization's time zone: 14 hours ahead of UTC, so its today is often UTC's tomorrow.
ZONE = "Pacific/Kiritimati"


def saved_query(api: Any, token: str, database: str, sql: str = DAYS_SQL, **period: Any) -> Any:
    return runs_support.saved_query(
        api, token, database, sql, [{"name": "period", "type": "date_range", **period}]
    )


def days_of(api: Any, token: str, run_id: str) -> list[str]:
    rows = api.get(f"/api/v1/runs/{run_id}/results", token=token, query={"limit": "2000"}).json()["rows"]
    return [str(row[0])[:10] for row in rows]


def test_presets_resolve_in_the_organizations_time_zone_and_bind_as_dates(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin = register()
    token = admin.access_token
    zoned = api.request(
        "PATCH",
        "/api/v1/organizations/current",
        json_body={"settings": {"default_timezone": ZONE}},
        token=token,
    )
    assert zoned.status == 200, zoned.body
    query = saved_query(api, token, postgres_database, default={"preset": "this_month"})
    assert query.status == 201, query.body
    query_id = query.json()["id"]

    before = datetime.now(UTC)
    today = run_query(api, token, query_id, parameters={"period": {"preset": "today"}})
    month = run_query(api, token, query_id)
    custom = run_query(
        api,
        token,
        query_id,
        parameters={"period": {"preset": "custom", "from": "2026-02-26", "to": "2026-03-02"}},
    )
    after = datetime.now(UTC)
    for started in (today, month, custom):
        assert started.status == 202, started.body
    deliver(aws)

    zone = ZoneInfo(ZONE)
    expected_today = {resolve_dates("today", moment, zone) for moment in (before, after)}
    recorded = api.get(f"/api/v1/runs/{today.json()['id']}", token=token).json()["parameters"]["period"]
    assert recorded["preset"] == "today"
    assert (date.fromisoformat(recorded["from"]), date.fromisoformat(recorded["to"])) in expected_today
    assert days_of(api, token, today.json()["id"]) == [recorded["from"]]

    recorded = api.get(f"/api/v1/runs/{month.json()['id']}", token=token).json()["parameters"]["period"]
    first, after_last = date.fromisoformat(recorded["from"]), date.fromisoformat(recorded["to"])
    assert first.day == 1
    assert after_last.day == 1
    assert len(days_of(api, token, month.json()["id"])) == (after_last - first).days

    assert days_of(api, token, custom.json()["id"]) == [
        "2026-02-26",
        "2026-02-27",
        "2026-02-28",
        "2026-03-01",
    ]


@pytest.mark.parametrize(
    ("value", "issue"),
    [
        (
            "last_7d",
            'must be a range: {"preset": "last_7d"}, or {"preset": "custom", "from": ..., "to": ...}',
        ),
        ({"preset": "yesterday"}, "preset must be one of"),
        ({"preset": "custom", "from": "2026-01-02"}, "the custom preset needs from and to"),
        ({"preset": "custom", "from": "2026-01-02", "to": "2026-01-01"}, "from must be before to"),
        ({"preset": "custom", "from": "2026-01-02", "to": "soon"}, "to must be a date as YYYY-MM-DD"),
        ({"preset": "last_7d", "from": "2026-01-02"}, "takes from and to with the custom preset only"),
        ({"preset": "last_7d", "until": "x"}, "has unknown fields: until"),
    ],
)
def test_a_range_of_the_wrong_shape_is_a_422_naming_it(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, value: Any, issue: str
) -> None:
    token = register().access_token
    query_id = saved_query(api, token, postgres_database).json()["id"]
    refused = run_query(api, token, query_id, parameters={"period": value})
    assert refused.status == 422, refused.body
    [detail] = refused.json()["error"]["details"]
    assert detail["field"] == "body.parameters.period"
    assert detail["issue"].startswith(issue)


def test_a_range_is_used_by_its_ends_and_only_a_range_has_ends(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    token = register().access_token
    bare = saved_query(api, token, postgres_database, sql="SELECT {{ period }}")
    assert bare.status == 422
    assert "use {{ period.from }} and {{ period.to }}" in bare.body
    listed = saved_query(api, token, postgres_database, multi=True)
    assert listed.status == 422
    assert "takes one range" in listed.body
    not_a_range = api.post(
        "/api/v1/queries",
        json_body={
            "name": "n",
            "datasource_id": saved_query(api, token, postgres_database).json()["datasource_id"],
            "sql": "SELECT {{ n.from }}",
            "parameters": [{"name": "n", "type": "number"}],
        },
        token=token,
    )
    assert not_a_range.status == 422
    assert "only a range parameter has from and to" in not_a_range.body
