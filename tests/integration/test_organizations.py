"""The organization: settings, members and roles, the last-admin rule, invitations and usage."""

from __future__ import annotations

import secrets
from typing import Any

import psycopg
import pytest

from loupe import notify
from loupe.config import get_settings
from tests import factories

CURRENT = "/api/v1/organizations/current"
USERS = "/api/v1/organizations/users"
INVITATIONS = "/api/v1/organizations/invitations"
USAGE = "/api/v1/organizations/usage"
ACCEPT = "/api/v1/auth/accept-invitation"
LOGIN = "/api/v1/auth/login"


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, response.body
    error = response.json()["error"]
    assert error["code"] == code
    return error


def audit_actions(database_url: str, organization_id: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT action FROM audit_events WHERE organization_id = %s ORDER BY created_at, action",
            (organization_id,),
        ).fetchall()
    return [row[0] for row in rows]


def invite(api: Any, token: str, email: str, role: str = "editor") -> Any:
    return api.post(INVITATIONS, json_body={"email": email, "role": role}, token=token)


def accept(api: Any, token: str, name: str = "Invited Person", password: str = "invited password") -> Any:
    return api.post(ACCEPT, json_body={"token": token, "name": name, "password": password})


class TestSettings:
    def test_every_role_reads_the_organization_with_defaults(
        self, api: Any, register: Any, clean_db: str
    ) -> None:
        admin = register()
        _, viewer = factories.member(api, clean_db, admin.organization_id, "viewer")
        response = api.get(CURRENT, token=viewer["access_token"])
        assert response.status == 200, response.body
        body = response.json()
        assert body["id"] == admin.organization_id
        assert body["name"] == "Acme"
        assert body["settings"] == {
            "default_timezone": "UTC",
            "result_retention_days": 30,
            "run_retention_days": 90,
            "query_timeout_seconds": 300,
            "max_rows_per_run": 10_000_000,
            "max_query_cost": None,
            "share_links_enabled": False,
            "revision_retention_count": 100,
            "revision_retention_days": 365,
            "delivery_allowed_recipients": [],
        }
        etag = response.header("ETag")
        assert etag
        cached = api.get(CURRENT, token=viewer["access_token"], headers={"If-None-Match": etag})
        assert cached.status == 304

    def test_patch_merges_settings_and_null_restores_a_default(
        self, api: Any, register: Any, clean_db: str
    ) -> None:
        admin = register()
        first = api.request(
            "PATCH",
            CURRENT,
            json_body={"settings": {"default_timezone": "Europe/Paris", "max_rows_per_run": 5000}},
            token=admin.access_token,
        )
        assert first.status == 200, first.body
        second = api.request(
            "PATCH",
            CURRENT,
            json_body={
                "name": "Acme Analytics",
                "settings": {"result_retention_days": 7, "max_rows_per_run": None},
            },
            token=admin.access_token,
        )
        assert second.status == 200, second.body
        body = api.get(CURRENT, token=admin.access_token).json()
        assert body["name"] == "Acme Analytics"
        assert body["settings"] == {
            "default_timezone": "Europe/Paris",
            "result_retention_days": 7,
            "run_retention_days": 90,
            "query_timeout_seconds": 300,
            "max_rows_per_run": 10_000_000,
            "max_query_cost": None,
            "share_links_enabled": False,
            "revision_retention_count": 100,
            "revision_retention_days": 365,
            "delivery_allowed_recipients": [],
        }
        assert second.header("ETag") != first.header("ETag")
        assert audit_actions(clean_db, admin.organization_id).count("organization.updated") == 2

    @pytest.mark.parametrize(
        ("settings", "field"),
        [
            ({"default_timezone": "Mars/Olympus_Mons"}, "default_timezone"),
            ({"default_timezone": "../../etc/passwd"}, "default_timezone"),
            ({"result_retention_days": 0}, "result_retention_days"),
            ({"result_retention_days": 3651}, "result_retention_days"),
            ({"run_retention_days": 0}, "run_retention_days"),
            ({"query_timeout_seconds": 901}, "query_timeout_seconds"),
            ({"max_rows_per_run": 10_000_001}, "max_rows_per_run"),
            ({"max_query_cost": 0}, "max_query_cost"),
            ({"max_query_cost": -5}, "max_query_cost"),
            ({"max_query_cost": "lots"}, "max_query_cost"),
            ({"colour": "blue"}, "colour"),
        ],
    )
    def test_invalid_settings_are_422(
        self, api: Any, register: Any, settings: dict[str, Any], field: str
    ) -> None:
        admin = register()
        response = api.request("PATCH", CURRENT, json_body={"settings": settings}, token=admin.access_token)
        error = assert_error(response, 422, "validation_error")
        assert any(field in detail["field"] for detail in error["details"])
        assert api.get(CURRENT, token=admin.access_token).json()["settings"]["default_timezone"] == "UTC"

    def test_stale_if_match_is_412(self, api: Any, register: Any) -> None:
        admin = register()
        etag = api.get(CURRENT, token=admin.access_token).header("ETag")
        assert (
            api.request("PATCH", CURRENT, json_body={"name": "One"}, token=admin.access_token).status == 200
        )
        stale = api.request(
            "PATCH",
            CURRENT,
            json_body={"name": "Two"},
            token=admin.access_token,
            headers={"If-Match": etag or ""},
        )
        assert_error(stale, 412, "precondition_failed")
        assert api.get(CURRENT, token=admin.access_token).json()["name"] == "One"


