"""Embed tokens through the API: an editor mints a guest's token for one dashboard; the guest draws that
dashboard only, with locked values applied, editable filters only, the row policies naming embed tokens
bound by the token's claims, from its allowed origins; tokens are revoked one by one or per dashboard."""

from __future__ import annotations

import time
from typing import Any

import jwt
import psycopg
import pytest

from loupe.config import get_settings
from tests import factories
from tests.integration import runs_support
from tests.integration.runs_support import add_orders, deliver, saved_query
from tests.integration.test_dashboards import assert_error, tile

aws = runs_support.aws
postgres_database = runs_support.postgres_database

ORDERS = [(1, "a", "eu"), (2, "b", "eu"), (3, "a", "us"), (4, "c", "us")]
ORIGIN = "https://app.example.com"


@pytest.fixture
def embedded(api: Any, register: Any, clean_db: str, postgres_database: str, aws: str) -> dict[str, Any]:
    add_orders(postgres_database, "id int PRIMARY KEY, tenant text NOT NULL, region text NOT NULL", ORDERS)
    admin = register()
    token = admin.access_token
    query = saved_query(
        api,
        token,
        postgres_database,
        "SELECT id, tenant FROM orders WHERE region IN {{ regions }} ORDER BY id",
        [{"name": "regions", "type": "text", "multi": True, "default": ["eu", "us"]}],
    ).json()
    visualization = api.post(
        "/api/v1/visualizations",
        json_body={"name": "Orders", "query_id": query["id"], "type": "table", "options": {}},
        token=token,
    ).json()
    filters = [
        {"name": "regions", "type": "text", "multi": True, "default": ["eu", "us"]},
        {"name": "note", "type": "text", "default": "x"},
    ]
    dashboard = api.post(
        "/api/v1/dashboards",
        json_body={
            "name": "Customer view",
            "filters": filters,
            "tiles": [
                tile(0, 0, 6, 4, visualization_id=visualization["id"], param_mappings={"regions": "regions"})
            ],
        },
        token=token,
    )
    assert dashboard.status == 201, dashboard.body
    policy = api.post(
        f"/api/v1/datasources/{query['datasource_id']}/row-policies",
        json_body={
            "table": "public.orders",
            "predicate": "tenant = :claims.tenant",
            "applies_to": {"embed_tokens": True},
        },
        token=token,
    )
    assert policy.status == 201, policy.body
    other_dashboard = api.post("/api/v1/dashboards", json_body={"name": "Internal"}, token=token).json()
    return {
        "admin": token,
        "organization_id": admin.organization_id,
        "dashboard": dashboard.json()["id"],
        "other_dashboard": other_dashboard["id"],
        "query": query["id"],
        "datasource": query["datasource_id"],
    }


def mint(api: Any, setup: dict[str, Any], **body: Any) -> Any:
    return api.post(
        "/api/v1/embed-tokens",
        json_body={"resource": {"type": "dashboard", "id": setup["dashboard"]}, **body},
        token=setup["admin"],
    )


