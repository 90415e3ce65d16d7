"""Snippets through the API: an organization's SQL fragments included in queries as `{{> name }}`,
expanded before the placeholders are matched and before the guard; a run keeps the SQL it ran, whatever
the snippet becomes; a snippet in use cannot be deleted; tenancy as for queries."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.integration import runs_support
from tests.integration.runs_support import deliver, run_query, saved_query
from tests.integration.test_dashboards import assert_error

aws = runs_support.aws
postgres_database = runs_support.postgres_database

SNIPPETS = "/api/v1/snippets"
FROM_MINIMUM = "SELECT id, label FROM widgets WHERE id >= {{ minimum }}"


def snippet(api: Any, token: str, name: str, sql: str) -> Any:
    return api.post(SNIPPETS, json_body={"name": name, "sql": sql, "description": "widgets"}, token=token)


def test_a_query_includes_a_snippet_and_its_runs_keep_the_sql_they_ran(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    token = register().access_token
    made = snippet(api, token, "from_minimum", FROM_MINIMUM)
    assert made.status == 201, made.body
    assert made.json()["sql"] == FROM_MINIMUM
    query = saved_query(
        api,
        token,
        postgres_database,
        "{{> from_minimum }} ORDER BY id",
        [{"name": "minimum", "type": "number", "default": 3}],
    )
    assert query.status == 201, query.body
    assert query.json()["sql"] == "{{> from_minimum }} ORDER BY id"
    first = run_query(api, token, query.json()["id"])
    assert first.status == 202, first.body
    assert first.json()["sql"] == f"{FROM_MINIMUM} ORDER BY id"
    deliver(aws)
    rows = api.get(f"/api/v1/runs/{first.json()['id']}/results", token=token).json()["rows"]
    assert [row[0] for row in rows] == [3, 4, 5]

    path = f"{SNIPPETS}/{made.json()['id']}"
    changed = api.request(
        "PATCH",
        path,
        json_body={"sql": FROM_MINIMUM + " AND id < 4"},
        token=token,
        headers={"If-Match": made.header("ETag")},
    )
    assert changed.status == 200, changed.body
    second = run_query(api, token, query.json()["id"])
    deliver(aws)
    assert (
        api.get(f"/api/v1/runs/{first.json()['id']}", token=token).json()["sql"]
        == f"{FROM_MINIMUM} ORDER BY id"
    )
    rows = api.get(f"/api/v1/runs/{second.json()['id']}/results", token=token).json()["rows"]
    assert [row[0] for row in rows] == [3]

    in_use = assert_error(api.delete(path, token=token), 409, "in_use")
    assert [(item["kind"], item["id"]) for item in in_use["dependents"]] == [("query", query.json()["id"])]
    assert in_use["message"].endswith("change them first")
    unused = snippet(api, token, "spare", "SELECT 1")
    assert api.delete(f"{SNIPPETS}/{unused.json()['id']}", token=token).status == 204


def test_snippets_are_checked_where_they_are_used(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    token = register().access_token
    unknown = saved_query(api, token, postgres_database, "{{> nowhere }}", [])
    assert unknown.status == 422
    assert unknown.json()["error"]["details"] == [
        {"field": "body.sql", "issue": "{{> nowhere }}: no such snippet"}
    ]
    assert snippet(api, token, "needs_minimum", FROM_MINIMUM).status == 201
    undeclared = saved_query(api, token, postgres_database, "{{> needs_minimum }}", [])
    assert undeclared.status == 422
    assert "{{ minimum }} is used but not declared" in undeclared.body
    nested = snippet(api, token, "nested", "{{> needs_minimum }}")
    assert nested.status == 422
    assert "may not include another snippet" in nested.body
    assert snippet(api, token, "needs_minimum", "SELECT 2").status == 409
    assert snippet(api, token, "not a name", "SELECT 2").status == 422
    # Snippets have no tags: filtering on one is the caller's mistake, not the server's.
    untagged = api.get(SNIPPETS, token=token, query={"tag": "m"})
    assert assert_error(untagged, 422, "validation_error")["details"][0]["field"] == "query.tag"
    # The guard reads the SQL as expanded.
    assert snippet(api, token, "sleepy", "SELECT pg_sleep(1)").status == 201
    refused = saved_query(api, token, postgres_database, "{{> sleepy }}", [])
    run = run_query(api, token, refused.json()["id"]).json()
    assert (run["status"], run["error"]["code"]) == ("failed", "sql_not_allowed")


def test_a_snippet_edit_that_would_break_a_query_using_it_is_refused(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    token = register().access_token
    made = snippet(api, token, "from_minimum", FROM_MINIMUM)
    query = saved_query(
        api, token, postgres_database, "{{> from_minimum }}", [{"name": "minimum", "type": "number"}]
    )
    assert query.status == 201, query.body
    path = f"{SNIPPETS}/{made.json()['id']}"
    broken = api.request(
        "PATCH", path, json_body={"sql": FROM_MINIMUM + " AND id < {{ maximum }}"}, token=token
    )
    error = assert_error(broken, 422, "validation_error")
    assert [detail["issue"] for detail in error["details"]] == [
        f"query 'q' ({query.json()['id']}): {{{{ maximum }}}} is used but not declared in parameters"
    ]
    unused = api.request("PATCH", path, json_body={"sql": "SELECT id, label FROM widgets"}, token=token)
    assert "'minimum' is declared but not used in sql" in unused.body
    assert api.get(path, token=token).json()["sql"] == FROM_MINIMUM
    # A fitting edit is taken; and should two edits race past the check, a run refuses the mismatch.
    assert (
        api.request("PATCH", path, json_body={"sql": FROM_MINIMUM + " AND id < 4"}, token=token).status == 200
    )
    with psycopg.connect(clean_db) as conn:
        conn.execute("UPDATE snippets SET sql = 'SELECT {{ other }}'")
    refused = run_query(api, token, query.json()["id"])
    assert_error(refused, 422, "validation_error")
    assert "{{ other }} is used but not declared" in refused.body


def test_snippets_belong_to_their_organization(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    owner = register().access_token
    mine = snippet(api, owner, "mine", "SELECT 1").json()
    stranger = register().access_token
    assert api.get(f"{SNIPPETS}/{mine['id']}", token=stranger).status == 404
    assert api.get(SNIPPETS, token=stranger).json()["total"] == 0
    theirs = saved_query(api, stranger, postgres_database, "{{> mine }}", [])
    assert theirs.status == 422, "another organization's snippet is no snippet here"
    listed = api.get(SNIPPETS, token=owner, query={"q": "min"}).json()
    assert [item["name"] for item in listed["items"]] == ["mine"]