class TestAdminOnly:
    @pytest.mark.parametrize("role", ["viewer", "editor"])
    def test_other_roles_are_forbidden(self, api: Any, register: Any, clean_db: str, role: str) -> None:
        admin = register()
        _, member = factories.member(api, clean_db, admin.organization_id, role)
        token = member["access_token"]
        calls = [
            ("PATCH", CURRENT, {"name": "Mine now"}),
            ("GET", USERS, None),
            ("PUT", f"{USERS}/{admin.user_id}/role", {"role": "viewer"}),
            ("DELETE", f"{USERS}/{admin.user_id}", None),
            ("POST", INVITATIONS, {"email": "x@example.com", "role": "viewer"}),
            ("GET", INVITATIONS, None),
            ("GET", USAGE, None),
        ]
        for method, path, body in calls:
            assert_error(api.request(method, path, json_body=body, token=token), 403, "forbidden")
        assert api.get(CURRENT, token=admin.access_token).json()["name"] == "Acme"


class TestMembers:
    def test_list_and_change_a_role_which_applies_at_once(
        self, api: Any, register: Any, clean_db: str
    ) -> None:
        admin = register()
        viewer_id, viewer = factories.member(api, clean_db, admin.organization_id, "viewer")
        listed = api.get(USERS, token=admin.access_token, query={"limit": "1"})
        assert listed.status == 200, listed.body
        assert listed.json()["total"] == 2
        assert [item["id"] for item in listed.json()["items"]] == [admin.user_id]
        assert listed.json()["items"][0]["role"] == "admin"
        assert api.get(USERS, token=viewer["access_token"]).status == 403

        changed = api.request(
            "PUT", f"{USERS}/{viewer_id}/role", json_body={"role": "admin"}, token=admin.access_token
        )
        assert changed.status == 200, changed.body
        assert changed.json()["role"] == "admin"
        assert api.get(USERS, token=viewer["access_token"]).status == 200
        assert "member.role_changed" in audit_actions(clean_db, admin.organization_id)

    def test_the_last_admin_cannot_be_demoted_or_removed(
        self, api: Any, register: Any, clean_db: str
    ) -> None:
        admin = register()
        editor_id, _ = factories.member(api, clean_db, admin.organization_id, "editor")
        demote = api.request(
            "PUT", f"{USERS}/{admin.user_id}/role", json_body={"role": "editor"}, token=admin.access_token
        )
        assert_error(demote, 409, "conflict")
        assert_error(api.delete(f"{USERS}/{admin.user_id}", token=admin.access_token), 409, "conflict")

        promote = api.request(
            "PUT", f"{USERS}/{editor_id}/role", json_body={"role": "admin"}, token=admin.access_token
        )
        assert promote.status == 200
        demote = api.request(
            "PUT", f"{USERS}/{admin.user_id}/role", json_body={"role": "viewer"}, token=admin.access_token
        )
        assert demote.status == 200, demote.body
        assert demote.json()["role"] == "viewer"
        # The demoted caller is a viewer from this request on.
        assert api.get(USERS, token=admin.access_token).status == 403

    def test_removal_ends_the_members_sessions_here(self, api: Any, register: Any, clean_db: str) -> None:
        admin = register()
        member_id, member = factories.member(api, clean_db, admin.organization_id, "editor")
        assert api.get(CURRENT, token=member["access_token"]).status == 200
        assert api.delete(f"{USERS}/{member_id}", token=admin.access_token).status == 204

        assert_error(api.get(CURRENT, token=member["access_token"]), 401, "unauthorized")
        refresh = api.post("/api/v1/auth/refresh", json_body={"refresh_token": member["refresh_token"]})
        assert_error(refresh, 401, "unauthorized")
        with psycopg.connect(clean_db) as conn:
            sessions = conn.execute(
                "SELECT count(*) FROM sessions WHERE user_id = %s", (member_id,)
            ).fetchone()
            account = conn.execute("SELECT count(*) FROM users WHERE id = %s", (member_id,)).fetchone()
        assert sessions == (0,)
        assert account == (1,)  # the account stays; only the membership goes
        listed = api.get(USERS, token=admin.access_token).json()
        assert [item["id"] for item in listed["items"]] == [admin.user_id]
        assert "member.removed" in audit_actions(clean_db, admin.organization_id)
        assert_error(api.delete(f"{USERS}/{member_id}", token=admin.access_token), 404, "not_found")

    def test_another_organizations_members_are_not_found(
        self, api: Any, register: Any, clean_db: str
    ) -> None:
        ours, theirs = register(), register()
        their_member, _ = factories.member(api, clean_db, theirs.organization_id, "viewer")
        for user_id in (theirs.user_id, their_member):
            role = api.request(
                "PUT", f"{USERS}/{user_id}/role", json_body={"role": "editor"}, token=ours.access_token
            )
            assert_error(role, 404, "not_found")
            assert_error(api.delete(f"{USERS}/{user_id}", token=ours.access_token), 404, "not_found")
        assert api.get(USERS, token=theirs.access_token).json()["total"] == 2

    @pytest.mark.parametrize("body", [{"role": "owner"}, {"role": None}, {}, {"role": "viewer", "extra": 1}])
    def test_invalid_role_change_is_422(
        self, api: Any, register: Any, clean_db: str, body: dict[str, Any]
    ) -> None:
        admin = register()
        member_id, _ = factories.member(api, clean_db, admin.organization_id, "viewer")
        response = api.request("PUT", f"{USERS}/{member_id}/role", json_body=body, token=admin.access_token)
        assert_error(response, 422, "validation_error")

    def test_malformed_user_id_is_422(self, api: Any, register: Any) -> None:
        admin = register()
        assert_error(api.delete(f"{USERS}/not-a-uuid", token=admin.access_token), 422, "validation_error")


