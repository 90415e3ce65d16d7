"""A visualization whose options name columns its query's latest result lacks says so (`warnings`), on its
own read, on a write and in lists; a query that has not run yet gives no warnings."""

from __future__ import annotations

from typing import Any

from tests.integration import runs_support
from tests.integration.runs_support import deliver, run_query, setup_org

aws = runs_support.aws
postgres_database = runs_support.postgres_database


def test_options_naming_a_column_the_latest_result_lacks_are_reported(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    token = admin.access_token
    body = {
        "name": "Widgets",
        "query_id": query_id,
        "type": "table",
        "options": {"columns": [{"column": "id"}, {"column": "price"}, {"column": "label"}]},
    }
    made = api.post("/api/v1/visualizations", json_body=body, token=token)
    assert made.status == 201, made.body
    # Never run: nothing to compare with.
    assert made.json()["warnings"] == []
    path = f"/api/v1/visualizations/{made.json()['id']}"

    assert run_query(api, token, query_id, parameters={"minimum": 1}).status == 202
    deliver(aws)

    expected = ["the query's latest result has no column 'price'"]
    assert api.get(path, token=token).json()["warnings"] == expected
    listed = api.get("/api/v1/visualizations", token=token, query={"query_id": query_id}).json()
    assert [item["warnings"] for item in listed["items"]] == [expected]
    counter = api.request(
        "PATCH",
        path,
        json_body={"type": "counter", "options": {"value": "id", "target": "goal"}},
        token=token,
        headers={"If-Match": api.get(path, token=token).header("ETag")},
    )
    assert counter.status == 200, counter.body
    assert counter.json()["warnings"] == ["the query's latest result has no column 'goal'"]
    fixed = api.request(
        "PATCH",
        path,
        json_body={"type": "counter", "options": {"value": "id"}},
        token=token,
        headers={"If-Match": counter.header("ETag")},
    )
    assert fixed.json()["warnings"] == []
