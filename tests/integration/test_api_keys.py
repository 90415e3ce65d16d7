"""API keys: created by admins, shown once, stored as digests, usable at once, revoked at once."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from loupe.security import tokens
from tests import factories

KEYS = "/api/v1/api-keys"
CURRENT = "/api/v1/organizations/current"


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, response.body
    error = response.json()["error"]
    assert error["code"] == code
    return error


def create_key(api: Any, token: str, role: str = "viewer", name: str = "reporting") -> dict[str, Any]:
    response = api.post(KEYS, json_body={"name": name, "role": role}, token=token)
    assert response.status == 201, response.body
    body: dict[str, Any] = response.json()
    return body


def with_key(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def audit_rows(database_url: str, action: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT organization_id::text, actor_id::text, target_id::text, metadata FROM audit_events"
            " WHERE action = %s ORDER BY created_at",
            (action,),
        ).fetchall()


class TestCreate:
    def test_the_key_is_shown_once_and_stored_as_a_digest(
        self, api: Any, register: Any, clean_db: str
    ) -> None:
        admin = register()
        created = create_key(api, admin.access_token, "viewer", " BI tool ")
        key = created["key"]
        assert key.startswith(tokens.API_KEY_PREFIX)
        assert created["prefix"] == key[:10]
        assert created["name"] == "BI tool"
        assert created["role"] == "viewer"
        assert created["created_by"] == admin.user_id
        assert created["last_used_at"] is None
        assert created["revoked_at"] is None

        listed = api.get(KEYS, token=admin.access_token)
        assert listed.status == 200, listed.body
        assert listed.json()["total"] == 1
        item = listed.json()["items"][0]
        assert item["id"] == created["id"]
        assert item["prefix"] == key[:10]
        assert "key" not in item
        assert key not in listed.body
        with psycopg.connect(clean_db) as conn:
            row = conn.execute("SELECT key_hash FROM api_keys").fetchone()
        assert row is not None
        assert bytes(row[0]) == tokens.digest(key)

        [(organization_id, actor_id, target_id, metadata)] = audit_rows(clean_db, "api_key.created")
        assert (organization_id, actor_id, target_id) == (admin.organization_id, admin.user_id, created["id"])
        assert metadata == {"name": "BI tool", "role": "viewer"}

    @pytest.mark.parametrize("role", ["viewer", "editor"])
    def test_only_admins_manage_keys(self, api: Any, register: Any, clean_db: str, role: str) -> None:
        admin = register()
        token = factories.member(api, clean_db, admin.organization_id, role)[1]["access_token"]
        key_id = create_key(api, admin.access_token)["id"]
        assert_error(
            api.post(KEYS, json_body={"name": "mine", "role": "viewer"}, token=token), 403, "forbidden"
        )
        assert_error(api.get(KEYS, token=token), 403, "forbidden")
        assert_error(api.delete(f"{KEYS}/{key_id}", token=token), 403, "forbidden")
        assert api.get(KEYS, token=admin.access_token).json()["total"] == 1

    @pytest.mark.parametrize(
        "body",
        [
            {"name": "k", "role": "owner"},
            {"name": "k", "role": "superadmin"},
            {"name": "k"},
            {"name": "", "role": "viewer"},
            {"name": "k" * 201, "role": "viewer"},
            {"name": "k", "role": "viewer", "key": "lk_chosen"},
        ],
    )
    def test_invalid_bodies_are_422(self, api: Any, register: Any, body: dict[str, Any]) -> None:
        admin = register()
        assert_error(api.post(KEYS, json_body=body, token=admin.access_token), 422, "validation_error")
        assert api.get(KEYS, token=admin.access_token).json()["total"] == 0

    def test_an_admin_key_creates_keys_and_is_named_in_the_audit_trail(
        self, api: Any, register: Any, clean_db: str
    ) -> None:
        admin = register()
        admin_key = create_key(api, admin.access_token, "admin")
        made = api.post(
            KEYS, json_body={"name": "from a key", "role": "admin"}, headers=with_key(admin_key["key"])
        )
        assert made.status == 201, made.body
        assert made.json()["created_by"] is None
        *_, (_, actor_id, target_id, metadata) = audit_rows(clean_db, "api_key.created")
        assert actor_id is None
        assert target_id == made.json()["id"]
        assert metadata["api_key_id"] == admin_key["id"]

    def test_an_editor_key_cannot_mint_keys(self, api: Any, register: Any) -> None:
        admin = register()
        editor_key = create_key(api, admin.access_token, "editor")["key"]
        escalate = api.post(
            KEYS, json_body={"name": "escalate", "role": "admin"}, headers=with_key(editor_key)
        )
        assert_error(escalate, 403, "forbidden")
        assert api.get(KEYS, token=admin.access_token).json()["total"] == 1


class TestUse:
    def test_a_key_acts_with_its_role_in_its_organization(self, api: Any, register: Any) -> None:
        admin, other = register(), register()
        created = create_key(api, admin.access_token, "viewer")
        response = api.get(CURRENT, headers=with_key(created["key"]))
        assert response.status == 200, response.body
        assert response.json()["id"] == admin.organization_id
        # A viewer key cannot do what only admins do.
        assert_error(api.get(KEYS, headers=with_key(created["key"])), 403, "forbidden")
        # It is not a user.
        assert_error(api.get("/api/v1/auth/me", headers=with_key(created["key"])), 401, "unauthorized")
        assert api.get(KEYS, token=other.access_token).json()["total"] == 0

    def test_last_used_at_is_kept(self, api: Any, register: Any) -> None:
        admin = register()
        created = create_key(api, admin.access_token)
        assert api.get(KEYS, token=admin.access_token).json()["items"][0]["last_used_at"] is None
        assert api.get(CURRENT, headers=with_key(created["key"])).status == 200
        first = api.get(KEYS, token=admin.access_token).json()["items"][0]["last_used_at"]
        assert first is not None
        assert api.get(CURRENT, headers=with_key(created["key"])).status == 200
        second = api.get(KEYS, token=admin.access_token).json()["items"][0]["last_used_at"]
        assert second > first


class TestRevoke:
    def test_revocation_is_immediate_and_idempotent(self, api: Any, register: Any, clean_db: str) -> None:
        admin = register()
        created = create_key(api, admin.access_token)
        assert api.get(CURRENT, headers=with_key(created["key"])).status == 200
        assert api.delete(f"{KEYS}/{created['id']}", token=admin.access_token).status == 204
        assert_error(api.get(CURRENT, headers=with_key(created["key"])), 401, "unauthorized")

        item = api.get(KEYS, token=admin.access_token).json()["items"][0]
        assert item["revoked_at"] is not None
        assert item["last_used_at"] is not None
        assert api.delete(f"{KEYS}/{created['id']}", token=admin.access_token).status == 204
        assert len(audit_rows(clean_db, "api_key.revoked")) == 1

    def test_another_organizations_key_is_not_found(self, api: Any, register: Any) -> None:
        ours, theirs = register(), register()
        created = create_key(api, theirs.access_token)
        assert_error(api.delete(f"{KEYS}/{created['id']}", token=ours.access_token), 404, "not_found")
        assert api.get(CURRENT, headers=with_key(created["key"])).status == 200

    def test_stale_if_match_is_412(self, api: Any, register: Any) -> None:
        admin = register()
        created = create_key(api, admin.access_token)
        stale = api.delete(
            f"{KEYS}/{created['id']}", token=admin.access_token, headers={"If-Match": '"stale"'}
        )
        assert_error(stale, 412, "precondition_failed")
        assert api.get(CURRENT, headers=with_key(created["key"])).status == 200

    def test_unknown_and_malformed_ids(self, api: Any, register: Any) -> None:
        admin = register()
        unknown = api.delete(f"{KEYS}/00000000-0000-4000-8000-000000000000", token=admin.access_token)
        assert_error(unknown, 404, "not_found")
        assert_error(api.delete(f"{KEYS}/nope", token=admin.access_token), 422, "validation_error")


class TestList:
    def test_paging_sorting_and_search(self, api: Any, register: Any) -> None:
        admin = register()
        for name in ("alpha", "beta", "gamma"):
            create_key(api, admin.access_token, name=name)
        page = api.get(
            KEYS, token=admin.access_token, query={"sort": "name", "limit": "2", "offset": "1"}
        ).json()
        assert [item["name"] for item in page["items"]] == ["beta", "gamma"]
        assert page["total"] == 3
        found = api.get(KEYS, token=admin.access_token, query={"q": "amm"}).json()
        assert [item["name"] for item in found["items"]] == ["gamma"]
        assert_error(
            api.get(KEYS, token=admin.access_token, query={"sort": "key_hash"}), 422, "validation_error"
        )
        assert_error(api.get(KEYS, token=admin.access_token, query={"tag": "x"}), 422, "validation_error")


INVITATIONS = "/api/v1/organizations/invitations"
ACCEPT = "/api/v1/auth/accept-invitation"


def invite(api: Any, email: str, **credential: Any) -> str:
    response = api.post(INVITATIONS, json_body={"email": email, "role": "admin"}, **credential)
    assert response.status == 201, response.body
    token: str = response.json()["token"]
    return token


def accept(api: Any, token: str) -> Any:
    return api.post(ACCEPT, json_body={"token": token, "name": "Invited", "password": "invited password"})


class TestServiceKeys:
    def test_service_keys_are_created_listed_apart_and_shown_with_their_creator(
        self, api: Any, register: Any, clean_db: str
    ) -> None:
        admin = register()
        personal = create_key(api, admin.access_token)
        made = api.post(
            KEYS, json_body={"name": "sync", "role": "editor", "kind": "service"}, token=admin.access_token
        )
        assert made.status == 201, made.body
        service = made.json()
        assert (service["kind"], service["created_by"], personal["kind"]) == (
            "service",
            admin.user_id,
            "personal",
        )
        listed = {
            kind: api.get(KEYS, token=admin.access_token, query={"kind": kind}).json()
            for kind in ("service", "personal")
        }
        assert [item["id"] for item in listed["service"]["items"]] == [service["id"]]
        assert [item["id"] for item in listed["personal"]["items"]] == [personal["id"]]
        assert api.get(KEYS, token=admin.access_token).json()["total"] == 2
        [*_, (_, _, target_id, metadata)] = audit_rows(clean_db, "api_key.created")
        assert (target_id, metadata) == (service["id"], {"name": "sync", "role": "editor", "kind": "service"})

    @pytest.mark.parametrize("query", [{"kind": "shared"}, {"kind": ""}])
    def test_an_unknown_kind_is_422(self, api: Any, register: Any, query: dict[str, str]) -> None:
        admin = register()
        error = assert_error(api.get(KEYS, token=admin.access_token, query=query), 422, "validation_error")
        assert error["details"][0]["field"] == "query.kind"
        made = api.post(KEYS, json_body={"name": "k", "role": "viewer", **query}, token=admin.access_token)
        assert assert_error(made, 422, "validation_error")["details"][0]["field"] == "body.kind"

    def test_a_service_key_creates_service_keys_only(self, api: Any, register: Any) -> None:
        admin = register()
        service = api.post(
            KEYS, json_body={"name": "sync", "role": "admin", "kind": "service"}, token=admin.access_token
        ).json()
        as_service = with_key(service["key"])
        refused = api.post(KEYS, json_body={"name": "mine", "role": "viewer"}, headers=as_service)
        assert "service keys only" in assert_error(refused, 403, "forbidden")["message"]
        made = api.post(
            KEYS, json_body={"name": "more", "role": "viewer", "kind": "service"}, headers=as_service
        )
        assert made.status == 201, made.body
        assert (made.json()["created_by"], made.json()["created_by_api_key_id"]) == (None, service["id"])


class TestMemberRemoval:
    def test_a_removed_admin_leaves_no_working_key_or_invitation_behind(
        self, api: Any, register: Any, clean_db: str
    ) -> None:
        owner = register()
        leaver_id, leaver = factories.member(api, clean_db, owner.organization_id, "admin")
        as_leaver = {"token": leaver["access_token"]}
        personal = api.post(KEYS, json_body={"name": "mine", "role": "admin"}, **as_leaver).json()
        service = api.post(
            KEYS, json_body={"name": "etl", "role": "editor", "kind": "service"}, **as_leaver
        ).json()
        # What the personal key creates is the member's too.
        minted = api.post(
            KEYS, json_body={"name": "minted", "role": "admin"}, headers=with_key(personal["key"])
        )
        assert minted.json()["created_by_api_key_id"] == personal["id"]
        invited = invite(api, "friend@example.com", **as_leaver)
        invited_by_key = invite(api, "other@example.com", headers=with_key(minted.json()["key"]))
        owners_key = create_key(api, owner.access_token, "admin")
        owners_invitation = invite(api, "kept@example.com", token=owner.access_token)
        for key in (personal["key"], minted.json()["key"], service["key"]):
            assert api.get(CURRENT, headers=with_key(key)).status == 200

        removed = api.delete(f"/api/v1/organizations/users/{leaver_id}", token=owner.access_token)
        assert removed.status == 204, removed.body

        for key in (personal["key"], minted.json()["key"]):
            assert_error(api.get(CURRENT, headers=with_key(key)), 401, "unauthorized")
        for token in (invited, invited_by_key):
            assert_error(accept(api, token), 401, "unauthorized")
        # The organization's own credentials stay: the service key, the owner's key and invitation.
        assert api.get(CURRENT, headers=with_key(service["key"])).status == 200
        assert api.get(CURRENT, headers=with_key(owners_key["key"])).status == 200
        assert accept(api, owners_invitation).status == 201
        listed = {item["id"]: item for item in api.get(KEYS, token=owner.access_token).json()["items"]}
        assert listed[service["id"]]["created_by"] == leaver_id
        assert listed[service["id"]]["revoked_at"] is None
        assert listed[personal["id"]]["revoked_at"] is not None

        revoked_ids = {personal["id"], minted.json()["id"]}
        revocations = audit_rows(clean_db, "api_key.revoked")
        assert {target for _, _, target, _ in revocations} == revoked_ids
        assert all(metadata["reason"] == "member_removed" for *_, metadata in revocations)
        withdrawn = audit_rows(clean_db, "invitation.revoked")
        assert sorted(metadata["email"] for *_, metadata in withdrawn) == [
            "friend@example.com",
            "other@example.com",
        ]
        [(_, actor_id, target_id, metadata)] = audit_rows(clean_db, "member.removed")
        assert (actor_id, target_id) == (owner.user_id, leaver_id)
        assert set(metadata["revoked_api_keys"]) == revoked_ids
        assert set(metadata["revoked_invitations"]) == {target for _, _, target, _ in withdrawn}

    def test_removing_a_member_with_nothing_to_revoke_records_empty_lists(
        self, api: Any, register: Any, clean_db: str
    ) -> None:
        owner = register()
        viewer_id, _ = factories.member(api, clean_db, owner.organization_id, "viewer")
        assert api.delete(f"/api/v1/organizations/users/{viewer_id}", token=owner.access_token).status == 204
        [(*_, metadata)] = audit_rows(clean_db, "member.removed")
        assert (metadata["revoked_api_keys"], metadata["revoked_invitations"]) == ([], [])
        assert audit_rows(clean_db, "api_key.revoked") == []