def guest(api: Any, token: str, method: str, path: str, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return api.request(method, f"/api/v1/embed{path}", headers=headers, **kwargs)


def rows(api: Any, token: str, aws: str, **kwargs: Any) -> list[list[Any]]:
    method = "POST" if "json_body" in kwargs else "GET"
    first = guest(api, token, method, "/data", **kwargs)
    assert first.status == 200, first.body
    if first.json()["pending_run_ids"]:
        deliver(aws)
        first = guest(api, token, method, "/data", **kwargs)
    [drawn] = first.json()["tiles"]
    found: list[list[Any]] = drawn["results"]["rows"]
    return found


def test_a_guest_draws_its_dashboard_under_its_claims_and_locked_values(
    api: Any, embedded: dict[str, Any], aws: str, clean_db: str
) -> None:
    made = mint(api, embedded, claims={"tenant": "a"}, locked={"regions": ["eu"]}, allowed_origins=[ORIGIN])
    assert made.status == 201, made.body
    token = made.json()["token"]
    assert jwt.get_unverified_header(token)["kid"]
    definition = guest(api, token, "GET", "/resource", headers={"Origin": ORIGIN})
    assert definition.status == 200, definition.body
    assert definition.json()["id"] == embedded["dashboard"]
    assert definition.header("Access-Control-Allow-Origin") == ORIGIN
    # Locked to eu, filtered to tenant a: one row of four.
    assert rows(api, token, aws) == [[1, "a"]]
    # A filter it may not change is a 422; another origin's page gets no CORS grant.
    refused = guest(api, token, "POST", "/data", json_body={"filters": {"regions": ["us"]}})
    assert assert_error(refused, 422, "validation_error")["details"][0]["field"] == "body.filters.regions"
    elsewhere = guest(api, token, "GET", "/resource", headers={"Origin": "https://evil.example"})
    assert elsewhere.header("Access-Control-Allow-Origin") is None
    with psycopg.connect(clean_db) as conn:
        origins = {row[0] for row in conn.execute("SELECT origin FROM runs WHERE embed_token_id IS NOT NULL")}
    assert origins == {"embed"}

    # Other claims, other rows: never the first guest's cached run.
    other = mint(api, embedded, claims={"tenant": "c"}, editable_filters=["regions"]).json()["token"]
    assert rows(api, other, aws, json_body={"filters": {"regions": ["us"]}}) == [[4, "c"]]
    assert rows(api, other, aws) == [[4, "c"]]


def test_a_guest_reaches_nothing_but_its_dashboard(api: Any, embedded: dict[str, Any]) -> None:
    token = mint(api, embedded, claims={"tenant": "a"}).json()["token"]
    # Not a session: every other route refuses it.
    for method, path in (
        ("GET", f"/api/v1/dashboards/{embedded['dashboard']}"),
        ("GET", "/api/v1/queries"),
        ("GET", "/api/v1/runs"),
        ("POST", "/api/v1/embed-tokens"),
        ("GET", "/api/v1/auth/me"),
    ):
        answer = api.request(method, path, headers={"Authorization": f"Bearer {token}"}, json_body={})
        assert answer.status == 401, (method, path, answer.body)
    # A session is no guest.
    assert guest(api, embedded["admin"], "GET", "/resource").status == 401
    assert_error(guest(api, token, "GET", "/filters/note/options"), 404, "not_found")
    assert api.request("GET", "/api/v1/embed/resource").status == 401


def test_tokens_are_revoked_one_by_one_or_per_dashboard_and_expire(
    api: Any, embedded: dict[str, Any], clean_db: str
) -> None:
    first = mint(api, embedded, claims={"tenant": "a"}).json()
    second = mint(api, embedded, claims={"tenant": "b"}).json()
    third = mint(api, embedded, claims={"tenant": "c"}).json()
    assert api.delete(f"/api/v1/embed-tokens/{first['jti']}", token=embedded["admin"]).status == 204
    assert guest(api, first["token"], "GET", "/resource").status == 401
    assert guest(api, second["token"], "GET", "/resource").status == 200
    revoked = api.delete(
        "/api/v1/embed-tokens",
        token=embedded["admin"],
        query={"resource_type": "dashboard", "resource_id": embedded["dashboard"]},
    )
    assert revoked.status == 200, revoked.body
    assert revoked.json() == {"revoked": 2}
    assert guest(api, third["token"], "GET", "/resource").status == 401
    # An expired row refuses its token even while the signature still holds.
    live = mint(api, embedded, claims={"tenant": "a"}).json()
    with psycopg.connect(clean_db) as conn:
        conn.execute(
            "UPDATE embed_tokens SET expires_at = now() - interval '1 second' WHERE id = %s", (live["jti"],)
        )
    assert guest(api, live["token"], "GET", "/resource").status == 401
    # A token outlives neither its dashboard...
    doomed = mint(api, embedded, claims={"tenant": "a"}).json()
    assert api.delete(f"/api/v1/dashboards/{embedded['dashboard']}", token=embedded["admin"]).status == 204
    assert guest(api, doomed["token"], "GET", "/data").status == 401
    # ...nor a signature by another secret.
    settings = get_settings()
    forged = jwt.encode(
        {
            "iss": settings.jwt_issuer,
            "aud": settings.jwt_audience + ":embed",
            "jti": live["jti"],
            "org": embedded["organization_id"],
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        "not-the-secret-" * 4,
        algorithm="HS256",
    )
    assert guest(api, forged, "GET", "/resource").status == 401
    with psycopg.connect(clean_db) as conn:
        actions = [
            row[0]
            for row in conn.execute("SELECT action FROM audit_events WHERE action LIKE 'embed_token.%%'")
        ]
    assert {"embed_token.created", "embed_token.revoked", "embed_token.revoked_all"} <= set(actions)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"locked": {"nobody": 1}}, "body.locked.nobody"),
        ({"editable_filters": ["nobody"]}, "body.editable_filters.0"),
        ({"locked": {"note": "y"}, "editable_filters": ["note"]}, "body.editable_filters.0"),
        ({"locked": {"regions": "eu"}}, "body.locked.regions"),
        ({"allowed_origins": ["https://app.example.com/path"]}, "body.allowed_origins.0"),
        ({"lifetime_seconds": 86_401}, "body.lifetime_seconds"),
        ({"claims": {"not a name": 1}}, "body.claims.not a name.[key]"),
    ],
)
def test_tokens_are_validated(api: Any, embedded: dict[str, Any], body: dict[str, Any], field: str) -> None:
    refused = mint(api, embedded, **body)
    assert refused.status == 422, refused.body
    assert refused.json()["error"]["details"][0]["field"] == field