class TestInvitations:
    def test_invite_list_accept_end_to_end(self, api: Any, register: Any, clean_db: str) -> None:
        admin = register()
        created = invite(api, admin.access_token, "New.Person@Example.com", "editor")
        assert created.status == 201, created.body
        invitation = created.json()
        assert invitation["email"] == "new.person@example.com"
        assert invitation["role"] == "editor"
        assert invitation["invited_by"] == admin.user_id
        token = invitation["token"]
        assert token.startswith("linv_")

        listed = api.get(INVITATIONS, token=admin.access_token).json()
        assert listed["total"] == 1
        assert listed["items"][0]["id"] == invitation["id"]
        assert "token" not in listed["items"][0]
        with psycopg.connect(clean_db) as conn:
            stored = conn.execute("SELECT token_hash FROM invitations").fetchone()
        assert stored is not None
        assert token.encode() not in bytes(stored[0])

        accepted = accept(api, token, name="New Person")
        assert accepted.status == 201, accepted.body
        pair = accepted.json()
        assert pair["user"]["email"] == "new.person@example.com"
        assert pair["user"]["role"] == "editor"
        assert pair["user"]["organization_id"] == admin.organization_id
        me = api.get("/api/v1/auth/me", token=pair["access_token"]).json()
        assert me["organization_name"] == "Acme"
        relogin = api.post(
            LOGIN, json_body={"email": "new.person@example.com", "password": "invited password"}
        )
        assert relogin.status == 200

        assert api.get(INVITATIONS, token=admin.access_token).json()["total"] == 0
        assert api.get(USERS, token=admin.access_token).json()["total"] == 2
        assert_error(accept(api, token, name="Again"), 401, "unauthorized")
        actions = audit_actions(clean_db, admin.organization_id)
        assert "invitation.created" in actions
        assert "invitation.accepted" in actions

    def test_expired_invitation_is_refused(self, api: Any, register: Any, clean_db: str) -> None:
        admin = register()
        token = invite(api, admin.access_token, "late@example.com").json()["token"]
        with psycopg.connect(clean_db) as conn:
            conn.execute("UPDATE invitations SET expires_at = now() - interval '1 second'")
        assert_error(accept(api, token), 401, "unauthorized")
        assert api.get(INVITATIONS, token=admin.access_token).json()["total"] == 0
        # Expired means no longer pending: the email can be invited again.
        assert invite(api, admin.access_token, "late@example.com").status == 201

    def test_revoked_invitation_is_refused(self, api: Any, register: Any, clean_db: str) -> None:
        admin = register()
        invitation = invite(api, admin.access_token, "revoked@example.com").json()
        deleted = api.delete(f"{INVITATIONS}/{invitation['id']}", token=admin.access_token)
        assert deleted.status == 204
        assert_error(accept(api, invitation["token"]), 401, "unauthorized")
        assert_error(
            api.delete(f"{INVITATIONS}/{invitation['id']}", token=admin.access_token), 404, "not_found"
        )
        assert "invitation.revoked" in audit_actions(clean_db, admin.organization_id)

    def test_unknown_token_is_refused(self, api: Any) -> None:
        assert_error(accept(api, "linv_" + secrets.token_urlsafe(32)), 401, "unauthorized")

    def test_an_existing_account_joins_with_its_password_and_switches_between_organizations(
        self, api: Any, register: Any, clean_db: str
    ) -> None:
        admin, other = register(), register()
        token = invite(api, admin.access_token, other.email, role="viewer").json()["token"]
        # A wrong password is a failed login; the invitation stays pending.
        assert_error(accept(api, token, password="not the password"), 401, "unauthorized")
        assert api.get(INVITATIONS, token=admin.access_token).json()["total"] == 1
        joined = api.post(ACCEPT, json_body={"token": token, "password": other.password})
        assert joined.status == 201, joined.body
        assert joined.json()["user"] == {
            "id": other.user_id,
            "email": other.email,
            "name": "Test User",
            "role": "viewer",
            "organization_id": admin.organization_id,
        }
        inside = joined.json()["access_token"]
        me = api.get("/api/v1/auth/me", token=inside).json()
        assert me["organization_id"] == admin.organization_id
        assert {item["organization_id"]: item["role"] for item in me["memberships"]} == {
            admin.organization_id: "viewer",
            other.organization_id: "admin",
        }
        # The session acts in one organization: the new one's members, not the old one's.
        assert api.get("/api/v1/dashboards", token=inside).status == 200
        assert_error(api.get(USERS, token=inside), 403, "forbidden")
        # Switching issues tokens for the other membership; the next login enters the one used last.
        back = api.post(
            "/api/v1/auth/switch-organization",
            json_body={"organization_id": other.organization_id},
            token=inside,
        )
        assert back.status == 200, back.body
        assert back.json()["user"]["organization_id"] == other.organization_id
        assert api.get(USERS, token=back.json()["access_token"]).status == 200
        again = api.post(
            "/api/v1/auth/switch-organization",
            json_body={"organization_id": admin.organization_id},
            token=inside,
        )
        assert again.status == 200
        login = api.post("/api/v1/auth/login", json_body={"email": other.email, "password": other.password})
        assert login.json()["user"]["organization_id"] == admin.organization_id
        stranger = register()
        assert_error(
            api.post(
                "/api/v1/auth/switch-organization",
                json_body={"organization_id": stranger.organization_id},
                token=inside,
            ),
            404,
            "not_found",
        )
        # Invited again once a member: a conflict; a new account still needs a name.
        assert_error(invite(api, admin.access_token, other.email), 409, "conflict")
        fresh = invite(api, admin.access_token, "fresh@example.com").json()["token"]
        nameless = api.post(ACCEPT, json_body={"token": fresh, "password": "invited password"})
        assert assert_error(nameless, 422, "validation_error")["details"][0]["field"] == "body.name"
        assert "invitation.accepted" in audit_actions(clean_db, admin.organization_id)

    def test_members_and_pending_invitations_conflict(self, api: Any, register: Any, clean_db: str) -> None:
        admin = register()
        assert_error(invite(api, admin.access_token, admin.email), 409, "conflict")
        assert invite(api, admin.access_token, "twice@example.com").status == 201
        assert_error(invite(api, admin.access_token, "TWICE@example.com"), 409, "conflict")

    def test_another_organizations_invitation_is_not_found(self, api: Any, register: Any) -> None:
        ours, theirs = register(), register()
        invitation = invite(api, theirs.access_token, "theirs@example.com").json()
        assert_error(
            api.delete(f"{INVITATIONS}/{invitation['id']}", token=ours.access_token), 404, "not_found"
        )
        assert api.get(INVITATIONS, token=ours.access_token).json()["total"] == 0
        assert api.get(INVITATIONS, token=theirs.access_token).json()["total"] == 1

    @pytest.mark.parametrize(
        "body",
        [
            {"email": "not-an-email", "role": "viewer"},
            {"email": "a@example.com", "role": "owner"},
            {"email": "a@example.com"},
            {"email": "a@example.com", "role": "viewer", "token": "mine"},
        ],
    )
    def test_invalid_invitation_is_422(self, api: Any, register: Any, body: dict[str, Any]) -> None:
        admin = register()
        response = api.post(INVITATIONS, json_body=body, token=admin.access_token)
        assert_error(response, 422, "validation_error")

    @pytest.mark.parametrize(
        "body",
        [
            {"token": "linv_x", "name": "A", "password": "short"},
            {"token": "", "name": "A", "password": "long enough"},
            {"token": "linv_x", "name": " ", "password": "long enough"},
        ],
    )
    def test_invalid_acceptance_is_422(self, api: Any, body: dict[str, Any]) -> None:
        assert_error(api.post(ACCEPT, json_body=body), 422, "validation_error")

    def test_paging(self, api: Any, register: Any) -> None:
        admin = register()
        for number in range(3):
            assert invite(api, admin.access_token, f"page{number}@example.com").status == 201
        page = api.get(INVITATIONS, token=admin.access_token, query={"limit": "2", "offset": "2"}).json()
        assert page["total"] == 3
        assert [item["email"] for item in page["items"]] == ["page0@example.com"]
        beyond = api.get(INVITATIONS, token=admin.access_token, query={"offset": "10"}).json()
        assert beyond["items"] == []
        assert beyond["total"] == 3
        assert_error(
            api.get(INVITATIONS, token=admin.access_token, query={"limit": "0"}), 422, "validation_error"
        )


