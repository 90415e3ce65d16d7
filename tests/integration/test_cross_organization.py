"""A member of one organization gets 404 for every route that touches another organization's
resource: by id in the path, and by reference inside a body."""

from __future__ import annotations

import re
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests import factories


@pytest.fixture
def other_organization(api: Any, register: Any, clean_db: str) -> dict[str, str]:
    """Org A's resources, one of each kind, created without going through B's eyes."""
    owner = register()
    org = owner.organization_id
    datasource = factories.datasource(clean_db, org)
    query = factories.query(clean_db, org, datasource)
    visualization = factories.visualization(clean_db, org, query)
    dashboard = factories.dashboard(clean_db, org)
    with psycopg.connect(clean_db) as conn:

        def insert(sql: str, params: tuple[Any, ...]) -> str:
            row = conn.execute(sql, params).fetchone()
            assert row is not None
            return str(row[0])

        schedule = insert(
            "INSERT INTO schedules (organization_id, query_id, name, cron, timezone)"
            " VALUES (%s, %s, 's', '0 * * * *', 'UTC') RETURNING id",
            (org, query),
        )
        canvas = insert(
            "INSERT INTO canvases (organization_id, name, time_preset, nodes, edges)"
            " VALUES (%s, 'c', 'last_7d', %s, %s) RETURNING id",
            (org, Jsonb([]), Jsonb([])),
        )
        api_key = insert(
            "INSERT INTO api_keys (organization_id, name, role, prefix, key_hash)"
            " VALUES (%s, 'k', 'viewer', 'lk_abc', %s) RETURNING id",
            (org, uuid.uuid4().bytes + uuid.uuid4().bytes),
        )
        invitation = insert(
            "INSERT INTO invitations (organization_id, email, role, token_hash, expires_at)"
            " VALUES (%s, 'invitee@example.com', 'viewer', %s, now() + interval '1 day') RETURNING id",
            (org, uuid.uuid4().bytes + uuid.uuid4().bytes),
        )
        embed_token = insert(
            "INSERT INTO embed_tokens (organization_id, resource_type, resource_id, expires_at)"
            " VALUES (%s, 'dashboard', %s, now() + interval '1 hour') RETURNING id",
            (org, dashboard),
        )
        snippet = insert(
            "INSERT INTO snippets (organization_id, name, sql) VALUES (%s, 'shared', 'SELECT 1')"
            " RETURNING id",
            (org,),
        )
        destination = insert(
            "INSERT INTO destinations (organization_id, name, type, recipients)"
            " VALUES (%s, 'd', 'email', %s) RETURNING id",
            (org, Jsonb(["owner@example.com"])),
        )
        subscription = insert(
            "INSERT INTO subscriptions (organization_id, name, owner_id, resource_type, resource_id, cron,"
            " formats, destination_ids)"
            " VALUES (%s, 's', %s, 'dashboard', %s, '0 * * * *', %s, %s) RETURNING id",
            (org, owner.user_id, dashboard, Jsonb(["png"]), Jsonb([destination])),
        )
        run = insert(
            "INSERT INTO runs (organization_id, query_id, datasource_id, sql, parameters, cache_key, status)"
            " VALUES (%s, %s, %s, 'SELECT 1', %s, 'cache-key', 'queued') RETURNING id",
            (org, query, datasource, Jsonb({})),
        )
    sessions = api.get("/api/v1/auth/sessions", token=owner.access_token).json()["items"]
    return {
        "datasources": datasource,
        "queries": query,
        "snippets": snippet,
        "visualizations": visualization,
        "dashboards": dashboard,
        "schedules": schedule,
        "canvases": canvas,
        "api-keys": api_key,
        "embed-tokens": embed_token,
        "invitations": invitation,
        "users": owner.user_id,
        "sessions": sessions[0]["id"],
        "runs": run,
        "destinations": destination,
        "subscriptions": subscription,
    }


def resource_of(path: str) -> str:
    """Which of A's resources a path's id names: the collection just before the first parameter."""
    segments = path.strip("/").split("/")
    first_parameter = next(index for index, segment in enumerate(segments) if segment.startswith("{"))
    return segments[first_parameter - 1]


# Routes whose body or query string must be valid for the request to reach the organization check.
VALID_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PUT", "/organizations/users/{}/role"): {"role": "viewer"},
    ("PUT", "/organizations/users/{}/claims"): {"claims": {"tenant": "b"}},
    ("PUT", "/api-keys/{}/claims"): {"claims": {"tenant": "b"}},
    ("POST", "/datasources/{}/row-policies"): {
        "table": "public.orders",
        "predicate": "tenant = :claims.tenant",
        "applies_to": {"roles": ["viewer"]},
    },
    ("POST", "/runs/{}/exports"): {"format": "csv"},
}
VALID_QUERIES: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/runs/{}/export"): {"format": "csv"},
}


