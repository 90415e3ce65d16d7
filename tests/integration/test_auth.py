"""Every auth flow and its failures, through real API Gateway events and a real PostgreSQL."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

import jwt
import psycopg
import pytest

from loupe import db
from loupe.config import get_settings
from loupe.models.auth import TokenPair
from loupe.security import tokens
from loupe.services import auth

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/auth/me"


def login(api: Any, email: str, password: str, **kwargs: Any) -> Any:
    return api.post(LOGIN, json_body={"email": email, "password": password}, **kwargs)


def forge(
    claims_update: dict[str, Any], token: str, *, key: bytes | None = None, algorithm: str = "HS256"
) -> str:
    """Re-sign a valid token's claims with changes, as an attacker holding (or guessing) a key would."""
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(claims_update)
    return jwt.encode(claims, key or get_settings().signing_secret, algorithm=algorithm)


def stored_password_hash(database_url: str, email: str) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT password_hash FROM users WHERE email = %s", (email,)).fetchone()
    assert row is not None
    return str(row[0])


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, response.body
    error = response.json()["error"]
    assert error["code"] == code
    assert len(error["error_id"]) == 12
    return error


class TestRegister:
    def test_creates_user_organization_and_tokens(self, api: Any) -> None:
        response = api.post(
            REGISTER,
            json_body={
                "email": "Ada@Example.COM",
                "password": "analytical engine",
                "name": " Ada Lovelace ",
                "organization_name": "Engines Ltd",
            },
        )
        assert response.status == 201
        assert response.header("Location") == "/api/v1/auth/me"
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == get_settings().access_token_ttl_seconds
        assert body["user"]["email"] == "ada@example.com"
        assert body["user"]["name"] == "Ada Lovelace"
        assert body["user"]["role"] == "admin"
        assert body["refresh_token"].startswith("lrt_")
        me = api.get(ME, token=body["access_token"]).json()
        assert me["organization_name"] == "Engines Ltd"
        assert me["id"] == body["user"]["id"]

    def test_email_is_unique_case_insensitively(self, api: Any, register: Any) -> None:
        register("grace@example.com")
        response = api.post(
            REGISTER,
            json_body={
                "email": "GRACE@example.com",
                "password": "12345678",
                "name": "G",
                "organization_name": "O",
            },
        )
        assert_error(response, 409, "conflict")

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("email", "not-an-email"),
            ("email", ""),
            ("password", "short"),
            ("password", "x" * 129),
            ("name", "   "),
            ("organization_name", "o" * 201),
        ],
    )
    def test_invalid_fields_are_422_with_details(self, api: Any, field: str, value: str) -> None:
        body = {"email": "a@example.com", "password": "long enough", "name": "A", "organization_name": "O"}
        body[field] = value
        error = assert_error(api.post(REGISTER, json_body=body), 422, "validation_error")
        assert any(detail["field"] == f"body.{field}" for detail in error["details"]), error
        assert value not in json.dumps(error) or value == ""  # inputs are never echoed

    def test_unknown_fields_are_rejected(self, api: Any) -> None:
        body = {"email": "a@example.com", "password": "long enough", "name": "A", "organization_name": "O"}
        response = api.post(REGISTER, json_body={**body, "role": "admin"})
        assert_error(response, 422, "validation_error")

    def test_password_is_stored_as_argon2id(self, api: Any, register: Any, clean_db: str) -> None:
        account = register()
        stored = stored_password_hash(clean_db, account.email)
        assert stored.startswith("$argon2id$")
        assert account.password not in stored