class TestUsage:
    def test_counts_queries_runs_this_month_and_result_bytes(
        self, api: Any, register: Any, clean_db: str
    ) -> None:
        admin, other = register(), register()
        datasource = factories.datasource(clean_db, admin.organization_id)
        factories.query(clean_db, admin.organization_id, datasource)
        factories.query(clean_db, admin.organization_id, datasource)
        factories.query(clean_db, other.organization_id)
        with psycopg.connect(clean_db) as conn:
            for created_at, byte_size in (
                ("now()", 1000),
                ("now()", None),
                ("date_trunc('month', now()) - interval '1 day'", 24),
            ):
                conn.execute(
                    "INSERT INTO runs (organization_id, datasource_id, sql, cache_key, byte_size, created_at)"
                    f" VALUES (%s, %s, 'SELECT 1', 'k', %s, {created_at})",
                    (admin.organization_id, datasource, byte_size),
                )
        response = api.get(USAGE, token=admin.access_token)
        assert response.status == 200, response.body
        assert response.json() == {"queries": 2, "runs_this_month": 2, "stored_result_bytes": 1024}
        assert api.get(USAGE, token=other.access_token).json() == {
            "queries": 1,
            "runs_this_month": 0,
            "stored_result_bytes": 0,
        }


def test_an_invitation_is_mailed_with_its_accept_link(
    api: Any, register: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOUPE_INVITATION_URL", "https://app.example.com/join#token={token}")
    get_settings.cache_clear()
    notify.MEMORY.sent.clear()
    admin = register()
    token = invite(api, admin.access_token, "mailed@example.com", role="viewer").json()["token"]
    [mail] = [sent for sent in notify.MEMORY.sent if sent.to == "mailed@example.com"]
    assert mail.subject == "You are invited to Acme on Loupe"
    assert f"https://app.example.com/join#token={token}" in mail.text
    assert "as viewer" in mail.text
    notify.MEMORY.sent.clear()
    get_settings.cache_clear()
