"""The audit trail: what sign-ins and admin actions record, and how admins read it back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from loupe.config import get_settings
from tests import factories

EVENTS = "/api/v1/audit-events"
LOGIN = "/api/v1/auth/login"


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, response.body
    error = response.json()["error"]
    assert error["code"] == code
    return error


def events(api: Any, token: str, **query: str) -> dict[str, Any]:
    response = api.get(EVENTS, token=token, query=query)
    assert response.status == 200, response.body
    body: dict[str, Any] = response.json()
    return body


def insert_event(database_url: str, organization_id: str, action: str, created_at: datetime) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO audit_events (organization_id, action, created_at) VALUES (%s, %s, %s)",
            (organization_id, action, created_at),
        )


class TestSignIns:
    def test_success_failure_and_throttling_are_recorded_in_the_users_organization(
        self, api: Any, register: Any
    ) -> None:
        admin = register()
        assert api.post(LOGIN, json_body={"email": admin.email, "password": admin.password}).status == 200
        for _ in range(get_settings().login_max_failures):
            assert (
                api.post(LOGIN, json_body={"email": admin.email, "password": "wrong password"}).status == 401
            )
        throttled = api.post(LOGIN, json_body={"email": admin.email, "password": admin.password})
        assert throttled.status == 429

        [login] = events(api, admin.access_token, action="auth.login")["items"]
        assert login["actor_id"] == admin.user_id
        assert login["target_type"] == "user"
        assert login["target_id"] == admin.user_id
        assert login["ip"] == "198.51.100.7"
        failed = events(api, admin.access_token, action="auth.login_failed")
        assert failed["total"] == get_settings().login_max_failures
        assert {item["actor_id"] for item in failed["items"]} == {None}
        assert {item["target_id"] for item in failed["items"]} == {admin.user_id}
        [blocked] = events(api, admin.access_token, action="auth.login_throttled")["items"]
        assert blocked["target_id"] == admin.user_id

    def test_unknown_emails_record_nothing(self, api: Any, register: Any, clean_db: str) -> None:
        register()
        for _ in range(get_settings().login_max_failures + 1):
            api.post(LOGIN, json_body={"email": "nobody@example.com", "password": "wrong password"})
        with psycopg.connect(clean_db) as conn:
            row = conn.execute(
                "SELECT count(*) FROM audit_events WHERE action LIKE 'auth.login%%'"
            ).fetchone()
        assert row == (0,)


class TestAdminActions:
    def test_role_changes_removals_invitations_and_keys_are_recorded(
        self, api: Any, register: Any, clean_db: str
    ) -> None:
        admin = register()
        member_id, _ = factories.member(api, clean_db, admin.organization_id, "viewer")
        token = admin.access_token
        role = api.request(
            "PUT", f"/api/v1/organizations/users/{member_id}/role", json_body={"role": "editor"}, token=token
        )
        assert role.status == 200
        assert api.delete(f"/api/v1/organizations/users/{member_id}", token=token).status == 204
        invitation = api.post(
            "/api/v1/organizations/invitations",
            json_body={"email": "i@example.com", "role": "viewer"},
            token=token,
        ).json()
        assert api.delete(f"/api/v1/organizations/invitations/{invitation['id']}", token=token).status == 204
        key = api.post("/api/v1/api-keys", json_body={"name": "k", "role": "viewer"}, token=token).json()
        assert api.delete(f"/api/v1/api-keys/{key['id']}", token=token).status == 204

        recorded = events(api, token, actor_id=admin.user_id, sort="created_at")["items"]
        assert [(item["action"], item["target_id"]) for item in recorded] == [
            ("member.role_changed", member_id),
            ("member.removed", member_id),
            ("invitation.created", invitation["id"]),
            ("invitation.revoked", invitation["id"]),
            ("api_key.created", key["id"]),
            ("api_key.revoked", key["id"]),
        ]
        assert recorded[0]["metadata"] == {"from": "viewer", "to": "editor"}
        assert recorded[2]["metadata"] == {"email": "i@example.com", "role": "viewer"}
        assert {item["target_type"] for item in recorded} == {"user", "invitation", "api_key"}


class TestReading:
    def test_filters_and_paging(self, api: Any, register: Any, clean_db: str) -> None:
        admin = register()
        organization = admin.organization_id
        now = datetime.now(UTC)
        for days_ago in (3, 2, 1):
            insert_event(clean_db, organization, "datasource.created", now - timedelta(days=days_ago))
        insert_event(clean_db, organization, "datasource.deleted", now - timedelta(days=2, hours=12))

        everything = events(api, admin.access_token)
        times = [item["created_at"] for item in everything["items"]]
        assert times == sorted(times, reverse=True)

        created = events(api, admin.access_token, action="datasource.created")
        assert created["total"] == 3
        recent = events(
            api,
            admin.access_token,
            action="datasource.created",
            created_after=(now - timedelta(days=2, hours=1)).isoformat(),
        )
        assert recent["total"] == 2
        window = events(
            api,
            admin.access_token,
            created_after=(now - timedelta(days=3, hours=1)).isoformat(),
            created_before=(now - timedelta(days=1, hours=1)).isoformat(),
        )
        assert [item["action"] for item in window["items"]] == [
            "datasource.created",
            "datasource.deleted",
            "datasource.created",
        ]

        first = events(api, admin.access_token, action="datasource.created", limit="2")
        second = events(api, admin.access_token, action="datasource.created", limit="2", offset="2")
        assert (first["total"], second["total"]) == (3, 3)
        assert len(first["items"]) == 2
        assert len(second["items"]) == 1
        assert {item["id"] for item in first["items"]}.isdisjoint({item["id"] for item in second["items"]})

        assert api.post(LOGIN, json_body={"email": admin.email, "password": admin.password}).status == 200
        by_actor = events(api, admin.access_token, actor_id=admin.user_id)
        assert by_actor["total"] == 1
        assert {item["actor_id"] for item in by_actor["items"]} == {admin.user_id}

    def test_another_organizations_events_are_invisible(self, api: Any, register: Any, clean_db: str) -> None:
        ours, theirs = register(), register()
        insert_event(clean_db, theirs.organization_id, "secret.thing", datetime.now(UTC))
        assert events(api, ours.access_token, action="secret.thing")["total"] == 0
        assert events(api, theirs.access_token, action="secret.thing")["total"] == 1
        assert events(api, ours.access_token, actor_id=theirs.user_id)["total"] == 0

    @pytest.mark.parametrize("role", ["viewer", "editor"])
    def test_only_admins_read_the_trail(self, api: Any, register: Any, clean_db: str, role: str) -> None:
        admin = register()
        _, login = factories.member(api, clean_db, admin.organization_id, role)
        assert_error(api.get(EVENTS, token=login["access_token"]), 403, "forbidden")
        assert_error(api.get(EVENTS), 401, "unauthorized")

    @pytest.mark.parametrize(
        "query",
        [
            {"actor_id": "not-a-uuid"},
            {"action": "DROP TABLE"},
            {"created_after": "yesterday"},
            {"created_after": "2026-01-01T00:00:00"},  # no offset: ambiguous
            {"limit": "201"},
            {"sort": "metadata"},
            {"tag": "x"},
        ],
    )
    def test_invalid_filters_are_422(self, api: Any, register: Any, query: dict[str, str]) -> None:
        admin = register()
        assert_error(api.get(EVENTS, token=admin.access_token, query=query), 422, "validation_error")
