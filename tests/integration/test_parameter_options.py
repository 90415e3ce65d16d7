"""Dropdowns fed by a query: a parameter's options are another query's latest succeeded result (value and
label columns), listed page by page with a search; a run's value outside them is a 422; the options query
cannot be deleted from under them without a cascade, which leaves the dropdown free."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from loupe import db
from loupe.repositories import runs as runs_repository
from tests import factories
from tests.integration import runs_support
from tests.integration.runs_support import deliver, run_query, saved_query
from tests.integration.test_dashboards import assert_error

aws = runs_support.aws
postgres_database = runs_support.postgres_database

OPTIONS_SQL = "SELECT id, label FROM widgets ORDER BY id"
PICKED_SQL = "SELECT label FROM widgets WHERE id IN {{ picked }} ORDER BY id"


def dropdown(api: Any, token: str, database: str, options_query_id: str, **source: Any) -> Any:
    return saved_query(
        api,
        token,
        database,
        PICKED_SQL,
        [
            {
                "name": "picked",
                "type": "number",
                "multi": True,
                "options_query": {"query_id": options_query_id, **source},
            }
        ],
    )


def test_a_dropdown_lists_and_enforces_the_options_querys_values(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    token = register().access_token
    options_query = saved_query(api, token, postgres_database, OPTIONS_SQL, [])
    query = dropdown(api, token, postgres_database, options_query.json()["id"])
    assert query.status == 201, query.body
    query_id = query.json()["id"]
    options_path = f"/api/v1/queries/{query_id}/parameters/picked/options"

    assert_error(api.get(options_path, token=token), 409, "options_unavailable")
    early = run_query(api, token, query_id, parameters={"picked": [2]})
    assert early.status == 422
    assert "has no result yet: run it" in early.json()["error"]["details"][0]["issue"]

    assert run_query(api, token, options_query.json()["id"]).status == 202
    deliver(aws)
    listed = api.get(options_path, token=token).json()
    assert [(item["value"], item["label"]) for item in listed["items"]] == [
        (n, f"widget {n}") for n in range(1, 6)
    ]
    assert listed["options_truncated"] is False
    searched = api.get(options_path, token=token, query={"q": "GET 3"}).json()
    assert (searched["total"], [item["value"] for item in searched["items"]]) == (1, [3])
    paged = api.get(options_path, token=token, query={"limit": "2", "offset": "2"}).json()
    assert ([item["value"] for item in paged["items"]], paged["next_offset"]) == ([3, 4], 4)

    chosen = run_query(api, token, query_id, parameters={"picked": [2, 4]})
    assert chosen.status == 202, chosen.body
    refused = run_query(api, token, query_id, parameters={"picked": [2, 99]})
    assert refused.status == 422
    assert refused.json()["error"]["details"] == [
        {"field": "body.parameters.picked", "issue": "99 is not one of its options"}
    ]
    deliver(aws)
    rows = api.get(f"/api/v1/runs/{chosen.json()['id']}/results", token=token).json()["rows"]
    assert rows == [["widget 2"], ["widget 4"]]

    assert_error(
        api.get(f"/api/v1/queries/{query_id}/parameters/other/options", token=token), 404, "not_found"
    )
    labelled = dropdown(api, token, postgres_database, options_query.json()["id"], label_column="nope")
    unusable = api.get(f"/api/v1/queries/{labelled.json()['id']}/parameters/picked/options", token=token)
    assert "no column 'nope'" in assert_error(unusable, 409, "options_unavailable")["message"]


def test_the_options_query_is_the_organizations_and_is_not_deleted_from_under_a_dropdown(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    token = register().access_token
    options_query = saved_query(api, token, postgres_database, OPTIONS_SQL, [])
    options_id = options_query.json()["id"]
    stranger = register().access_token
    foreign = dropdown(api, stranger, postgres_database, options_id)
    error = assert_error(foreign, 404, "not_found")
    assert error["details"][0]["field"] == "body.parameters.0.options_query.query_id"

    query = dropdown(api, token, postgres_database, options_id).json()
    in_use = assert_error(api.delete(f"/api/v1/queries/{options_id}", token=token), 409, "in_use")
    assert [(item["kind"], item["id"]) for item in in_use["dependents"]] == [("query", query["id"])]
    deleted = api.delete(f"/api/v1/queries/{options_id}", token=token, query={"cascade": "true"})
    assert deleted.status == 204, deleted.body
    freed = api.get(f"/api/v1/queries/{query['id']}", token=token).json()
    assert freed["parameters"][0]["options_query"] is None
    assert freed["revision"] == query["revision"] + 1
    assert run_query(api, token, query["id"], parameters={"picked": [99]}).status == 202


def test_a_cascading_dropdowns_options_come_from_a_run_with_exactly_the_parents_values(
    register: Any, clean_db: str
) -> None:
    organization_id = register().organization_id
    query_id = factories.query(clean_db, organization_id, factories.datasource(clean_db, organization_id))
    with psycopg.connect(clean_db) as conn:
        for countries, year in ((["US", "FR"], 2026), (["US"], 2025)):
            conn.execute(
                "INSERT INTO runs (organization_id, query_id, datasource_id, sql, cache_key, status,"
                " result_location, finished_at, parameters)"
                " SELECT organization_id, id, datasource_id, sql, 'k', 'succeeded', 's3://b/k', now(), %s"
                " FROM queries WHERE id = %s",
                (Jsonb({"countries": countries, "year": year}), query_id),
            )
    with db.transaction():
        [both, us, fr, us_2025] = [
            runs_repository.latest_stored(UUID(query_id), values, None)
            for values in (
                {"countries": ["US", "FR"]},
                {"countries": ["US"]},
                {"countries": ["FR"]},
                {"countries": ["US"], "year": 2025},
            )
        ]
    # A run for both countries does not answer for one of them (a containment test would say it does).
    assert both is not None
    assert us is not None
    assert both["id"] != us["id"]
    assert fr is None
    assert us_2025 == us
