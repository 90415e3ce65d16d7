"""Every documented route against every kind of caller: anonymous, viewer, editor, admin (as users
and as API keys). The table below is the contract of API.md "Roles", written out independently of
the code; a route missing from it (or a row with no route) fails the suite."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from loupe.models.identity import Role
from loupe.security import tokens
from tests import factories
from tests.integration import runs_support

# Routes that hand out signed URLs need the results bucket (moto's) to be let in rather than 503.
aws = runs_support.aws

PUBLIC = None
GUEST = "guest"
V, E, A = Role.VIEWER, Role.EDITOR, Role.ADMIN
USERS_ONLY = "users-only"  # sessions belong to users; an API key is refused with 401

# (method, path with {} for each parameter) -> the least role, PUBLIC, or (role, USERS_ONLY).
ACCESS: dict[tuple[str, str], Any] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/health/ready"): PUBLIC,
    ("POST", "/auth/register"): PUBLIC,
    ("POST", "/auth/login"): PUBLIC,
    ("POST", "/auth/refresh"): PUBLIC,
    ("POST", "/auth/accept-invitation"): PUBLIC,
    ("POST", "/auth/password-reset/request"): PUBLIC,
    ("POST", "/auth/password-reset/confirm"): PUBLIC,
    ("POST", "/auth/password"): (V, USERS_ONLY),
    ("POST", "/auth/logout"): (V, USERS_ONLY),
    ("POST", "/auth/logout-all"): (V, USERS_ONLY),
    ("GET", "/auth/sessions"): (V, USERS_ONLY),
    ("DELETE", "/auth/sessions/{}"): (V, USERS_ONLY),
    ("GET", "/auth/me"): (V, USERS_ONLY),
    ("POST", "/auth/switch-organization"): (V, USERS_ONLY),
    ("GET", "/organizations/current"): V,
    ("PATCH", "/organizations/current"): A,
    ("GET", "/organizations/users"): A,
    ("PUT", "/organizations/users/{}/role"): A,
    ("PUT", "/organizations/users/{}/claims"): A,
    ("DELETE", "/organizations/users/{}"): A,
    ("POST", "/organizations/invitations"): A,
    ("GET", "/organizations/invitations"): A,
    ("DELETE", "/organizations/invitations/{}"): A,
    ("GET", "/organizations/usage"): A,
    ("POST", "/api-keys"): A,
    ("GET", "/api-keys"): A,
    ("DELETE", "/api-keys/{}"): A,
    ("PUT", "/api-keys/{}/claims"): A,
    ("POST", "/datasources"): A,
    ("GET", "/datasources"): V,
    ("GET", "/datasources/{}"): V,
    ("PATCH", "/datasources/{}"): A,
    ("DELETE", "/datasources/{}"): A,
    ("POST", "/datasources/{}/test"): V,
    ("GET", "/datasources/{}/schema"): V,
    ("POST", "/datasources/{}/row-policies"): A,
    ("GET", "/datasources/{}/row-policies"): A,
    ("GET", "/datasources/{}/row-policies/{}"): A,
    ("DELETE", "/datasources/{}/row-policies/{}"): A,
    ("GET", "/audit-events"): A,
    ("POST", "/dashboards/{}/refresh"): V,
    ("GET", "/schedules/{}/runs"): V,
    ("GET", "/schedules/{}/alerts"): V,
    ("POST", "/runs"): E,
    ("GET", "/runs"): V,
    ("GET", "/runs/{}"): V,
    ("GET", "/runs/{}/results"): V,
    ("GET", "/runs/{}/export"): V,
    ("POST", "/runs/{}/exports"): V,
    ("GET", "/runs/{}/exports"): V,
    ("GET", "/runs/{}/exports/{}"): V,
    ("POST", "/runs/{}/cancel"): E,
    ("POST", "/queries/{}/runs"): V,
    ("GET", "/queries/{}/runs"): V,
    ("GET", "/queries/{}/parameters/{}/options"): V,
    ("GET", "/dashboards/{}/data"): V,
    ("POST", "/dashboards/{}/data"): V,
    ("POST", "/dashboards/{}/filters/{}/options"): V,
    ("POST", "/embed-tokens"): E,
    ("DELETE", "/embed-tokens"): E,
    ("DELETE", "/embed-tokens/{}"): E,
    ("POST", "/dashboards/{}/shares"): E,
    ("GET", "/dashboards/{}/shares"): E,
    ("DELETE", "/dashboards/{}/shares/{}"): E,
    ("GET", "/queries/{}/revisions"): V,
    ("GET", "/queries/{}/revisions/{}"): V,
    ("POST", "/queries/{}/revisions/{}/restore"): E,
    ("GET", "/visualizations/{}/revisions"): V,
    ("GET", "/visualizations/{}/revisions/{}"): V,
    ("POST", "/visualizations/{}/revisions/{}/restore"): E,
    ("GET", "/dashboards/{}/revisions"): V,
    ("GET", "/dashboards/{}/revisions/{}"): V,
    ("POST", "/dashboards/{}/revisions/{}/restore"): E,
    ("GET", "/canvases/{}/revisions"): V,
    ("GET", "/canvases/{}/revisions/{}"): V,
    ("POST", "/canvases/{}/revisions/{}/restore"): E,
    ("GET", "/bundles"): V,
    ("POST", "/bundles/plan"): E,
    ("GET", "/bundles/download"): V,
    ("POST", "/bundles/uploads"): E,
    ("POST", "/bundles/apply"): E,
    ("POST", "/visualizations/{}/shares"): E,
    ("GET", "/visualizations/{}/shares"): E,
    ("DELETE", "/visualizations/{}/shares/{}"): E,
    ("POST", "/queries/{}/shares"): E,
    ("GET", "/queries/{}/shares"): E,
    ("DELETE", "/queries/{}/shares/{}"): E,
    # Guest routes take an embed token only: every session and API key is refused (test_embed: guests).
    ("GET", "/embed/resource"): GUEST,
    ("GET", "/embed/data"): GUEST,
    ("POST", "/embed/data"): GUEST,
    ("GET", "/embed/filters/{}/options"): GUEST,
    ("POST", "/embed/downloads"): GUEST,
    ("GET", "/embed/render"): GUEST,
    ("POST", "/embed/render"): GUEST,
    ("GET", "/visualizations/{}/render"): V,
    ("GET", "/dashboards/{}/render"): V,
    ("POST", "/dashboards/{}/render"): V,
    ("POST", "/destinations"): A,
    ("GET", "/destinations"): V,
    ("GET", "/destinations/{}"): V,
    ("PATCH", "/destinations/{}"): A,
    ("DELETE", "/destinations/{}"): A,
    ("POST", "/destinations/{}/rotate-secret"): A,
    ("POST", "/destinations/{}/test"): A,
    ("GET", "/subscriptions/{}/deliveries"): V,
}
# The standard five routes of the resources editors write and everyone reads.
for collection in (
    "queries",
    "snippets",
    "visualizations",
    "dashboards",
    "schedules",
    "canvases",
    "subscriptions",
):
    ACCESS |= {
        ("POST", f"/{collection}"): E,
        ("GET", f"/{collection}"): V,
        ("GET", f"/{collection}/{{}}"): V,
        ("PATCH", f"/{collection}/{{}}"): E,
        ("DELETE", f"/{collection}/{{}}"): E,
    }


def normalized(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


@dataclass(frozen=True)
class Credential:
    name: str
    role: Role | None
    headers: dict[str, str]
    is_user: bool
    is_guest: bool = False


def add_api_key(database_url: str, organization_id: str, role: str) -> str:
    key = tokens.new_secret_token(tokens.API_KEY_PREFIX)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO api_keys (organization_id, name, role, prefix, key_hash)"
            " VALUES (%s, %s, %s, %s, %s)",
            (organization_id, f"{role} key", role, key[:10], tokens.digest(key)),
        )
    return key


@pytest.fixture
def credentials(api: Any, register: Any, clean_db: str) -> list[Credential]:
    admin = register()
    found = [
        Credential("anonymous", None, {}, is_user=False),
        Credential("admin", A, {"Authorization": f"Bearer {admin.access_token}"}, is_user=True),
    ]
    for role in ("viewer", "editor"):
        token = factories.member(api, clean_db, admin.organization_id, role)[1]["access_token"]
        found.append(Credential(role, Role.parse(role), {"Authorization": f"Bearer {token}"}, is_user=True))
    for role in ("viewer", "editor", "admin"):
        key = add_api_key(clean_db, admin.organization_id, role)
        found.append(Credential(f"{role} api key", Role.parse(role), {"X-API-Key": key}, is_user=False))
    # A guest: an embed token of a dashboard of the organization, and a share link of it.
    bearer = f"Bearer {admin.access_token}"
    dashboard = api.post("/api/v1/dashboards", json_body={"name": "shown"}, headers={"Authorization": bearer})
    embed = api.post(
        "/api/v1/embed-tokens",
        json_body={"resource": {"type": "dashboard", "id": dashboard.json()["id"]}},
        headers={"Authorization": bearer},
    )
    assert embed.status == 201, embed.body
    found.append(
        Credential(
            "guest", None, {"Authorization": f"Bearer {embed.json()['token']}"}, is_user=False, is_guest=True
        )
    )
    api.request(
        "PATCH",
        "/api/v1/organizations/current",
        json_body={"settings": {"share_links_enabled": True}},
        headers={"Authorization": bearer},
    )
    share = api.post(
        f"/api/v1/dashboards/{dashboard.json()['id']}/shares", json_body={}, headers={"Authorization": bearer}
    )
    assert share.status == 201, share.body
    found.append(
        Credential(
            "share guest",
            None,
            {"Authorization": f"Bearer {share.json()['token']}"},
            is_user=False,
            is_guest=True,
        )
    )
    return found


# Routes that end the caller's own sessions go last, so every other route still sees live credentials.
ENDS_SESSIONS = (("DELETE", "/auth/sessions/{}"), ("POST", "/auth/logout"), ("POST", "/auth/logout-all"))


def run_order(operation: tuple[str, str]) -> int:
    key = (operation[0], normalized(operation[1]))
    return ENDS_SESSIONS.index(key) + 1 if key in ENDS_SESSIONS else 0


def documented_operations(api: Any) -> list[tuple[str, str]]:
    document = api.get("/api/v1/openapi.json").json()
    operations = [(method.upper(), path) for path, item in document["paths"].items() for method in item]
    return sorted(operations, key=run_order)


def test_the_table_and_the_document_name_the_same_routes(api: Any) -> None:
    documented = {(method, normalized(path)) for method, path in documented_operations(api)}
    assert documented - set(ACCESS) == set(), "routes without an access rule in this test"
    assert set(ACCESS) - documented == set(), "access rules for routes that do not exist"


def expected_denial(rule: Any, credential: Credential) -> int | None:
    """The status the credential must get, or None when it must be let through."""
    if rule is PUBLIC:
        return None
    # A guest is let onto the guest routes alone; everyone else is a stranger there.
    if rule is GUEST or credential.is_guest:
        return None if rule is GUEST and credential.is_guest else 401
    minimum, users_only = rule if isinstance(rule, tuple) else (rule, None)
    if credential.role is None or (users_only and not credential.is_user):
        return 401
    if credential.role < minimum:
        return 403
    return None


def test_every_route_against_every_caller(api: Any, credentials: list[Credential], aws: str) -> None:
    failures = []
    for method, path in documented_operations(api):
        who = f"{method} {path}"
        rule = ACCESS[(method, normalized(path))]
        concrete = "/api/v1" + re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)
        for credential in credentials:
            response = api.request(method, concrete, json_body={}, headers=credential.headers)
            denial = expected_denial(rule, credential)
            if denial is not None and response.status != denial:
                failures.append(f"{credential.name} {who}: {response.status}, expected {denial}")
            if denial is None and (response.status in (401, 403) or response.status >= 500):
                failures.append(
                    f"{credential.name} {method} {path}: {response.status}, expected to be let in"
                )
    assert failures == []
