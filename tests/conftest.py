"""Test fixtures: a real PostgreSQL (embedded unless TEST_DATABASE_URL), migrated, and an API client
that sends real API Gateway REST events to the function the template routes them to."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import psycopg
import pytest

# The settings are read once per process: set them before anything imports loupe.config.
os.environ.setdefault("LOUPE_ENV", "test")
os.environ["LOUPE_JWT_SECRET"] = secrets.token_urlsafe(48)
os.environ["LOUPE_NOTIFIER"] = "memory"
# Every test talks from the same address: the per-address auth limit is out of the way except in the
# tests of that limit, which set their own.
os.environ["LOUPE_RATE_LIMIT_AUTH_PER_IP_PER_MINUTE"] = "100000"
# The OWASP minimum Argon2id profile: the real algorithm, at a cost that keeps the suite quick.
os.environ.setdefault("LOUPE_ARGON2_TIME_COST", "2")
os.environ.setdefault("LOUPE_ARGON2_MEMORY_KIB", "19456")
os.environ.setdefault("LOUPE_ARGON2_PARALLELISM", "1")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "LoupeTest")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# Unit tests that read settings need a well-formed URL; the database fixture replaces it with a real one.
os.environ.setdefault("DATABASE_URL", "postgresql://loupe@127.0.0.1:1/unit_tests_connect_nowhere")

from infra.local.gateway import Gateway, HttpRequest

TABLES_KEPT = ("_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock")


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Settings are read once per process; each test reads them anew, so its environment counts."""
    from loupe import config

    config.get_settings.cache_clear()
    yield
    config.get_settings.cache_clear()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A server to create test databases on: TEST_DATABASE_URL, or an embedded one for the session."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="loupe-test-pg-") as data_dir:
        server = pgserver.get_server(data_dir, cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, migrated database for the session, dropped at the end."""
    from loupe import migrations

    name = f"loupe_test_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(postgres_server_url, name)
    migrations.apply(url)
    os.environ["DATABASE_URL"] = url
    from loupe import config, db

    config.get_settings.cache_clear()
    try:
        yield url
    finally:
        db.close()
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def clean_db(database_url: str) -> Iterator[str]:
    """The migrated database, emptied after the test (the schema stays)."""
    yield database_url
    from loupe import db

    db.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND NOT (tablename = ANY(%s))",
                (list(TABLES_KEPT),),
            )
        ]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f'"{table}"' for table in tables) + " CASCADE")


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: str
    function: str | None = None
    content: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers.items() if key.lower() == name.lower()), None)


_GATEWAY = Gateway()


@dataclass
class ApiClient:
    """Sends HTTP-shaped requests through the local gateway: template.yaml routes each to its function
    as the API Gateway REST proxy event AWS would send, in this process."""

    default_headers: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        raw_body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str | list[str]] | None = None,
        token: str | None = None,
        source_ip: str = "198.51.100.7",
    ) -> ApiResponse:
        all_headers = {"User-Agent": "loupe-tests", **self.default_headers, **(headers or {})}
        body = raw_body
        if json_body is not None:
            body = json.dumps(json_body)
            all_headers.setdefault("Content-Type", "application/json")
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        target = path + ("?" + urlencode(query, doseq=True) if query else "")
        encoded = body.encode() if isinstance(body, str) else body or b""
        response = _GATEWAY.handle(HttpRequest(method, target, list(all_headers.items()), encoded, source_ip))
        headers = dict(response.headers)
        # A picture's bytes are not text: `body` holds what decodes, `content` every byte.
        text = response.body.decode(errors="replace")
        return ApiResponse(response.status, headers, text, response.function, response.body)

    def get(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("DELETE", path, **kwargs)


@pytest.fixture
def api(clean_db: str) -> ApiClient:
    return ApiClient()


@dataclass
class Account:
    email: str
    password: str
    access_token: str
    refresh_token: str
    user_id: str
    organization_id: str


@pytest.fixture
def register(api: ApiClient) -> Any:
    """Register a new account with a fresh organization; returns its tokens and ids."""

    def _register(email: str | None = None, password: str = "correct horse battery") -> Account:
        email = email or f"user-{secrets.token_hex(4)}@example.com"
        response = api.post(
            "/api/v1/auth/register",
            json_body={
                "email": email,
                "password": password,
                "name": "Test User",
                "organization_name": "Acme",
            },
        )
        assert response.status == 201, response.body
        body = response.json()
        return Account(
            email=email.lower(),
            password=password,
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
            user_id=body["user"]["id"],
            organization_id=body["user"]["organization_id"],
        )

    return _register


@pytest.fixture
def read_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Reads the JSON lines a function wrote so far in the test, as Lambda ships them: the Powertools
    logger's, then those printed beside them (each request's line, metrics). Standard output is read
    here: a test reads it through this, not through capsys as well."""
    import io
    import logging

    from loupe.observability import logger

    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    printed: list[str] = []

    def read() -> list[dict[str, Any]]:
        printed.extend(line for line in capsys.readouterr().out.splitlines() if line.startswith("{"))
        logged = [line for line in buffer.getvalue().splitlines() if line.startswith("{")]
        # Standard output may hold the logger's lines too: each line once.
        written = set(logged)
        return [json.loads(line) for line in [*logged, *(line for line in printed if line not in written)]]

    try:
        yield read
    finally:
        logger.removeHandler(handler)