class TestLogin:
    def test_success_opens_a_new_session(self, api: Any, register: Any) -> None:
        account = register()
        response = login(api, account.email.upper(), account.password)
        assert response.status == 200
        body = response.json()
        assert body["user"]["id"] == account.user_id
        assert body["refresh_token"] != account.refresh_token
        sessions = api.get("/api/v1/auth/sessions", token=body["access_token"]).json()
        assert sessions["total"] == 2
        assert [item["current"] for item in sessions["items"]].count(True) == 1
        assert response.header("Cache-Control") == "no-store"

    def test_wrong_password_and_unknown_email_look_the_same(self, api: Any, register: Any) -> None:
        account = register()
        wrong_password = assert_error(login(api, account.email, "wrong password"), 401, "unauthorized")
        unknown_email = assert_error(login(api, "nobody@example.com", "wrong password"), 401, "unauthorized")
        assert wrong_password["message"] == unknown_email["message"]

    @pytest.mark.parametrize("exists", [True, False])
    def test_throttles_after_five_failures_per_email(self, api: Any, register: Any, exists: bool) -> None:
        email = register().email if exists else "ghost@example.com"
        for _ in range(get_settings().login_max_failures):
            assert login(api, email, "wrong password").status == 401
        throttled = login(api, email, "wrong password")
        assert_error(throttled, 429, "too_many_attempts")
        retry_after = int(throttled.header("Retry-After") or "0")
        assert 0 < retry_after <= get_settings().login_failure_window_seconds
        # Another email is not affected.
        assert login(api, "other@example.com", "wrong password").status == 401

    def test_throttle_holds_even_with_the_right_password(self, api: Any, register: Any) -> None:
        account = register()
        for _ in range(get_settings().login_max_failures):
            login(api, account.email, "wrong password")
        assert login(api, account.email, account.password).status == 429

    def test_success_resets_the_failure_count(self, api: Any, register: Any) -> None:
        account = register()
        for _ in range(get_settings().login_max_failures - 1):
            login(api, account.email, "wrong password")
        assert login(api, account.email, account.password).status == 200
        for _ in range(get_settings().login_max_failures - 1):
            assert login(api, account.email, "wrong password").status == 401
        assert login(api, account.email, account.password).status == 200

    def test_rehashes_when_parameters_change(
        self, api: Any, register: Any, clean_db: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from loupe.security import passwords

        account = register()
        # A redeploy with a higher time cost: the next login re-hashes with the new parameters.
        stronger = get_settings().model_copy(update={"argon2_time_cost": 3})
        monkeypatch.setattr(passwords, "get_settings", lambda: stronger)
        passwords._hasher.cache_clear()
        try:
            assert login(api, account.email, account.password).status == 200
        finally:
            monkeypatch.undo()
            passwords._hasher.cache_clear()
        assert stored_password_hash(clean_db, account.email).startswith("$argon2id$v=19$m=19456,t=3,p=1$")
        assert login(api, account.email, account.password).status == 200


class TestRefresh:
    def test_rotates_the_refresh_token(self, api: Any, register: Any) -> None:
        account = register()
        first = api.post(REFRESH, json_body={"refresh_token": account.refresh_token})
        assert first.status == 200
        rotated = first.json()
        assert rotated["refresh_token"] != account.refresh_token
        assert api.get(ME, token=rotated["access_token"]).status == 200
        second = api.post(REFRESH, json_body={"refresh_token": rotated["refresh_token"]})
        assert second.status == 200

    def test_reuse_of_a_spent_token_revokes_the_session(self, api: Any, register: Any, clean_db: str) -> None:
        account = register()
        rotated = api.post(REFRESH, json_body={"refresh_token": account.refresh_token}).json()
        spent_long_ago(clean_db, account.refresh_token)
        reuse = api.post(REFRESH, json_body={"refresh_token": account.refresh_token})
        assert_error(reuse, 401, "unauthorized")
        # The thief's copy and the legitimate successor are both dead now.
        assert api.post(REFRESH, json_body={"refresh_token": rotated["refresh_token"]}).status == 401
        assert api.get(ME, token=rotated["access_token"]).status == 401
        assert api.get(ME, token=account.access_token).status == 401

    @pytest.mark.parametrize("token", ["lrt_unknown", "x", "lrt_" + "A" * 43])
    def test_unknown_token_is_401(self, api: Any, register: Any, token: str) -> None:
        register()
        assert_error(api.post(REFRESH, json_body={"refresh_token": token}), 401, "unauthorized")

    def test_expired_session_cannot_refresh(self, api: Any, register: Any, clean_db: str) -> None:
        account = register()
        with psycopg.connect(clean_db) as conn:
            conn.execute("UPDATE sessions SET expires_at = now() - interval '1 second'")
        assert api.post(REFRESH, json_body={"refresh_token": account.refresh_token}).status == 401


def spent_long_ago(database_url: str, refresh_token: str) -> None:
    """Move a spent token's rotation back past the grace window, rather than wait for it to pass."""
    with psycopg.connect(database_url) as conn:
        moved = conn.execute(
            "UPDATE refresh_tokens SET spent_at = spent_at - make_interval(secs => %s)"
            " WHERE token_hash = %s AND spent_at IS NOT NULL",
            (get_settings().refresh_reuse_grace_seconds + 1, tokens.digest(refresh_token)),
        ).rowcount
    assert moved == 1


def session_is_live(api: Any, pair: dict[str, Any]) -> bool:
    return bool(api.get(ME, token=pair["access_token"]).status == 200)


class TestRefreshGrace:
    """Two tabs refreshing with the same token: the second, within LOUPE_REFRESH_REUSE_GRACE_SECONDS,
    gets the successor the first got; after it, the same presentation is a copy and ends the session."""

    def test_a_second_tab_gets_the_same_successor(self, api: Any, register: Any, clean_db: str) -> None:
        account = register()
        first = api.post(REFRESH, json_body={"refresh_token": account.refresh_token})
        second = api.post(REFRESH, json_body={"refresh_token": account.refresh_token})
        assert first.status == second.status == 200, second.body
        assert first.json()["refresh_token"] == second.json()["refresh_token"] != account.refresh_token
        assert session_is_live(api, first.json())
        assert session_is_live(api, second.json())
        # Nothing new was stored for the second tab, and only digests are stored at all.
        with psycopg.connect(clean_db) as conn:
            stored = [bytes(row[0]) for row in conn.execute("SELECT token_hash FROM refresh_tokens")]
        assert sorted(stored) == sorted(
            tokens.digest(token) for token in (account.refresh_token, first.json()["refresh_token"])
        )
        third = api.post(REFRESH, json_body={"refresh_token": second.json()["refresh_token"]})
        assert third.status == 200
        assert session_is_live(api, third.json())

    def test_concurrent_refreshes_both_succeed_with_one_successor(
        self, api: Any, register: Any, clean_db: str
    ) -> None:
        """Both requests reach the token's row lock together (held here until both wait on it)."""
        account = register()
        results: dict[str, Any] = {}

        def tab(name: str) -> None:
            with db.own_connection(f"tab-{name}"):
                try:
                    results[name] = auth.refresh(account.refresh_token)
                except Exception as error:  # reported by the assertions below
                    results[name] = error

        with psycopg.connect(clean_db) as holder:
            holder.execute(
                "SELECT 1 FROM refresh_tokens WHERE token_hash = %s FOR UPDATE",
                (tokens.digest(account.refresh_token),),
            )
            threads = [threading.Thread(target=tab, args=(name,)) for name in ("a", "b")]
            for thread in threads:
                thread.start()
            with psycopg.connect(clean_db, autocommit=True) as watcher:
                for _ in range(600):
                    waiting = watcher.execute(
                        "SELECT count(*) FROM pg_locks"
                        " WHERE NOT granted AND locktype IN ('tuple', 'transactionid')"
                    ).fetchone()
                    if waiting and waiting[0] >= 2:
                        break
                    time.sleep(0.05)
                else:
                    pytest.fail("the two refreshes never waited on the token together")
        for thread in threads:
            thread.join(timeout=30)
        assert all(isinstance(results[name], TokenPair) for name in ("a", "b")), results
        assert results["a"].refresh_token == results["b"].refresh_token != account.refresh_token
        pair = results["a"].model_dump()
        assert session_is_live(api, pair)
        assert session_is_live(api, results["b"].model_dump())
        assert api.post(REFRESH, json_body={"refresh_token": pair["refresh_token"]}).status == 200

    def test_reuse_after_the_window_still_ends_the_session(
        self, api: Any, register: Any, clean_db: str
    ) -> None:
        account = register()
        successor = api.post(REFRESH, json_body={"refresh_token": account.refresh_token}).json()
        spent_long_ago(clean_db, account.refresh_token)
        assert_error(
            api.post(REFRESH, json_body={"refresh_token": account.refresh_token}), 401, "unauthorized"
        )
        assert not session_is_live(api, successor)
        assert api.post(REFRESH, json_body={"refresh_token": successor["refresh_token"]}).status == 401

    def test_a_third_generation_chain_keeps_its_grace(self, api: Any, register: Any, clean_db: str) -> None:
        account = register()
        token, seen = account.refresh_token, [account.refresh_token]
        for _ in range(3):
            first = api.post(REFRESH, json_body={"refresh_token": token}).json()
            again = api.post(REFRESH, json_body={"refresh_token": token}).json()
            assert first["refresh_token"] == again["refresh_token"] not in seen
            token = first["refresh_token"]
            seen.append(token)
            assert session_is_live(api, first)
        # The first generation's window has passed: presenting it now is a copy.
        spent_long_ago(clean_db, seen[0])
        assert api.post(REFRESH, json_body={"refresh_token": seen[0]}).status == 401
        assert api.post(REFRESH, json_body={"refresh_token": seen[-1]}).status == 401

    def test_no_grace_when_the_window_is_zero(
        self, api: Any, register: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("LOUPE_REFRESH_REUSE_GRACE_SECONDS", "0")
        get_settings.cache_clear()
        account = register()
        successor = api.post(REFRESH, json_body={"refresh_token": account.refresh_token}).json()
        assert api.post(REFRESH, json_body={"refresh_token": account.refresh_token}).status == 401
        assert not session_is_live(api, successor)

    def test_a_signing_key_rotated_inside_the_window_keeps_the_successor(
        self, api: Any, register: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        account = register()
        first = api.post(REFRESH, json_body={"refresh_token": account.refresh_token}).json()
        old_key = get_settings().signing_secret.decode()
        rotated = {
            "current": secrets.token_urlsafe(48),
            "previous": [{"secret": old_key, "retired_at": datetime.now(UTC).isoformat()}],
        }
        monkeypatch.setenv("LOUPE_JWT_SECRET", json.dumps(rotated))
        get_settings.cache_clear()
        again = api.post(REFRESH, json_body={"refresh_token": account.refresh_token})
        assert again.status == 200, again.body
        assert again.json()["refresh_token"] == first["refresh_token"]


class TestLogout:
    def test_logout_stops_access_tokens_at_once(self, api: Any, register: Any) -> None:
        account = register()
        other = login(api, account.email, account.password).json()
        response = api.post(
            "/api/v1/auth/logout",
            json_body={"refresh_token": account.refresh_token},
            token=account.access_token,
        )
        assert response.status == 204
        assert response.body == ""
        assert api.get(ME, token=account.access_token).status == 401
        assert api.post(REFRESH, json_body={"refresh_token": account.refresh_token}).status == 401
        # The other session is untouched.
        assert api.get(ME, token=other["access_token"]).status == 200

    def test_logout_cannot_end_someone_elses_session(self, api: Any, register: Any) -> None:
        alice, bob = register(), register()
        response = api.post(
            "/api/v1/auth/logout", json_body={"refresh_token": bob.refresh_token}, token=alice.access_token
        )
        assert response.status == 204
        assert api.get(ME, token=bob.access_token).status == 200

    def test_logout_all_ends_every_session(self, api: Any, register: Any) -> None:
        account = register()
        other = login(api, account.email, account.password).json()
        assert api.post("/api/v1/auth/logout-all", token=account.access_token).status == 204
        assert api.get(ME, token=account.access_token).status == 401
        assert api.get(ME, token=other["access_token"]).status == 401
        assert api.post(REFRESH, json_body={"refresh_token": other["refresh_token"]}).status == 401

    def test_logout_needs_authentication(self, api: Any, register: Any) -> None:
        account = register()
        response = api.post("/api/v1/auth/logout", json_body={"refresh_token": account.refresh_token})
        assert_error(response, 401, "unauthorized")


class TestSessions:
    def test_list_and_revoke_one(self, api: Any, register: Any) -> None:
        account = register()
        other = login(api, account.email, account.password).json()
        listed = api.get("/api/v1/auth/sessions", token=account.access_token).json()
        assert listed["total"] == 2
        assert listed["limit"] == 50
        assert listed["offset"] == 0
        item = listed["items"][0]
        assert item["user_agent"] == "loupe-tests"
        assert item["ip"] == "198.51.100.7"
        not_current = next(item for item in listed["items"] if not item["current"])
        assert (
            api.delete(f"/api/v1/auth/sessions/{not_current['id']}", token=account.access_token).status == 204
        )
        assert api.get(ME, token=other["access_token"]).status == 401
        assert api.get("/api/v1/auth/sessions", token=account.access_token).json()["total"] == 1

    def test_paging(self, api: Any, register: Any) -> None:
        account = register()
        for _ in range(3):
            login(api, account.email, account.password)
        page = api.get(
            "/api/v1/auth/sessions", token=account.access_token, query={"limit": "2", "offset": "2"}
        )
        assert page.json()["total"] == 4
        assert len(page.json()["items"]) == 2
        bad = api.get("/api/v1/auth/sessions", token=account.access_token, query={"limit": "201"})
        assert_error(bad, 422, "validation_error")

    def test_another_users_session_is_not_found(self, api: Any, register: Any) -> None:
        alice, bob = register(), register()
        bobs = api.get("/api/v1/auth/sessions", token=bob.access_token).json()["items"][0]["id"]
        response = api.delete(f"/api/v1/auth/sessions/{bobs}", token=alice.access_token)
        assert_error(response, 404, "not_found")
        assert api.get(ME, token=bob.access_token).status == 200

    def test_malformed_session_id_is_422(self, api: Any, register: Any) -> None:
        account = register()
        response = api.delete("/api/v1/auth/sessions/not-a-uuid", token=account.access_token)
        assert_error(response, 422, "validation_error")


class TestAccessTokens:
    def test_role_change_takes_effect_at_once(self, api: Any, register: Any, clean_db: str) -> None:
        account = register()
        with psycopg.connect(clean_db) as conn:
            conn.execute("UPDATE memberships SET role = 'viewer' WHERE user_id = %s", (account.user_id,))
        assert api.get(ME, token=account.access_token).json()["role"] == "viewer"

    def test_removed_member_is_locked_out(self, api: Any, register: Any, clean_db: str) -> None:
        account = register()
        with psycopg.connect(clean_db) as conn:
            conn.execute("DELETE FROM memberships WHERE user_id = %s", (account.user_id,))
        assert_error(api.get(ME, token=account.access_token), 401, "unauthorized")

    def test_expired_token(self, api: Any, register: Any) -> None:
        account = register()
        past = int(time.time()) - 3600
        token = forge({"iat": past - 60, "exp": past}, account.access_token)
        assert_error(api.get(ME, token=token), 401, "unauthorized")

    def test_tampered_signature(self, api: Any, register: Any) -> None:
        account = register()
        header, payload, signature = account.access_token.split(".")
        flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
        assert_error(api.get(ME, token=f"{header}.{payload}.{flipped}"), 401, "unauthorized")

    def test_tampered_claims_with_original_signature(self, api: Any, register: Any) -> None:
        alice, bob = register(), register()
        header, _, signature = alice.access_token.split(".")
        claims = jwt.decode(alice.access_token, options={"verify_signature": False})
        claims["org"] = bob.organization_id
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        assert_error(api.get(ME, token=f"{header}.{payload}.{signature}"), 401, "unauthorized")

    def test_alg_none_is_refused(self, api: Any, register: Any) -> None:
        account = register()
        claims = jwt.decode(account.access_token, options={"verify_signature": False})
        unsigned = jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]
        assert_error(api.get(ME, token=unsigned), 401, "unauthorized")

    def test_other_hmac_algorithm_is_refused(self, api: Any, register: Any) -> None:
        account = register()
        token = forge({}, account.access_token, algorithm="HS512")
        assert_error(api.get(ME, token=token), 401, "unauthorized")

    def test_wrong_key_is_refused(self, api: Any, register: Any) -> None:
        account = register()
        token = forge({}, account.access_token, key=b"k" * 16 + b"another-secret-of-32-bytes!!")
        assert_error(api.get(ME, token=token), 401, "unauthorized")

    @pytest.mark.parametrize(
        "change",
        [
            {"aud": "someone-else"},
            {"iss": "evil"},
            {"sid": "not-a-uuid"},
            {"sub": "00000000-0000-0000-0000-000000000000"},
        ],
    )
    def test_wrong_claims_are_refused(self, api: Any, register: Any, change: dict[str, str]) -> None:
        account = register()
        assert_error(api.get(ME, token=forge(change, account.access_token)), 401, "unauthorized")

    @pytest.mark.parametrize("missing", ["exp", "sid", "aud", "iat"])
    def test_missing_claims_are_refused(self, api: Any, register: Any, missing: str) -> None:
        account = register()
        claims = jwt.decode(account.access_token, options={"verify_signature": False})
        del claims[missing]
        token = jwt.encode(claims, get_settings().signing_secret, algorithm="HS256")
        assert_error(api.get(ME, token=token), 401, "unauthorized")

    @pytest.mark.parametrize(
        "authorization", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "Token abc"]
    )
    def test_malformed_authorization_header(self, api: Any, register: Any, authorization: str) -> None:
        register()
        response = api.get(ME, headers={"Authorization": authorization})
        assert_error(response, 401, "unauthorized")

    def test_missing_credentials(self, api: Any) -> None:
        response = api.get(ME)
        assert_error(response, 401, "unauthorized")
        assert response.header("WWW-Authenticate") == 'Bearer realm="loupe"'

    def test_unknown_api_key(self, api: Any, register: Any) -> None:
        register()
        for key in ("lk_nope", "garbage", "lk_" + "x" * 300):
            assert_error(api.get(ME, headers={"X-API-Key": key}), 401, "unauthorized")

    def test_access_token_never_reaches_another_tenant(self, api: Any, register: Any) -> None:
        alice, bob = register(), register()
        token = forge({"org": bob.organization_id}, alice.access_token)
        assert_error(api.get(ME, token=token), 401, "unauthorized")


def test_authenticated_requests_run_as_the_tenant_role(register: Any) -> None:
    """After authentication the transaction is the RLS-bound role, narrowed to the caller's organization."""
    from loupe import db
    from loupe.services import identity

    account = register()
    with db.transaction() as conn:
        identity.authenticate_access_token(account.access_token, None)
        row = conn.execute(
            "SELECT current_user AS role, current_setting('loupe.organization_id') AS org"
        ).fetchone()
        assert row == {"role": "loupe_app", "org": account.organization_id}
        visible = conn.execute("SELECT count(*) AS n FROM organizations").fetchone()
        assert visible == {"n": 1}
    with db.transaction() as conn:
        assert conn.execute("SELECT current_user AS role").fetchone() == {"role": "loupe_system"}
