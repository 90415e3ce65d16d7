"""The two ways the functions reach the metadata database in AWS, against the real PostgreSQL behind a
double of what stands between: through RDS Proxy (which refuses libpq's startup `options`), and
straight to an Aurora cluster that pauses when idle (connections let go of after each invocation, a
resuming database waited for, a 503 with Retry-After when it does not answer in time)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from infra.local.events import LocalLambdaContext, rest_api_event
from infra.local.template_routes import load_handler
from loupe import db, migrations
from loupe.config import get_settings
from loupe.entry.observed import observed
from tests.proxy_double import ProxyDouble


@pytest.fixture(params=[True], ids=["rds-proxy"])
def proxy(database_url: str, request: pytest.FixtureRequest) -> Iterator[ProxyDouble]:
    double = ProxyDouble(database_url, rds_proxy=request.param)
    db.close()
    try:
        yield double
    finally:
        db.close()
        double.stop()


def use(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def test_through_rds_proxy_no_startup_options_are_sent_and_each_transaction_sets_its_own(
    proxy: ProxyDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, DATABASE_URL=proxy.url(), LOUPE_DB_STATEMENT_TIMEOUT_MS="4321")
    # Startup options, as a direct connection sends them, are refused by the proxy.
    with pytest.raises(db.DatabaseUnavailable):
        db.connect()
    assert proxy.refused == 1

    use(monkeypatch, LOUPE_DB_THROUGH_PROXY="true")
    for _ in range(2):  # the settings are local to each transaction, and set again in the next
        with db.transaction() as conn:
            row = conn.execute(
                "SELECT current_user AS role, current_setting('statement_timeout') AS statement_timeout,"
                " current_setting('TimeZone') AS zone"
            ).fetchone()
        assert row == {"role": "loupe_system", "statement_timeout": "4321ms", "zone": "UTC"}
    assert proxy.refused == 1
    # Named prepared statements would pin the client to one server connection of the proxy: none is made,
    # however often the same statement runs.
    for _ in range(10):
        with db.transaction() as conn:
            conn.execute("SELECT 1 AS one").fetchone()
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) AS prepared FROM pg_prepared_statements").fetchone() == {
            "prepared": 0
        }


@pytest.mark.parametrize("proxy", [False], ids=["paused-cluster"], indirect=True)
def test_a_database_resuming_from_a_pause_is_waited_for_within_the_configured_time(
    proxy: ProxyDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, DATABASE_URL=proxy.url(), LOUPE_DB_WAKE_WAIT_SECONDS="0")
    proxy.asleep_until = time.monotonic() + 1.5
    with pytest.raises(db.DatabaseUnavailable):
        db.connect()

    use(monkeypatch, LOUPE_DB_WAKE_WAIT_SECONDS="10")
    started = time.monotonic()
    with db.transaction() as conn:
        assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}
    assert time.monotonic() >= proxy.asleep_until
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("proxy", [False], ids=["paused-cluster"], indirect=True)
def test_a_refused_login_is_not_retried(proxy: ProxyDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = urlsplit(proxy.url())
    use(monkeypatch, DATABASE_URL=urlunsplit(parts._replace(netloc=f"nobody_here@127.0.0.1:{proxy.port}")))
    use(monkeypatch, LOUPE_DB_WAKE_WAIT_SECONDS="30")
    started = time.monotonic()
    with pytest.raises(db.DatabaseUnavailable):
        db.connect()
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("proxy", [False], ids=["paused-cluster"], indirect=True)
def test_a_request_the_database_does_not_answer_is_a_503_saying_when_to_retry(
    proxy: ProxyDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(
        monkeypatch,
        DATABASE_URL=proxy.url(),
        LOUPE_DB_WAKE_WAIT_SECONDS="1",
        LOUPE_JWT_SECRET=secrets.token_urlsafe(48),
    )
    proxy.asleep_until = time.monotonic() + 60
    event = rest_api_event(
        "POST", "/api/v1/auth/login", body=json.dumps({"email": "a@example.com", "password": "secret-secret"})
    )
    response: dict[str, Any] = load_handler("AuthFunction")(event, LocalLambdaContext("AuthFunction"))
    assert response["statusCode"] == 503
    headers = {name.lower(): values for name, values in response["multiValueHeaders"].items()}
    assert headers["retry-after"] == ["10"]
    assert json.loads(response["body"])["error"]["code"] == "service_unavailable"


def _loupe_backends(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'loupe'"
            " AND datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(("keep", "left"), [("true", 1), ("false", 0)])
def test_without_a_proxy_each_invocation_lets_go_of_its_connection(
    proxy: ProxyDouble, monkeypatch: pytest.MonkeyPatch, database_url: str, keep: str, left: int
) -> None:
    use(monkeypatch, LOUPE_DB_KEEP_CONNECTIONS=keep)

    def handler(event: dict[str, Any], context: Any) -> int:
        with db.transaction() as conn:
            return int(conn.execute("SELECT 1 AS one").fetchone()["one"])  # type: ignore[index]

    assert observed(handler)({}, LocalLambdaContext("AnyFunction")) == 1
    assert _loupe_backends(database_url) == left


def test_after_commit_runs_once_per_callback_outside_the_transaction_and_never_on_rollback(
    database_url: str,
) -> None:
    calls: list[str] = []

    def note() -> None:
        # Outside the committed transaction: a transaction here is a new one.
        with db.transaction() as conn:
            calls.append(str(conn.execute("SELECT txid_current_if_assigned() AS id").fetchone()))

    with db.transaction():
        db.after_commit(note)
        db.after_commit(note)
        assert calls == []
    assert calls == ["{'id': None}"]

    def rolled_back() -> None:
        with db.transaction():
            db.after_commit(note)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        rolled_back()
    assert len(calls) == 1


@pytest.mark.parametrize("proxy", [False], ids=["paused-cluster"], indirect=True)
def test_a_deploy_migrates_a_paused_cluster_once_it_has_resumed(proxy: ProxyDouble) -> None:
    proxy.asleep_until = time.monotonic() + 1.5
    assert migrations.apply(proxy.url()) == []
    assert time.monotonic() >= proxy.asleep_until
