"""Result pages bounded by bytes as well as rows, through the real gateway and the runs function's own
proxy response: wide text, many columns, and a value no page can hold."""

from __future__ import annotations

import json
from typing import Any

from infra.local.events import LocalLambdaContext, rest_api_event
from infra.local.gateway import MAX_RESPONSE_BYTES
from infra.local.template_routes import load_handler
from loupe.results.page import PAGE_MAX_BYTES
from tests.integration import runs_support
from tests.integration.runs_support import deliver, setup_org

aws = runs_support.aws
postgres_database = runs_support.postgres_database


def run_sql(api: Any, register: Any, database: str, queue_url: str, sql: str) -> tuple[str, str]:
    """A new admin's succeeded ad-hoc run of `sql`: the admin's token and the run's id."""
    admin, datasource_id, _ = setup_org(api, register, database)
    token = admin.access_token
    created = api.post("/api/v1/runs", json_body={"datasource_id": datasource_id, "sql": sql}, token=token)
    assert created.status == 202, created.body
    deliver(queue_url)
    run = api.get(f"/api/v1/runs/{created.json()['id']}", token=token).json()
    assert run["status"] == "succeeded", run
    return token, str(run["id"])


def proxy_results(run_id: str, token: str, **query: str) -> dict[str, Any]:
    """The runs function's proxy response to GET /runs/{id}/results, as Lambda would serialize it."""
    event = rest_api_event(
        "GET",
        f"/api/v1/runs/{run_id}/results",
        resource="/api/v1/runs/{run_id}/results",
        path_parameters={"run_id": run_id},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        query={name: [value] for name, value in query.items()},
    )
    response: dict[str, Any] = load_handler("RunsFunction")(event, LocalLambdaContext("RunsFunction"))
    return response


def test_wide_text_rows_end_the_page_by_bytes_and_the_next_page_follows(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    # Quotes and backslashes double once the body is a JSON string in the proxy response, and again
    # inside it: 1,000 of them per row take 4,000 bytes there.
    token, run_id = run_sql(
        api,
        register,
        postgres_database,
        aws,
        "SELECT n, repeat('\"' || chr(92), 500) || n AS wide, repeat('é', 200) AS accents"
        " FROM generate_series(1, 3000) AS n ORDER BY n",
    )
    proxy = proxy_results(run_id, token, limit="10000")
    assert proxy["statusCode"] == 200, proxy["body"]
    assert len(json.dumps(proxy).encode()) < MAX_RESPONSE_BYTES
    first = json.loads(proxy["body"])
    assert 0 < len(first["rows"]) < 3000
    assert first["truncated_by"] == "bytes"
    assert first["next_offset"] == len(first["rows"])
    assert first["rows"][0] == [1, '"\\' * 500 + "1", "é" * 200]
    assert len(json.dumps(first["rows"], separators=(",", ":"))) < PAGE_MAX_BYTES

    offset, seen = first["next_offset"], [row[0] for row in first["rows"]]
    while offset is not None:
        page = api.get(
            f"/api/v1/runs/{run_id}/results",
            token=token,
            query={"offset": str(offset), "limit": "10000"},
        )
        assert page.status == 200, page.body[:500]
        body = page.json()
        seen += [row[0] for row in body["rows"]]
        offset = body["next_offset"]
    assert seen == list(range(1, 3001))
    assert body["truncated_by"] is None


def test_a_page_of_many_columns_stays_under_the_limit(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    columns = ", ".join(f"repeat('x', 40) || n AS c{index}" for index in range(600))
    token, run_id = run_sql(
        api, register, postgres_database, aws, f"SELECT {columns} FROM generate_series(1, 400) AS n"
    )
    proxy = proxy_results(run_id, token, limit="400")
    assert proxy["statusCode"] == 200
    assert len(json.dumps(proxy).encode()) < MAX_RESPONSE_BYTES
    page = json.loads(proxy["body"])
    assert len(page["columns"]) == 600
    assert all(len(row) == 600 for row in page["rows"])
    assert (page["truncated_by"], page["next_offset"]) == ("bytes", len(page["rows"]))

    small = api.get(f"/api/v1/runs/{run_id}/results", token=token, query={"offset": "398"})
    assert small.status == 200
    assert (len(small.json()["rows"]), small.json()["truncated_by"], small.json()["next_offset"]) == (
        2,
        None,
        None,
    )
    limited = api.get(f"/api/v1/runs/{run_id}/results", token=token, query={"limit": "3"})
    assert (limited.json()["truncated_by"], limited.json()["next_offset"]) == ("rows", 3)


def test_a_value_larger_than_a_page_is_a_clear_422_naming_the_row(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    token, run_id = run_sql(
        api,
        register,
        postgres_database,
        aws,
        f"SELECT n, CASE WHEN n = 2 THEN repeat('y', {PAGE_MAX_BYTES + 1}) ELSE 'small' END AS v"
        " FROM generate_series(1, 3) AS n ORDER BY n",
    )
    first = api.get(f"/api/v1/runs/{run_id}/results", token=token)
    assert first.status == 200, first.body[:500]
    assert (first.json()["rows"], first.json()["next_offset"]) == ([[1, "small"]], 1)

    refused = api.get(f"/api/v1/runs/{run_id}/results", token=token, query={"offset": "1"})
    assert refused.status == 422
    error = refused.json()["error"]
    assert error["code"] == "row_too_large"
    assert error["message"].startswith("Row 1 takes ")
    assert "export the run" in error["message"]
    assert error["details"] == [{"field": "query.offset", "issue": "row 1 is larger than a page"}]

    after = api.get(f"/api/v1/runs/{run_id}/results", token=token, query={"offset": "2"})
    assert after.json()["rows"] == [[3, "small"]]
