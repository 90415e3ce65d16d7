"""Row policies through the API: admins define them on a datasource, members and API keys carry claims,
a run is rewritten for whom a policy names, and its rows (results, exports, cached reuse, dropdown options)
are readable only under the same policy and claims."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests import factories
from tests.integration import runs_support
from tests.integration.runs_support import add_orders, deliver, run_query, saved_query
from tests.integration.test_dashboards import assert_error
from tests.read_only_logins import reader_name

aws = runs_support.aws
postgres_database = runs_support.postgres_database

ORDERS = [(1, "a", 10), (2, "b", 20), (3, "a", 30), (4, "c", 40), (5, "b", 50)]
ORDERS_SQL = "SELECT id, tenant FROM orders ORDER BY id"


@pytest.fixture
def orders_database(postgres_database: str) -> str:
    add_orders(postgres_database, "id int PRIMARY KEY, tenant text NOT NULL, amount int NOT NULL", ORDERS)
    return postgres_database


def policy(
    table: str = "public.orders", predicate: str = "tenant = :claims.tenant", **applies_to: Any
) -> dict[str, Any]:
    return {"table": table, "predicate": predicate, "applies_to": applies_to or {"roles": ["viewer"]}}


def set_claims(api: Any, setup: dict[str, Any], claims: dict[str, Any]) -> Any:
    return api.request(
        "PUT",
        f"/api/v1/organizations/users/{setup['viewer_id']}/claims",
        json_body={"claims": claims},
        token=setup["admin"],
    )


def rows_of(api: Any, token: str, run: Any, aws: str) -> list[list[Any]]:
    assert run.status in (200, 201, 202), run.body
    if run.json()["status"] == "queued":
        deliver(aws)
    finished = api.get(f"/api/v1/runs/{run.json()['id']}", token=token).json()
    assert finished["status"] == "succeeded", finished
    results = api.get(f"/api/v1/runs/{run.json()['id']}/results", token=token)
    assert results.status == 200, results.body
    rows: list[list[Any]] = results.json()["rows"]
    return rows


@pytest.fixture
def setup(api: Any, register: Any, clean_db: str, orders_database: str) -> dict[str, Any]:
    admin = register()
    query = saved_query(api, admin.access_token, orders_database, ORDERS_SQL, [])
    assert query.status == 201, query.body
    viewer_id, viewer = factories.member(api, clean_db, admin.organization_id, "viewer")
    return {
        "admin": admin.access_token,
        "query": query.json()["id"],
        "datasource": query.json()["datasource_id"],
        "viewer_id": viewer_id,
        "viewer": viewer["access_token"],
    }


def test_a_policy_filters_the_runs_of_whom_it_names_and_their_rows_stay_theirs(
    api: Any, setup: dict[str, Any], clean_db: str, aws: str
) -> None:
    admin, viewer, path = (
        setup["admin"],
        setup["viewer"],
        f"/api/v1/datasources/{setup['datasource']}/row-policies",
    )
    made = api.post(path, json_body=policy(), token=admin)
    assert made.status == 201, made.body
    assert made.json()["claims"] == ["tenant"]
    assert made.header("Location").endswith(f"/row-policies/{made.json()['id']}")
    assert [item["id"] for item in api.get(path, token=admin).json()["items"]] == [made.json()["id"]]
    one = api.get(f"{path}/{made.json()['id']}", token=admin)
    assert one.json() == made.json()
    assert (
        api.get(
            f"{path}/{made.json()['id']}", token=admin, headers={"If-None-Match": one.header("ETag")}
        ).status
        == 304
    )

    # Without the claim the policy binds, the viewer's run is refused rather than run half-bound.
    refused = run_query(api, viewer, setup["query"])
    assert_error(refused, 403, "forbidden")
    assert "claim 'tenant'" in refused.json()["error"]["message"]

    claims = set_claims(api, setup, {"tenant": "a"})
    assert claims.status == 200, claims.body
    assert claims.json()["claims"] == {"tenant": "a"}
    viewer_run = run_query(api, viewer, setup["query"])
    assert rows_of(api, viewer, viewer_run, aws) == [[1, "a"], [3, "a"]]
    assert "loupe_policy_rows" not in viewer_run.json().get("sql", "")

    # The admin is not named: every row. Neither reads the other's rows, nor reuses the other's run.
    admin_run = run_query(api, admin, setup["query"], max_age_seconds=3600)
    assert admin_run.json()["id"] != viewer_run.json()["id"]
    assert [row[0] for row in rows_of(api, admin, admin_run, aws)] == [1, 2, 3, 4, 5]
    assert_error(api.get(f"/api/v1/runs/{viewer_run.json()['id']}/results", token=admin), 404, "not_found")
    assert_error(api.get(f"/api/v1/runs/{admin_run.json()['id']}/results", token=viewer), 404, "not_found")
    assert_error(
        api.get(f"/api/v1/runs/{admin_run.json()['id']}/export", token=viewer, query={"format": "csv"}),
        404,
        "not_found",
    )

    # Other claims, another run: a cached run is reused only under the same claims.
    set_claims(api, setup, {"tenant": "b"})
    again = run_query(api, viewer, setup["query"], max_age_seconds=3600)
    assert again.json()["id"] != viewer_run.json()["id"]
    assert rows_of(api, viewer, again, aws) == [[2, "b"], [5, "b"]]
    assert_error(api.get(f"/api/v1/runs/{viewer_run.json()['id']}/results", token=viewer), 404, "not_found")
    same = run_query(api, viewer, setup["query"], max_age_seconds=3600)
    assert same.json()["id"] == again.json()["id"]

    deleted = api.delete(f"{path}/{made.json()['id']}", token=admin)
    assert deleted.status == 204
    assert [row[0] for row in rows_of(api, viewer, run_query(api, viewer, setup["query"]), aws)] == [
        1,
        2,
        3,
        4,
        5,
    ]
    with psycopg.connect(clean_db) as conn:
        actions = [row[0] for row in conn.execute("SELECT action FROM audit_events ORDER BY created_at")]
    assert {"row_policy.created", "member.claims_changed", "row_policy.deleted"} <= set(actions)


def test_a_query_the_rewriter_cannot_cover_fails_without_running(
    api: Any, setup: dict[str, Any], aws: str
) -> None:
    admin = setup["admin"]
    assert (
        api.post(
            f"/api/v1/datasources/{setup['datasource']}/row-policies",
            json_body=policy(roles=["viewer"]),
            token=admin,
        ).status
        == 201
    )
    set_claims(api, setup, {"tenant": "a"})
    uncovered = api.post(
        "/api/v1/queries",
        json_body={
            "name": "shadowed",
            "datasource_id": setup["datasource"],
            "sql": 'WITH "Orders" AS (SELECT 1) SELECT count(*) FROM orders',
        },
        token=admin,
    )
    assert uncovered.status == 201, uncovered.body
    run = run_query(api, setup["viewer"], uncovered.json()["id"])
    assert run.json()["status"] == "failed"
    assert run.json()["error"]["code"] == "sql_not_allowed"
    assert "row policy" in run.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field", "issue"),
    [
        (policy(table="orders"), "body.table", "schema.table"),
        (policy(table="public.orders o"), "body.table", "table"),
        (policy(predicate="tenant IN (SELECT tenant FROM orders)"), "body.predicate", "subquery"),
        (policy(predicate="orders.tenant = :claims.tenant"), "body.predicate", "without a table"),
        (policy(predicate="pg_sleep(1) IS NULL"), "body.predicate", "pg_sleep"),
        (policy(predicate="tenant = "), "body.predicate", "condition"),
    ],
)
def test_policies_are_validated(
    api: Any, setup: dict[str, Any], body: dict[str, Any], field: str, issue: str
) -> None:
    refused = api.post(
        f"/api/v1/datasources/{setup['datasource']}/row-policies", json_body=body, token=setup["admin"]
    )
    error = assert_error(refused, 422, "validation_error")
    assert error["details"][0]["field"] == field
    assert issue in error["details"][0]["issue"]


def test_whom_a_policy_names_must_exist_and_only_admins_manage_policies(
    api: Any, setup: dict[str, Any], register: Any
) -> None:
    path = f"/api/v1/datasources/{setup['datasource']}/row-policies"
    nobody = api.post(path, json_body={**policy(), "applies_to": {}}, token=setup["admin"])
    assert "must apply to someone" in assert_error(nobody, 422, "validation_error")["details"][0]["issue"]
    stranger = register()
    unknown = api.post(path, json_body=policy(members=[stranger.user_id]), token=setup["admin"])
    assert assert_error(unknown, 404, "not_found")["details"] == [
        {"field": "body.applies_to.members.0", "issue": "not a member"}
    ]
    assert_error(api.post(path, json_body=policy(), token=setup["viewer"]), 403, "forbidden")
    assert_error(api.get(path, token=stranger.access_token), 404, "not_found")
    assert_error(api.post(path, json_body=policy(), token=stranger.access_token), 404, "not_found")
    claims = set_claims(api, setup, {"bad name": 1})
    assert claims.status == 422


def test_an_api_keys_claims_bind_the_policies_naming_it(api: Any, setup: dict[str, Any], aws: str) -> None:
    admin = setup["admin"]
    key = api.post(
        "/api/v1/api-keys", json_body={"name": "backend", "role": "viewer", "kind": "service"}, token=admin
    )
    assert key.status == 201, key.body
    path = f"/api/v1/datasources/{setup['datasource']}/row-policies"
    assert api.post(path, json_body=policy(api_keys=[key.json()["id"]]), token=admin).status == 201
    changed = api.request(
        "PUT",
        f"/api/v1/api-keys/{key.json()['id']}/claims",
        json_body={"claims": {"tenant": "c"}},
        token=admin,
    )
    assert changed.status == 200, changed.body
    assert changed.json()["claims"] == {"tenant": "c"}
    headers = {"X-API-Key": key.json()["key"]}
    run = api.post(f"/api/v1/queries/{setup['query']}/runs", json_body={}, headers=headers)
    assert run.status == 202, run.body
    deliver(aws)
    results = api.get(f"/api/v1/runs/{run.json()['id']}/results", headers=headers)
    assert results.json()["rows"] == [[4, "c"]]
    assert (
        api.request(
            "PUT", f"/api/v1/api-keys/{uuid.uuid4()}/claims", json_body={"claims": {}}, token=admin
        ).status
        == 404
    )


def test_views_over_a_policy_table_and_its_children_are_refused_unless_they_carry_a_policy(
    api: Any, setup: dict[str, Any], orders_database: str, aws: str
) -> None:
    admin, viewer = setup["admin"], setup["viewer"]
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{orders_database}", autocommit=True) as conn:
        conn.execute("CREATE VIEW all_orders AS SELECT * FROM orders")
        conn.execute("CREATE VIEW big_orders AS SELECT * FROM all_orders WHERE amount > 20")
        conn.execute("CREATE TABLE archived_orders () INHERITS (orders)")
        conn.execute("INSERT INTO archived_orders VALUES (9, 'c', 90)")
        for relation in ("all_orders", "big_orders", "archived_orders"):
            conn.execute(f'GRANT SELECT ON {relation} TO "{reader_name(orders_database)}"')
    path = f"/api/v1/datasources/{setup['datasource']}/row-policies"
    assert api.post(path, json_body=policy(), token=admin).status == 201
    set_claims(api, setup, {"tenant": "a"})

    def run(sql: str, token: str) -> Any:
        made = api.post(
            "/api/v1/queries",
            json_body={"name": sql[:40], "datasource_id": setup["datasource"], "sql": sql},
            token=admin,
        )
        assert made.status == 201, made.body
        return run_query(api, token, made.json()["id"])

    for relation in ("all_orders", "public.big_orders", "archived_orders"):
        started = run(f"SELECT count(*) FROM {relation}", viewer)
        if started.json()["status"] == "queued":
            deliver(aws)
        ended = api.get(f"/api/v1/runs/{started.json()['id']}", token=viewer).json()
        assert (ended["status"], ended["error"]["code"]) == ("failed", "sql_not_allowed"), relation
        assert "row policy of its own" in ended["error"]["message"]
    # The parent filtered covers its children's rows; whom no policy names reads the view as before.
    assert rows_of(api, viewer, run("SELECT id FROM orders ORDER BY id", viewer), aws) == [[1], [3]]
    assert rows_of(api, admin, run("SELECT count(*) FROM big_orders", admin), aws) == [[4]]
    # A view with a policy of its own is read through it.
    assert api.post(path, json_body=policy(table="public.all_orders"), token=admin).status == 201
    assert rows_of(api, viewer, run("SELECT id FROM all_orders ORDER BY id", viewer), aws) == [[1], [3]]


def test_a_picture_is_drawn_only_from_a_result_of_the_callers_own_policy(
    api: Any, setup: dict[str, Any], aws: str
) -> None:
    admin, viewer = setup["admin"], setup["viewer"]
    made = api.post(
        f"/api/v1/datasources/{setup['datasource']}/row-policies", json_body=policy(), token=admin
    )
    assert made.status == 201, made.body
    set_claims(api, setup, {"tenant": "a"})
    table = api.post(
        "/api/v1/visualizations",
        json_body={"name": "orders", "query_id": setup["query"], "type": "table"},
        token=admin,
    ).json()["id"]
    path = f"/api/v1/visualizations/{table}/render"
    admin_run = run_query(api, admin, setup["query"])
    assert len(rows_of(api, admin, admin_run, aws)) == 5

    # The admin's result holds every tenant's rows: the viewer's picture is never drawn from it.
    assert_error(api.get(path, token=viewer, query={"format": "vega-lite"}), 409, "conflict")
    assert_error(
        api.get(path, token=viewer, query={"format": "vega-lite", "run_id": admin_run.json()["id"]}),
        404,
        "not_found",
    )
    viewer_run = run_query(api, viewer, setup["query"])
    rows_of(api, viewer, viewer_run, aws)
    drawn = api.get(path, token=viewer, query={"format": "vega-lite"})
    assert drawn.header("Loupe-Run-Id") == viewer_run.json()["id"]
    tenants = {cell["text"] for cell in drawn.json()["data"]["values"] if cell["column"] == "tenant"}
    assert tenants == {"a"}
