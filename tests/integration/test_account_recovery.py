"""Password change and reset through the API on the real PostgreSQL: expiry, reuse, session revocation,
enumeration resistance (same status, body and time), and the mail sent through the notifier."""

from __future__ import annotations

import hashlib
import re
import statistics
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from loupe import notify
from loupe.config import get_settings

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
TOKEN = re.compile(r"lpr_[A-Za-z0-9_-]{40,}")


@pytest.fixture
def mailbox() -> Iterator[list[notify.Mail]]:
    notify.MEMORY.sent.clear()
    yield notify.MEMORY.sent
    notify.MEMORY.sent.clear()


def login(api: Any, email: str, password: str, ip: str = "198.51.100.7") -> Any:
    return api.post("/api/v1/auth/login", json_body={"email": email, "password": password}, source_ip=ip)


def request_reset(api: Any, email: str) -> Any:
    return api.post("/api/v1/auth/password-reset/request", json_body={"email": email})


def confirm(api: Any, token: str, password: str = NEW_PASSWORD) -> Any:
    return api.post(
        "/api/v1/auth/password-reset/confirm", json_body={"token": token, "new_password": password}
    )


def token_in(mail: notify.Mail) -> str:
    found = TOKEN.search(mail.text)
    assert found, mail.text
    return found.group(0)


