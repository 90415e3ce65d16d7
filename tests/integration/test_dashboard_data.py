"""Dashboards people work with: filters declared on the dashboard and mapped to each tile's query
parameters (checked when saved), and the dashboard drawn in one call (`/dashboards/{id}/data`): each tile's
run reused or started with the filters' values, its first rows once done, within one byte budget."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from loupe.models.time_ranges import resolve_dates
from tests.integration import runs_support
from tests.integration.runs_support import deliver, saved_query
from tests.integration.test_dashboards import assert_error, tile

aws = runs_support.aws
postgres_database = runs_support.postgres_database

FLOOR_SQL = "SELECT id FROM widgets WHERE id >= {{ minimum }} ORDER BY id"
IDS_SQL = "SELECT id FROM widgets WHERE id IN {{ ids }} ORDER BY id"
DAYS_SQL = (
    "SELECT day FROM (SELECT DATE '2026-01-01' + n AS day FROM generate_series(0, 60) AS n) AS days"
    " WHERE day >= {{ period.from }} AND day < {{ period.to }} ORDER BY day"
)
FILTERS = [
    {"name": "floor", "type": "number", "default": 2},
    {"name": "picked", "type": "number", "multi": True, "default": [1, 2]},
    {
        "name": "period",
        "type": "date_range",
        "default": {"preset": "custom", "from": "2026-01-30", "to": "2026-02-02"},
    },
]


def visualization(api: Any, token: str, query: Any) -> str:
    assert query.status == 201, query.body
    made = api.post(
        "/api/v1/visualizations",
        json_body={"name": "v", "query_id": query.json()["id"], "type": "table", "options": {}},
        token=token,
    )
    assert made.status == 201, made.body
    return str(made.json()["id"])


@pytest.fixture
def drawn(api: Any, register: Any, clean_db: str, aws: str, postgres_database: str) -> dict[str, Any]:
    token = register().access_token
    floor = visualization(
        api,
        token,
        saved_query(
            api,
            token,
            postgres_database,
            FLOOR_SQL,
            [{"name": "minimum", "type": "number", "required": True}],
        ),
    )
    ids = visualization(
        api,
        token,
        saved_query(
            api, token, postgres_database, IDS_SQL, [{"name": "ids", "type": "number", "multi": True}]
        ),
    )
    days = visualization(
        api,
        token,
        saved_query(api, token, postgres_database, DAYS_SQL, [{"name": "period", "type": "date_range"}]),
    )
    dashboard = api.post(
        "/api/v1/dashboards",
        json_body={
            "name": "Widgets",
            "filters": FILTERS,
            "tiles": [
                tile(0, 0, 4, 4, visualization_id=floor, param_mappings={"minimum": "floor"}),
                tile(4, 0, 4, 4, visualization_id=ids, param_mappings={"ids": "picked"}),
                tile(8, 0, 4, 4, visualization_id=days, param_mappings={"period": "period"}),
                tile(0, 4, 12, 2),
            ],
        },
        token=token,
    )
    assert dashboard.status == 201, dashboard.body
    return {"token": token, "id": dashboard.json()["id"], "dashboard": dashboard.json()}


def rows(data: dict[str, Any]) -> list[list[Any] | None]:
    return [
        [str(row[0])[:10] if isinstance(row[0], str) else row[0] for row in item["results"]["rows"]]
        if item["results"]
        else None
        for item in data["tiles"]
    ]


def test_one_call_draws_every_tile_with_the_filters_defaults_then_with_chosen_values(
    api: Any, drawn: dict[str, Any], aws: str
) -> None:
    token, path = drawn["token"], f"/api/v1/dashboards/{drawn['id']}/data"
    assert drawn["dashboard"]["filters"][1]["multi"] is True
    assert drawn["dashboard"]["tiles"][0]["param_mappings"] == {"minimum": "floor"}

    first = api.get(path, token=token)
    assert first.status == 200, first.body
    body = first.json()
    assert [item["run"]["status"] if item["run"] else None for item in body["tiles"]] == ["queued"] * 3 + [
        None
    ]
    assert body["tiles"][0]["run"]["sql"] is None
    assert body["tiles"][0]["run"]["origin"] == "dashboard"
    assert len(body["pending_run_ids"]) == 3
    assert body["filters"]["period"] == {"preset": "custom", "from": "2026-01-30", "to": "2026-02-02"}
    deliver(aws)

    again = api.get(path, token=token).json()
    assert [item["run"]["id"] for item in again["tiles"][:3]] == [
        item["run"]["id"] for item in body["tiles"][:3]
    ]
    assert again["pending_run_ids"] == []
    assert rows(again) == [[2, 3, 4, 5], [1, 2], ["2026-01-30", "2026-01-31", "2026-02-01"], None]

    chosen = {
        "floor": 4,
        "picked": [5],
        "period": {"preset": "custom", "from": "2026-02-10", "to": "2026-02-11"},
    }
    started = api.post(path, json_body={"filters": chosen}, token=token).json()
    assert len(started["pending_run_ids"]) == 3
    deliver(aws)
    shown = api.post(path, json_body={"filters": chosen}, token=token).json()
    assert rows(shown) == [[4, 5], [5], ["2026-02-10"], None]
    # The defaults' runs are still young enough to serve the defaults.
    assert api.get(path, token=token).json()["pending_run_ids"] == []


def test_filter_values_are_checked_like_parameters(api: Any, drawn: dict[str, Any]) -> None:
    path = f"/api/v1/dashboards/{drawn['id']}/data"
    refused = api.post(path, json_body={"filters": {"floor": "high"}}, token=drawn["token"])
    error = assert_error(refused, 422, "validation_error")
    assert error["details"] == [{"field": "body.filters.floor", "issue": "must be a finite number"}]
    unknown = api.post(path, json_body={"filters": {"colour": "red"}}, token=drawn["token"])
    assert assert_error(unknown, 422, "validation_error")["details"][0]["field"] == "body.filters.colour"


def test_mappings_must_name_a_parameter_of_the_tiles_query_and_a_filter_of_its_type(
    api: Any, drawn: dict[str, Any]
) -> None:
    token, path = drawn["token"], f"/api/v1/dashboards/{drawn['id']}"
    current = drawn["dashboard"]
    floor_tile = {key: current["tiles"][0][key] for key in ("visualization_id", "x", "y", "w", "h")}

    def update(body: dict[str, Any]) -> Any:
        etag = api.get(path, token=token).header("ETag")
        return api.request("PATCH", path, json_body=body, token=token, headers={"If-Match": etag})

    for mappings, issue in (
        ({"nope": "floor"}, "the tile's query has no such parameter"),
        ({"minimum": "colour"}, "the dashboard has no filter 'colour'"),
        ({"minimum": "picked"}, "the filter is a list of number, the parameter number"),
    ):
        refused = update({"tiles": [{**floor_tile, "param_mappings": mappings}]})
        error = assert_error(refused, 422, "validation_error")
        assert error["details"] == [
            {"field": f"body.tiles.0.param_mappings.{next(iter(mappings))}", "issue": issue}
        ], mappings
    # Dropping a filter a stored tile maps to is refused as well.
    dropped = update({"filters": FILTERS[1:]})
    assert (
        assert_error(dropped, 422, "validation_error")["details"][0]["field"]
        == "body.tiles.0.param_mappings.minimum"
    )
    text_with_mapping = update(
        {"tiles": [{"text": "hi", "x": 0, "y": 0, "w": 2, "h": 2, "param_mappings": {"a": "b"}}]}
    )
    assert text_with_mapping.status == 422


def test_rows_past_the_byte_budget_are_deferred_to_the_results_route(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    token = register().access_token
    wide = visualization(
        api,
        token,
        saved_query(
            api,
            token,
            postgres_database,
            "SELECT n, repeat('x', 100000) AS filler FROM generate_series(1, 30) AS n",
            [],
        ),
    )
    dashboard = api.post(
        "/api/v1/dashboards",
        json_body={"name": "Wide", "tiles": [tile(4 * n, 0, 4, 4, visualization_id=wide) for n in range(3)]},
        token=token,
    ).json()
    path = f"/api/v1/dashboards/{dashboard['id']}/data"
    api.get(path, token=token)
    deliver(aws)
    data = api.get(path, token=token)
    assert data.status == 200, data.body[:300]
    first, second, third = data.json()["tiles"]
    assert first["run"]["id"] == second["run"]["id"] == third["run"]["id"], "one run serves the three tiles"
    assert len(first["results"]["rows"]) == 30
    # The second tile gets what is left of the budget, and says where its rows go on.
    kept = len(second["results"]["rows"])
    assert 0 < kept < 30
    assert (second["results"]["truncated_by"], second["results"]["next_offset"]) == ("bytes", kept)
    assert (third["results"], third["results_deferred"]) == (None, True)
    assert len(data.body.encode()) < 4 * 1024 * 1024 + 100_000


def test_a_refresh_takes_the_same_filter_values(api: Any, drawn: dict[str, Any]) -> None:
    token, path = drawn["token"], f"/api/v1/dashboards/{drawn['id']}/refresh"
    refreshed = api.post(path, json_body={"filters": {"floor": 5, "picked": [3, 4]}}, token=token)
    assert refreshed.status == 202, refreshed.body
    runs = refreshed.json()["runs"]
    assert [(run["origin"], run["parameters"]) for run in runs[:2]] == [
        ("refresh", {"minimum": 5}),
        ("refresh", {"ids": [3, 4]}),
    ]
    assert refreshed.json()["skipped"] == []
    refused = api.post(path, json_body={"filters": {"picked": 3}}, token=token)
    assert assert_error(refused, 422, "validation_error")["details"][0]["field"] == "body.filters.picked"


UPTO_SQL = "SELECT id, label FROM widgets WHERE id <= {{ upto }} ORDER BY id"


def test_a_cascading_filter_lists_the_options_its_parent_filter_chooses(
    api: Any, drawn: dict[str, Any], aws: str, postgres_database: str
) -> None:
    token, path = drawn["token"], f"/api/v1/dashboards/{drawn['id']}"
    options_query = saved_query(
        api, token, postgres_database, UPTO_SQL, [{"name": "upto", "type": "number", "required": True}]
    ).json()["id"]
    cascading = {
        "name": "picked",
        "type": "number",
        "multi": True,
        "options_query": {"query_id": options_query, "parameters": {"upto": "floor"}},
    }

    def update(body: dict[str, Any]) -> Any:
        etag = api.get(path, token=token).header("ETag")
        return api.request("PATCH", path, json_body=body, token=token, headers={"If-Match": etag})

    wrong = update(
        {
            "filters": [
                FILTERS[0],
                {**cascading, "options_query": {"query_id": options_query, "parameters": {"upto": "nobody"}}},
                FILTERS[2],
            ]
        }
    )
    assert assert_error(wrong, 422, "validation_error")["details"] == [
        {
            "field": "body.filters.1.options_query.parameters.upto",
            "issue": "'nobody' is not another of these parameters",
        }
    ]
    unknown = update(
        {
            "filters": [
                FILTERS[0],
                {**cascading, "options_query": {"query_id": options_query, "parameters": {"x": "floor"}}},
                FILTERS[2],
            ]
        }
    )
    assert (
        assert_error(unknown, 422, "validation_error")["details"][0]["issue"]
        == "the options query has no such parameter"
    )
    assert update({"filters": [FILTERS[0], cascading, FILTERS[2]]}).status == 200

    options_path = f"{path}/filters/picked/options"
    pending = api.post(options_path, json_body={"filters": {"floor": 2}}, token=token).json()
    assert (pending["pending"], pending["items"], pending["refreshed_at"]) == (True, [], None)
    deliver(aws)
    two = api.post(options_path, json_body={"filters": {"floor": 2}}, token=token).json()
    assert (two["pending"], [item["value"] for item in two["items"]]) == (False, [1, 2])
    assert two["run_id"] == pending["run_id"]
    four = api.post(options_path, json_body={"filters": {"floor": 4}, "q": "widget"}, token=token).json()
    assert four["pending"] is True
    deliver(aws)
    four = api.post(options_path, json_body={"filters": {"floor": 4}, "limit": 3}, token=token).json()
    assert ([item["value"] for item in four["items"]], four["total"]) == ([1, 2, 3], 4)

    data = f"{path}/data"
    outside = api.post(data, json_body={"filters": {"floor": 2, "picked": [4]}}, token=token)
    assert assert_error(outside, 422, "validation_error")["details"] == [
        {"field": "body.filters.picked", "issue": "4 is not one of its options"}
    ]
    assert api.post(data, json_body={"filters": {"floor": 4, "picked": [4]}}, token=token).status == 200
    assert_error(api.post(f"{path}/filters/floor/options", json_body={}, token=token), 404, "not_found")


def test_tiles_past_the_byte_budget_are_deferred_whole(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    token = register().access_token
    query = saved_query(api, token, postgres_database, "SELECT 1 AS n", []).json()["id"]
    # Options at their largest: 500 table columns, each with a 200-character label.
    columns = [{"column": f"c{index}", "label": "l" * 200} for index in range(500)]
    heavy = api.post(
        "/api/v1/visualizations",
        json_body={"name": "heavy", "query_id": query, "type": "table", "options": {"columns": columns}},
        token=token,
    )
    assert heavy.status == 201, heavy.body
    tiles = [tile(3 * (n % 4), 2 * (n // 4), 3, 2, visualization_id=heavy.json()["id"]) for n in range(40)]
    dashboard = api.post(
        "/api/v1/dashboards", json_body={"name": "Heavy", "tiles": tiles}, token=token
    ).json()
    data = api.get(f"/api/v1/dashboards/{dashboard['id']}/data", token=token)
    assert data.status == 200, data.body[:300]
    drawn = data.json()["tiles"]
    whole = [item for item in drawn if not item["deferred"]]
    deferred = [item for item in drawn if item["deferred"]]
    assert whole
    assert deferred
    assert all(item["visualization"] is None and item["visualization_id"] for item in deferred)
    assert {item["run_id"] for item in drawn} == {drawn[0]["run"]["id"]}
    assert len(data.body.encode()) < 4 * 1024 * 1024 + 100_000


def test_a_dashboards_own_time_zone_resolves_its_relative_ranges(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    token = register().access_token
    zone = "Pacific/Kiritimati"
    period = {"name": "period", "type": "date_range", "default": {"preset": "today"}}
    made = api.post(
        "/api/v1/dashboards", json_body={"name": "Ahead", "filters": [period], "timezone": zone}, token=token
    )
    assert made.status == 201, made.body
    assert made.json()["timezone"] == zone
    before = datetime.now(UTC)
    data = api.get(f"/api/v1/dashboards/{made.json()['id']}/data", token=token).json()
    after = datetime.now(UTC)
    resolved = data["filters"]["period"]
    expected = {resolve_dates("today", moment, ZoneInfo(zone))[0].isoformat() for moment in (before, after)}
    assert resolved["from"] in expected
    wrong = api.post("/api/v1/dashboards", json_body={"name": "x", "timezone": "Mars/Olympus"}, token=token)
    assert assert_error(wrong, 422, "validation_error")["details"][0]["field"] == "body.timezone"
