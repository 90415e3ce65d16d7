"""Application rate limits shared through PostgreSQL: auth requests per address, runs per user, requests
per API key; each answers 429 with an exact Retry-After, and other callers are not affected."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from loupe.config import get_settings
from tests.integration import runs_support
from tests.integration.runs_support import run_query, setup_org

aws = runs_support.aws
postgres_database = runs_support.postgres_database


def limit(monkeypatch: pytest.MonkeyPatch, variable: str, value: int) -> None:
    monkeypatch.setenv(variable, str(value))
    get_settings.cache_clear()


def age_hits(database_url: str, seconds: int) -> None:
    """Move every counted request `seconds` into the past, as if that much time went by."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE rate_limit_hits SET created_at = created_at - make_interval(secs => %s)", (seconds,)
        )


def test_auth_requests_per_address(
    api: Any, register: Any, clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = register()
    limit(monkeypatch, "LOUPE_RATE_LIMIT_AUTH_PER_IP_PER_MINUTE", 3)
    body = {"email": account.email, "password": "correct horse battery"}

    statuses = [
        api.post("/api/v1/auth/login", json_body=body, source_ip="203.0.113.9").status for _ in range(3)
    ]
    refused = api.post("/api/v1/auth/login", json_body=body, source_ip="203.0.113.9")

    assert statuses == [200, 200, 200]
    assert (refused.status, refused.json()["error"]["code"]) == (429, "rate_limited")
    assert 1 <= int(refused.header("Retry-After") or 0) <= 60
    # Other addresses, and the API outside auth/* from this address, go on.
    assert api.post("/api/v1/auth/login", json_body=body, source_ip="203.0.113.10").status == 200
    assert api.get("/api/v1/auth/me", token=account.access_token, source_ip="203.0.113.9").status == 200
    for path, payload in (
        (
            "/api/v1/auth/register",
            {"email": "x@example.com", "password": "p" * 12, "name": "x", "organization_name": "x"},
        ),
        ("/api/v1/auth/refresh", {"refresh_token": "lrt_nope"}),
        ("/api/v1/auth/password-reset/request", {"email": "x@example.com"}),
        ("/api/v1/auth/password-reset/confirm", {"token": "lpr_nope", "new_password": "p" * 12}),
        ("/api/v1/auth/accept-invitation", {"token": "nope", "name": "x", "password": "p" * 12}),
    ):
        assert api.post(path, json_body=payload, source_ip="203.0.113.9").status == 429, path
    # A refused request is not counted: once the window has moved on, the address is served again.
    age_hits(clean_db, 61)
    assert api.post("/api/v1/auth/login", json_body=body, source_ip="203.0.113.9").status == 200


def test_failed_logins_count_against_the_address(
    api: Any, register: Any, clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit(monkeypatch, "LOUPE_RATE_LIMIT_AUTH_PER_IP_PER_MINUTE", 2)
    for index in range(2):
        wrong = {"email": f"someone-{index}@example.com", "password": "wrong password"}
        assert api.post("/api/v1/auth/login", json_body=wrong, source_ip="203.0.113.20").status == 401
    wrong = {"email": "someone-else@example.com", "password": "wrong password"}
    assert api.post("/api/v1/auth/login", json_body=wrong, source_ip="203.0.113.20").status == 429


def test_run_creation_per_user(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    limit(monkeypatch, "LOUPE_RATE_LIMIT_RUNS_PER_USER_PER_MINUTE", 2)

    started = [run_query(api, admin.access_token, query_id, parameters={"minimum": n}).status for n in (1, 2)]
    refused = run_query(api, admin.access_token, query_id, parameters={"minimum": 3})

    assert started == [202, 202]
    assert (refused.status, refused.json()["error"]["code"]) == (429, "rate_limited")
    assert 1 <= int(refused.header("Retry-After") or 0) <= 60
    with psycopg.connect(clean_db) as conn:
        (runs,) = conn.execute("SELECT count(*) FROM runs").fetchone() or (0,)
    assert runs == 2, "a refused run is not created"
    # Reading is not limited.
    assert api.get(f"/api/v1/queries/{query_id}/runs", token=admin.access_token).status == 200
    age_hits(clean_db, 61)
    assert run_query(api, admin.access_token, query_id, parameters={"minimum": 3}).status == 202


def test_requests_per_api_key(
    api: Any, register: Any, clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = register()
    created = api.post(
        "/api/v1/api-keys", json_body={"name": "ci", "role": "viewer"}, token=admin.access_token
    )
    assert created.status == 201, created.body
    key = created.json()["key"]
    other = api.post(
        "/api/v1/api-keys", json_body={"name": "other", "role": "viewer"}, token=admin.access_token
    )
    limit(monkeypatch, "LOUPE_RATE_LIMIT_API_KEY_PER_MINUTE", 3)

    answers = [api.get("/api/v1/queries", headers={"X-Api-Key": key}) for _ in range(4)]

    assert [answer.status for answer in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["error"]["code"] == "rate_limited"
    assert 1 <= int(answers[-1].header("Retry-After") or 0) <= 60
    assert api.get("/api/v1/queries", headers={"X-Api-Key": other.json()["key"]}).status == 200
    assert api.get("/api/v1/queries", token=admin.access_token).status == 200


def test_requests_per_user_count_each_member_apart_behind_one_address(
    api: Any, register: Any, clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = register(), register()
    limit(monkeypatch, "LOUPE_RATE_LIMIT_USER_PER_MINUTE", 3)
    office = "203.0.113.40"

    answers = [api.get("/api/v1/queries", token=first.access_token, source_ip=office) for _ in range(4)]

    assert [answer.status for answer in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert (refused.json()["error"]["code"], refused.json()["error"]["message"]) == (
        "rate_limited",
        "Too many requests from your account",
    )
    assert 1 <= int(refused.header("Retry-After") or 0) <= 60
    # A colleague at the same address has a limit of their own.
    assert api.get("/api/v1/queries", token=second.access_token, source_ip=office).status == 200
    # A refused request is not counted: a minute on, the member is served again.
    age_hits(clean_db, 61)
    assert api.get("/api/v1/queries", token=first.access_token, source_ip=office).status == 200


def test_the_defaults_leave_room_for_a_busy_analyst() -> None:
    settings = get_settings()
    assert settings.rate_limit_runs_per_user >= 120
    assert settings.rate_limit_auth_per_ip >= 60
    assert settings.rate_limit_api_key >= 1_000
    # Opening a dashboard of 30 tiles is about 32 requests (the dashboard, a page per tile, one wait).
    assert settings.rate_limit_user >= 600


def test_auth_requests_that_fail_count_too(
    api: Any, register: Any, clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = register().email
    limit(monkeypatch, "LOUPE_RATE_LIMIT_AUTH_PER_IP_PER_MINUTE", 3)
    guesses = [
        ("/api/v1/auth/password-reset/confirm", {"token": "lpr_guess", "new_password": "p" * 12}),
        ("/api/v1/auth/refresh", {"refresh_token": "lrt_guess"}),
        (
            "/api/v1/auth/register",
            {"email": taken, "password": "p" * 12, "name": "x", "organization_name": "x"},
        ),
    ]
    statuses = [api.post(path, json_body=body, source_ip="203.0.113.30").status for path, body in guesses]

    assert statuses == [401, 401, 409]
    again = api.post(guesses[0][0], json_body=guesses[0][1], source_ip="203.0.113.30")
    assert (again.status, again.json()["error"]["code"]) == (429, "rate_limited")
    assert again.header("Retry-After")


def test_a_long_email_is_limited_not_a_500(api: Any, clean_db: str) -> None:
    email = "a" * 64 + "@" + ".".join(["b" * 60] * 3) + ".com"
    assert len(email) > 240
    answer = api.post("/api/v1/auth/password-reset/request", json_body={"email": email})
    assert answer.status in (202, 422), answer.body