class TestChange:
    def test_changes_the_password_and_ends_the_other_sessions(
        self, api: Any, register: Any, clean_db: str
    ) -> None:
        account = register(password=PASSWORD)
        other = login(api, account.email, PASSWORD).json()

        changed = api.post(
            "/api/v1/auth/password",
            json_body={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            token=account.access_token,
        )

        assert changed.status == 204, changed.body
        assert api.get("/api/v1/auth/me", token=account.access_token).status == 200, "this session stays"
        assert api.get("/api/v1/auth/me", token=other["access_token"]).status == 401
        refreshed = api.post("/api/v1/auth/refresh", json_body={"refresh_token": other["refresh_token"]})
        assert refreshed.status == 401
        assert login(api, account.email, PASSWORD).status == 401
        assert login(api, account.email, NEW_PASSWORD).status == 200
        with psycopg.connect(clean_db) as conn:
            actions = [row[0] for row in conn.execute("SELECT action FROM audit_events").fetchall()]
        assert "auth.password_changed" in actions

    def test_a_wrong_current_password_is_403_and_counts_as_a_failed_login(
        self, api: Any, register: Any, clean_db: str
    ) -> None:
        account = register(password=PASSWORD)
        body = {"current_password": "not it at all", "new_password": NEW_PASSWORD}
        statuses = [
            api.post("/api/v1/auth/password", json_body=body, token=account.access_token).status
            for _ in range(get_settings().login_max_failures + 1)
        ]
        assert statuses[:-1] == [403] * get_settings().login_max_failures
        assert statuses[-1] == 429
        assert login(api, account.email, PASSWORD).status == 429, "the account is throttled as for logins"

    @pytest.mark.parametrize(
        "body",
        [
            {"current_password": PASSWORD, "new_password": "short"},
            {"current_password": PASSWORD, "new_password": "x" * 129},
            {"current_password": "", "new_password": NEW_PASSWORD},
            {"new_password": NEW_PASSWORD},
            {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "extra": 1},
        ],
    )
    def test_bad_bodies_are_422(self, api: Any, register: Any, clean_db: str, body: dict[str, Any]) -> None:
        account = register(password=PASSWORD)
        answer = api.post("/api/v1/auth/password", json_body=body, token=account.access_token)
        assert answer.status == 422, answer.body


class TestReset:
    def test_the_whole_flow_once(
        self, api: Any, register: Any, clean_db: str, mailbox: list[notify.Mail]
    ) -> None:
        account = register(password=PASSWORD)
        other = login(api, account.email, PASSWORD).json()

        requested = request_reset(api, account.email.upper())

        assert (requested.status, requested.body) == (202, "")
        [mail] = mailbox
        assert mail.to == account.email
        token = token_in(mail)
        with psycopg.connect(clean_db) as conn:
            stored = conn.execute(
                "SELECT token_hash, expires_at - created_at FROM password_resets"
            ).fetchall()
        assert stored[0][0] == hashlib.sha256(token.encode()).digest(), "only the digest is stored"
        assert 29 * 60 < stored[0][1].total_seconds() < 30 * 60 + 5

        assert confirm(api, token).status == 204
        assert api.get("/api/v1/auth/me", token=account.access_token).status == 401, "every session ends"
        assert api.get("/api/v1/auth/me", token=other["access_token"]).status == 401
        assert login(api, account.email, PASSWORD).status == 401
        assert login(api, account.email, NEW_PASSWORD).status == 200
        reused = confirm(api, token, "yet another passphrase")
        assert (reused.status, reused.json()["error"]["code"]) == (401, "unauthorized")

    def test_an_expired_token_and_an_older_token_are_refused(
        self, api: Any, register: Any, clean_db: str, mailbox: list[notify.Mail]
    ) -> None:
        account = register(password=PASSWORD)
        request_reset(api, account.email)
        request_reset(api, account.email)
        older, newer = (token_in(mail) for mail in mailbox)
        with psycopg.connect(clean_db) as conn:
            conn.execute(
                "UPDATE password_resets SET expires_at = now() - interval '1 second' WHERE token_hash = %s",
                (hashlib.sha256(newer.encode()).digest(),),
            )
        assert confirm(api, newer).status == 401
        assert confirm(api, older).status == 204
        request_reset(api, account.email)
        spare = token_in(mailbox[-1])
        # Setting the password with one token spends the others.
        changed = api.post(
            "/api/v1/auth/password",
            json_body={"current_password": NEW_PASSWORD, "new_password": "and one more passphrase"},
            token=login(api, account.email, NEW_PASSWORD).json()["access_token"],
        )
        assert changed.status == 204
        assert confirm(api, spare).status == 401

    def test_a_failed_login_lockout_is_lifted_by_a_reset(
        self, api: Any, register: Any, clean_db: str, mailbox: list[notify.Mail]
    ) -> None:
        account = register(password=PASSWORD)
        for _ in range(get_settings().login_max_failures):
            login(api, account.email, "wrong password here")
        assert login(api, account.email, PASSWORD).status == 429
        request_reset(api, account.email)
        assert confirm(api, token_in(mailbox[0])).status == 204
        assert login(api, account.email, NEW_PASSWORD).status == 200

    @pytest.mark.parametrize("token", ["", "lpr_" + "a" * 43, "x" * 513, "lrt_not-a-reset-token"])
    def test_unknown_tokens(self, api: Any, clean_db: str, token: str) -> None:
        answer = confirm(api, token)
        assert answer.status in (401, 422), answer.body

    def test_unknown_and_known_emails_get_the_same_answer_in_the_same_time(
        self, api: Any, register: Any, clean_db: str, mailbox: list[notify.Mail]
    ) -> None:
        known = [register(password=PASSWORD).email for _ in range(6)]
        unknown = [f"nobody-{index}@example.com" for index in range(6)]
        answers: dict[str, list[tuple[int, str, float]]] = {"known": [], "unknown": []}
        for existing, missing in zip(known, unknown, strict=True):
            for kind, email in (("known", existing), ("unknown", missing)):
                started = time.perf_counter()
                answer = request_reset(api, email)
                answers[kind].append((answer.status, answer.body, time.perf_counter() - started))

        assert {(status, body) for status, body, _ in answers["known"] + answers["unknown"]} == {(202, "")}
        assert len(mailbox) == len(known)
        known_time = statistics.median(seconds for _, _, seconds in answers["known"])
        unknown_time = statistics.median(seconds for _, _, seconds in answers["unknown"])
        assert abs(known_time - unknown_time) / max(known_time, unknown_time) < 0.2, (
            known_time,
            unknown_time,
        )

    def test_requests_per_email_are_limited_whether_or_not_it_has_an_account(
        self, api: Any, register: Any, clean_db: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("LOUPE_RATE_LIMIT_RESET_PER_EMAIL_PER_HOUR", "2")
        get_settings.cache_clear()
        account = register(password=PASSWORD)
        for email in (account.email, "nobody@example.com"):
            assert [request_reset(api, email).status for _ in range(2)] == [202, 202]
            refused = request_reset(api, email)
            assert (refused.status, refused.json()["error"]["code"]) == (429, "rate_limited")
            assert 3_500 < int(refused.header("Retry-After") or 0) <= 3_600

    def test_the_outbox_notifier_writes_private_files(
        self, api: Any, register: Any, clean_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
    ) -> None:
        monkeypatch.setenv("LOUPE_NOTIFIER", "outbox")
        monkeypatch.setenv("LOUPE_OUTBOX_DIR", str(tmp_path / "outbox"))
        get_settings.cache_clear()
        account = register(password=PASSWORD)
        assert request_reset(api, account.email).status == 202
        [written] = list((tmp_path / "outbox").iterdir())
        assert written.stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "outbox").stat().st_mode & 0o777 == 0o700
        assert TOKEN.search(written.read_text())