def test_viewers_and_other_organizations_mint_nothing(
    api: Any, embedded: dict[str, Any], register: Any, clean_db: str
) -> None:
    viewer = factories.member(api, clean_db, embedded["organization_id"], "viewer")[1]["access_token"]
    body = {"resource": {"type": "dashboard", "id": embedded["dashboard"]}}
    assert_error(api.post("/api/v1/embed-tokens", json_body=body, token=viewer), 403, "forbidden")
    stranger = register().access_token
    assert_error(api.post("/api/v1/embed-tokens", json_body=body, token=stranger), 404, "not_found")
    preflight = api.request("OPTIONS", "/api/v1/embed/data", headers={"Origin": ORIGIN})
    assert preflight.status == 204
    assert preflight.header("Access-Control-Allow-Origin") == ORIGIN


def test_share_links_are_off_until_enabled_then_counted_and_revocable(
    api: Any, embedded: dict[str, Any], aws: str, clean_db: str
) -> None:
    admin, path = embedded["admin"], f"/api/v1/dashboards/{embedded['dashboard']}/shares"
    assert_error(api.post(path, json_body={}, token=admin), 409, "conflict")

    def sharing(enabled: bool) -> None:
        changed = api.request(
            "PATCH",
            "/api/v1/organizations/current",
            json_body={"settings": {"share_links_enabled": enabled}},
            token=admin,
        )
        assert changed.status == 200, changed.body

    sharing(True)
    made = api.post(path, json_body={"claims": {"tenant": "b"}, "editable_filters": ["regions"]}, token=admin)
    assert made.status == 201, made.body
    secret = made.json()["token"]
    assert secret.startswith("lsh_")
    # Guests of share links are bound by the policies naming share links, not those naming embed tokens.
    assert rows(api, secret, aws) == [[1, "a"], [2, "b"], [3, "a"], [4, "c"]]
    policy = api.post(
        f"/api/v1/datasources/{embedded['datasource']}/row-policies",
        json_body={
            "table": "public.orders",
            "predicate": "tenant = :claims.tenant",
            "applies_to": {"share_links": True},
        },
        token=admin,
    )
    assert policy.status == 201, policy.body
    assert rows(api, secret, aws, json_body={"filters": {"regions": ["eu"]}}) == [[2, "b"]]
    listed = api.get(path, token=admin).json()["items"]
    assert [item["id"] for item in listed] == [made.json()["id"]]
    assert "token" not in listed[0]
    assert listed[0]["access_count"] >= 2
    assert listed[0]["claims"] == ["tenant"]
    with psycopg.connect(clean_db) as conn:
        origins = {
            row[0]
            for row in conn.execute("SELECT origin FROM runs WHERE embed_token_id = %s", (made.json()["id"],))
        }
    assert origins == {"share"}

    # Turned off, every link stops; revoked, it stays stopped.
    sharing(False)
    assert guest(api, secret, "GET", "/resource").status == 401
    sharing(True)
    assert guest(api, secret, "GET", "/resource").status == 200
    assert api.delete(f"{path}/{made.json()['id']}", token=admin).status == 204
    assert guest(api, secret, "GET", "/resource").status == 401
    assert api.delete(f"{path}/{made.json()['id']}", token=admin).status == 204
    past = api.post(path, json_body={"expires_at": "2020-01-01T00:00:00Z"}, token=admin)
    assert assert_error(past, 422, "validation_error")["details"][0]["field"] == "body.expires_at"