def test_every_route_with_an_id_answers_404_for_another_organization(
    api: Any, register: Any, other_organization: dict[str, str]
) -> None:
    outsider = register()  # admin of organization B: the strongest role there is
    document = api.get("/api/v1/openapi.json").json()
    checked = 0
    failures = []
    for path, item in document["paths"].items():
        # Guest routes take no session (any is 401) and name no id: test_embed keeps a guest to its own.
        if "{" not in path or path.startswith("/embed/"):
            continue
        for method in item:
            target = other_organization[resource_of(path)]
            concrete = "/api/v1" + re.sub(r"\{[^}]+\}", target, path, count=1)
            # A nested resource's own id (an export of the run) is one B never made either; a revision
            # number is one any resource has.
            concrete = re.sub(r"\{number\}", "1", concrete)
            concrete = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), concrete)
            key = (method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
            response = api.request(
                method.upper(),
                concrete,
                json_body=VALID_BODIES.get(key, {}),
                query=VALID_QUERIES.get(key),
                token=outsider.access_token,
            )
            checked += 1
            if response.status != 404:
                failures.append(f"{method.upper()} {path}: {response.status} {response.body[:200]}")
    assert checked > 10
    assert failures == []


REFERENCE_BODIES = {
    "/api/v1/queries": lambda ids: {"name": "q", "datasource_id": ids["datasources"], "sql": "SELECT 1"},
    "/api/v1/visualizations": lambda ids: {
        "name": "v",
        "query_id": ids["queries"],
        "type": "table",
        "options": {},
    },
    "/api/v1/dashboards": lambda ids: {
        "name": "d",
        "tiles": [{"visualization_id": ids["visualizations"], "x": 0, "y": 0, "w": 6, "h": 4}],
    },
    "/api/v1/schedules": lambda ids: {"name": "s", "query_id": ids["queries"], "cron": "0 * * * *"},
    "/api/v1/canvases": lambda ids: {
        "name": "c",
        "time_preset": "last_7d",
        "nodes": [{"id": "n1", "type": "query", "ref_id": ids["queries"], "position": {"x": 0, "y": 0}}],
        "edges": [],
    },
}


@pytest.mark.parametrize("collection", sorted(REFERENCE_BODIES))
def test_references_inside_a_body_to_another_organization_are_404(
    api: Any, register: Any, other_organization: dict[str, str], collection: str
) -> None:
    outsider = register()
    body = REFERENCE_BODIES[collection](other_organization)
    response = api.post(collection, json_body=body, token=outsider.access_token)
    assert response.status == 404, response.body
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("collection", sorted(REFERENCE_BODIES))
def test_the_same_references_inside_the_organization_are_accepted(
    api: Any, register: Any, clean_db: str, collection: str
) -> None:
    """The control: the bodies above are valid, so the 404s come from the organization check."""
    insider = register()
    org = insider.organization_id
    datasource = factories.datasource(clean_db, org)
    query = factories.query(clean_db, org, datasource)
    own = {
        "datasources": datasource,
        "queries": query,
        "visualizations": factories.visualization(clean_db, org, query),
    }
    response = api.post(collection, json_body=REFERENCE_BODIES[collection](own), token=insider.access_token)
    assert response.status == 201, response.body


def test_row_level_security_hides_every_tenant_table(
    register: Any, clean_db: str, other_organization: dict[str, str]
) -> None:
    """As the application role: no organization set → no rows; another organization's id → no rows."""
    bystander = register()
    with psycopg.connect(clean_db) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.columns"
                " WHERE table_schema = 'public' AND column_name = 'organization_id' ORDER BY table_name"
            )
        ]
        owner_org = conn.execute(
            "SELECT organization_id FROM datasources WHERE id = %s", (other_organization["datasources"],)
        ).fetchone()
        assert owner_org is not None
        populated = [
            table for table in tables if conn.execute(f'SELECT count(*) FROM "{table}"').fetchone() != (0,)
        ]
        assert {"datasources", "queries", "memberships", "sessions", "schedules", "canvases"} <= set(
            populated
        )
        for organization in (None, bystander.organization_id):
            with conn.transaction():
                conn.execute("SET LOCAL ROLE loupe_app")
                if organization is not None:
                    conn.execute("SELECT set_config('loupe.organization_id', %s, true)", (organization,))
                for table in populated:
                    visible = conn.execute(
                        f'SELECT count(*) FROM "{table}" WHERE organization_id = %s', (owner_org[0],)
                    ).fetchone()
                    assert visible == (0,), (table, organization)


def test_every_foreign_reference_in_a_body_is_named(
    api: Any, register: Any, clean_db: str, other_organization: dict[str, str]
) -> None:
    """References are checked together (one query), and each foreign one is reported."""
    outsider = register()
    own = factories.visualization(clean_db, outsider.organization_id)
    foreign = other_organization["visualizations"]
    tiles = [
        {"visualization_id": foreign, "x": 0, "y": 0, "w": 4, "h": 2},
        {"visualization_id": own, "x": 4, "y": 0, "w": 4, "h": 2},
        {"visualization_id": foreign, "x": 8, "y": 0, "w": 4, "h": 2},
    ]
    response = api.post(
        "/api/v1/dashboards", json_body={"name": "d", "tiles": tiles}, token=outsider.access_token
    )
    assert response.status == 404, response.body
    fields = [detail["field"] for detail in response.json()["error"]["details"]]
    assert fields == ["body.tiles.0.visualization_id", "body.tiles.2.visualization_id"]
