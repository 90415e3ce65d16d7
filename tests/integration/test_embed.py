"""Embed tokens and share links through the API: an editor mints a guest's token for one dashboard,
visualization or query result; the guest draws that resource only, with locked values applied, editable
filters only, the row policies naming embed tokens bound by the token's claims, from its allowed origins,
downloading rows only where allowed; tokens are revoked one by one or per resource."""

from __future__ import annotations

import time
from typing import Any

import jwt
import psycopg
import pytest
import requests

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
        "visualization": visualization["id"],
        "datasource": query["datasource_id"],
    }


def mint(api: Any, setup: dict[str, Any], kind: str = "dashboard", **body: Any) -> Any:
    return api.post(
        "/api/v1/embed-tokens",
        json_body={"resource": {"type": kind, "id": setup[kind]}, **body},
        token=setup["admin"],
    )


def guest(api: Any, token: str, method: str, path: str, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return api.request(method, f"/api/v1/embed{path}", headers=headers, **kwargs)


def drawn(api: Any, token: str, aws: str, **kwargs: Any) -> dict[str, Any]:
    """The one tile of the guest's resource, drawn once its run is done."""
    method = "POST" if "json_body" in kwargs else "GET"
    first = guest(api, token, method, "/data", **kwargs)
    assert first.status == 200, first.body
    if first.json()["pending_run_ids"]:
        deliver(aws)
        first = guest(api, token, method, "/data", **kwargs)
    [tile_data] = first.json()["tiles"]
    return dict(tile_data)


def rows(api: Any, token: str, aws: str, **kwargs: Any) -> list[list[Any]]:
    found: list[list[Any]] = drawn(api, token, aws, **kwargs)["results"]["rows"]
    return found


def sharing(api: Any, admin: str, enabled: bool) -> None:
    """An admin turns the organization's share links on or off."""
    changed = api.request(
        "PATCH",
        "/api/v1/organizations/current",
        json_body={"settings": {"share_links_enabled": enabled}},
        token=admin,
    )
    assert changed.status == 200, changed.body


def test_a_guest_draws_its_dashboard_under_its_claims_and_locked_values(
    api: Any, embedded: dict[str, Any], aws: str, clean_db: str
) -> None:
    made = mint(api, embedded, claims={"tenant": "a"}, locked={"regions": ["eu"]}, allowed_origins=[ORIGIN])
    assert made.status == 201, made.body
    token = made.json()["token"]
    assert jwt.get_unverified_header(token)["kid"]
    definition = guest(api, token, "GET", "/resource", headers={"Origin": ORIGIN})
    assert definition.status == 200, definition.body
    assert definition.json()["resource"] == {"type": "dashboard", "id": embedded["dashboard"]}
    assert definition.json()["dashboard"]["id"] == embedded["dashboard"]
    assert definition.json()["editable_filters"] == []
    assert definition.json()["downloads"] is False
    assert definition.header("Access-Control-Allow-Origin") == ORIGIN
    # Locked to eu, filtered to tenant a: one row of four.
    assert rows(api, token, aws) == [[1, "a"]]
    # A filter it may not change is a 422; another origin's page gets no CORS grant.
    # Its page reads the error; another origin's page gets no CORS grant, for answers or errors.
    refused = guest(
        api, token, "POST", "/data", json_body={"filters": {"regions": ["us"]}}, headers={"Origin": ORIGIN}
    )
    assert assert_error(refused, 422, "validation_error")["details"][0]["field"] == "body.filters.regions"
    assert refused.header("Access-Control-Allow-Origin") == ORIGIN
    for path in ("/resource", "/filters/nothing/options"):
        elsewhere = guest(api, token, "GET", path, headers={"Origin": "https://evil.example"})
        assert elsewhere.header("Access-Control-Allow-Origin") is None
    # Before a token is known, any page may read why it was refused (so it can mint another).
    unknown = guest(api, "not-a-token", "GET", "/resource", headers={"Origin": "https://evil.example"})
    assert unknown.status == 401
    assert unknown.header("Access-Control-Allow-Origin") == "https://evil.example"
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

    sharing(api, admin, True)
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
    assert listed[0]["resource"] == {"type": "dashboard", "id": embedded["dashboard"]}
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
    sharing(api, admin, False)
    assert guest(api, secret, "GET", "/resource").status == 401
    sharing(api, admin, True)
    assert guest(api, secret, "GET", "/resource").status == 200
    assert api.delete(f"{path}/{made.json()['id']}", token=admin).status == 204
    assert guest(api, secret, "GET", "/resource").status == 401
    assert api.delete(f"{path}/{made.json()['id']}", token=admin).status == 204
    past = api.post(path, json_body={"expires_at": "2020-01-01T00:00:00Z"}, token=admin)
    assert assert_error(past, 422, "validation_error")["details"][0]["field"] == "body.expires_at"


@pytest.mark.parametrize("kind", ["visualization", "query"])
def test_a_guest_of_a_visualization_or_a_query_draws_one_tile_whose_filters_are_its_parameters(
    api: Any, embedded: dict[str, Any], aws: str, kind: str
) -> None:
    made = mint(api, embedded, kind, claims={"tenant": "a"}, editable_filters=["regions"])
    assert made.status == 201, made.body
    token = made.json()["token"]
    view = guest(api, token, "GET", "/resource").json()
    assert view["resource"] == {"type": kind, "id": embedded[kind]}
    [one] = view["dashboard"]["tiles"]
    assert one["visualization_id"] == (embedded["visualization"] if kind == "visualization" else None)
    assert one["text"] is None
    assert [item["name"] for item in view["dashboard"]["filters"]] == ["regions"]
    shown = drawn(api, token, aws, json_body={"filters": {"regions": ["us"]}})
    assert shown["results"]["rows"] == [[3, "a"]]
    assert (shown["visualization"] is None) == (kind == "query")
    assert rows(api, token, aws) == [[1, "a"], [3, "a"]]
    # The dashboard's own filters are not a visualization's.
    refused = mint(api, embedded, kind, locked={"note": "y"})
    assert assert_error(refused, 422, "validation_error")["details"][0]["field"] == "body.locked.note"
    # A token outlives neither its visualization nor its query; revoking per resource names its type.
    other = mint(api, embedded, kind).json()
    revoked = api.delete(
        "/api/v1/embed-tokens",
        token=embedded["admin"],
        query={"resource_type": kind, "resource_id": embedded[kind]},
    )
    assert revoked.json() == {"revoked": 2}
    assert guest(api, other["token"], "GET", "/resource").status == 401
    doomed = mint(api, embedded, kind).json()["token"]
    deleted = api.delete(
        f"/api/v1/{kind.replace('y', 'ie')}s/{embedded[kind]}?cascade=true", token=embedded["admin"]
    )
    assert deleted.status == 204, deleted.body
    assert guest(api, doomed, "GET", "/resource").status == 401


def test_a_guest_downloads_the_rows_it_is_shown_only_where_allowed(
    api: Any, embedded: dict[str, Any], aws: str
) -> None:
    plain = mint(api, embedded, claims={"tenant": "a"}).json()["token"]
    tile_id = guest(api, plain, "GET", "/resource").json()["dashboard"]["tiles"][0]["id"]
    body = {"tile_id": tile_id, "format": "csv"}
    assert_error(guest(api, plain, "POST", "/downloads", json_body=body), 403, "forbidden")

    token = mint(api, embedded, claims={"tenant": "a"}, downloads=True, editable_filters=["regions"]).json()
    token = token["token"]
    # Nothing drawn yet for these values: nothing to download, and nothing started by asking.
    us = {**body, "filters": {"regions": ["us"]}}
    assert_error(guest(api, token, "POST", "/downloads", json_body=us), 409, "conflict")
    assert guest(api, token, "POST", "/data", json_body={"filters": {"regions": ["us"]}}).json()[
        "pending_run_ids"
    ]
    deliver(aws)
    made = guest(api, token, "POST", "/downloads", json_body=us)
    assert made.status == 200, made.body
    fetched = requests.get(made.json()["url"], timeout=10)
    assert fetched.status_code == 200
    assert fetched.text.splitlines() == ["id,tenant", "3,a"]
    # Only its own tiles, only its editable filters.
    assert_error(
        guest(api, token, "POST", "/downloads", json_body={**body, "tile_id": embedded["query"]}),
        404,
        "not_found",
    )
    locked = mint(api, embedded, claims={"tenant": "a"}, downloads=True).json()["token"]
    refused = guest(api, locked, "POST", "/downloads", json_body=us)
    assert assert_error(refused, 422, "validation_error")["details"][0]["field"] == "body.filters.regions"


@pytest.mark.parametrize(("kind", "collection"), [("visualization", "visualizations"), ("query", "queries")])
def test_visualizations_and_queries_have_share_links_of_their_own(
    api: Any, embedded: dict[str, Any], aws: str, kind: str, collection: str
) -> None:
    admin = embedded["admin"]
    sharing(api, admin, True)
    path = f"/api/v1/{collection}/{embedded[kind]}/shares"
    made = api.post(path, json_body={"downloads": True}, token=admin)
    assert made.status == 201, made.body
    assert made.header("Location").endswith(f"{path}/{made.json()['id']}")
    assert made.json()["resource"] == {"type": kind, "id": embedded[kind]}
    assert made.json()["downloads"] is True
    assert rows(api, made.json()["token"], aws) == [[1, "a"], [2, "b"], [3, "a"], [4, "c"]]
    [listed] = api.get(path, token=admin).json()["items"]
    assert listed["id"] == made.json()["id"]
    # Listed and revoked only under its own resource.
    dashboard_path = f"/api/v1/dashboards/{embedded['dashboard']}/shares"
    assert api.get(dashboard_path, token=admin).json()["items"] == []
    assert_error(api.delete(f"{dashboard_path}/{listed['id']}", token=admin), 404, "not_found")
    assert api.delete(f"{path}/{listed['id']}", token=admin).status == 204
    assert guest(api, made.json()["token"], "GET", "/resource").status == 401
    assert_error(
        api.get(f"/api/v1/{collection}/{embedded['dashboard']}/shares", token=admin), 404, "not_found"
    )
