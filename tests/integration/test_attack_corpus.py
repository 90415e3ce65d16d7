"""The SQL guard's attack corpus through the API against the local PostgreSQL and MariaDB, on a login
that may write, owns a SECURITY DEFINER function and may reach the server's programs or files (its
risks accepted): every run is refused or ends without effect, and the legitimate corpus still runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pymysql
import pytest

from loupe.config import get_settings
from loupe.connectors import REFUSED_FINDINGS, DatasourceType
from loupe.security.connection_policy import parse
from tests.integration import runs_support
from tests.integration.runs_support import receive, run_runner
from tests.integration.test_datasources import assert_error
from tests.integration.test_sql_guard_databases import (
    MARIADB,
    PARAMETER_VALUES,
    POSTGRES_ADMIN,
    PWNED,
    Target,
    attacks_on,
    mariadb_target,
    mysql_login,
    postgres_target,
)
from tests.unit.test_sql_guard import DEFINER, LEGITIMATE, PARAMETERIZED

# pytest finds fixtures by the module's names: this makes the shared one this module's.
aws = runs_support.aws

DATASOURCES = "/api/v1/datasources"
RUNS = "/api/v1/runs"
# What the audit must find on each writer: the reasons a read-only deployment would refuse it.
EXPECTED_RISKS: dict[DatasourceType, set[str]] = {
    "postgres": {"server_program_execution", "executables_outside_catalog"},
    "mysql": {"server_file_read", "server_file_write"},
}

ANTI_JOIN = "SELECT o.id FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL"


@pytest.fixture(autouse=True)
def whole_corpus_queued(monkeypatch: pytest.MonkeyPatch) -> None:
    """A corpus is submitted before the runner takes any of it: the per-user limits must not interfere."""
    monkeypatch.setenv("LOUPE_MAX_ACTIVE_RUNS_PER_USER", "1000")
    monkeypatch.setenv("LOUPE_RATE_LIMIT_RUNS_PER_USER_PER_MINUTE", "1000")
    monkeypatch.setenv("LOUPE_RATE_LIMIT_USER_PER_MINUTE", "10000")
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Target]:
    with postgres_target(login_owns_the_definer=True) as target:
        yield target


@pytest.fixture(scope="module")
def mariadb() -> Iterator[Target]:
    with mariadb_target(login_owns_the_definer=True) as target:
        yield target


@pytest.fixture(params=["postgres", "mariadb"])
def target(request: pytest.FixtureRequest) -> Target:
    """Each engine's writer, set up once for the module."""
    found: Target = request.getfixturevalue(request.param)
    return found


def open_sessions(target: Target) -> int:
    """The writer's sessions on the server: none may outlive the runs, refused or not."""
    user = parse(target.dialect, target.url).user
    if target.dialect == "postgres":
        with psycopg.connect(POSTGRES_ADMIN) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (user,)).fetchone()
    else:
        root = pymysql.connect(host=MARIADB[0], port=MARIADB[1], user="root")
        try:
            with root.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM information_schema.processlist WHERE user = %s", (user,))
                row = cursor.fetchone()
        finally:
            root.close()
    assert row is not None
    return int(row[0])


def writer_datasource(api: Any, register: Any, target: Target, **extra: Any) -> tuple[str, str]:
    """A new admin's token, and the writer registered by them through the API: refused for its findings,
    then created with each refused finding listed in accepted_risks, as the docs tell an admin to."""
    token = register().access_token
    body = {"name": f"writer {target.dialect}", "type": target.dialect, "connection_string": target.url}
    refused = assert_error(api.post(DATASOURCES, json_body=body, token=token), 422, "login_refused")
    risks = sorted({detail["issue"].split(":", 1)[0] for detail in refused["details"]})
    assert EXPECTED_RISKS[target.dialect] <= set(risks) <= REFUSED_FINDINGS
    created = api.post(DATASOURCES, json_body={**body, "accepted_risks": risks, **extra}, token=token)
    assert created.status == 201, created.body
    assert created.json()["login_audit"]["status"] == "accepted"
    return token, str(created.json()["id"])


def submit(api: Any, token: str, datasource_id: str, sql: str, **parameters: Any) -> dict[str, Any]:
    body = {"datasource_id": datasource_id, "sql": sql, "parameters": parameters}
    response = api.post(RUNS, json_body=body, token=token)
    assert response.status == 202, (sql, response.body)
    run: dict[str, Any] = response.json()
    return run


def run_the_queue(queue_url: str) -> int:
    """Hand every queued message to the runner in SQS events of up to ten, deleting each handled one
    as the event source does; returns how many were handled."""
    handled = 0
    while messages := receive(queue_url):
        assert run_runner(messages, queue_url) == {"batchItemFailures": []}
        for message in messages:
            boto3.client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        handled += len(messages)
    return handled


def current(api: Any, token: str, run: dict[str, Any]) -> dict[str, Any]:
    response = api.get(f"{RUNS}/{run['id']}", token=token)
    assert response.status == 200, response.body
    found: dict[str, Any] = response.json()
    return found


def not_refused(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The runs that did not end failed with `sql_not_allowed`, and how they ended."""
    return {
        sql: (run["status"], run.get("error"))
        for sql, run in runs.items()
        if run["status"] != "failed" or (run.get("error") or {}).get("code") != "sql_not_allowed"
    }


def test_every_attack_is_refused_and_changes_nothing(
    api: Any, register: Any, aws: str, target: Target
) -> None:
    token, datasource_id = writer_datasource(api, register, target)
    before = target.snapshot()
    attacks = attacks_on(target.dialect)
    runs = {attack.sql: submit(api, token, datasource_id, attack.sql) for attack in attacks}
    assert not_refused(runs) == {}
    assert all(run["error"]["message"] for run in runs.values())
    # Refused at submission: nothing reached the queue, so no runner ever opened a session for them.
    assert receive(aws) == []
    assert target.snapshot() == before
    assert open_sessions(target) == 0


def test_the_runner_refuses_what_an_allowance_let_through(
    api: Any, register: Any, aws: str, target: Target
) -> None:
    """The runner judges the SQL again with the datasource's settings of the moment: a call of DEFINER
    queued while an admin allowed it, then withdrawn, ends `sql_not_allowed` without running."""
    token, datasource_id = writer_datasource(api, register, target, allowed_functions=[DEFINER])
    before = target.snapshot()
    calls = [attack.sql for attack in attacks_on(target.dialect) if DEFINER in attack.sql]
    runs = {sql: submit(api, token, datasource_id, sql) for sql in calls}
    queued = {sql: run for sql, run in runs.items() if run["status"] == "queued"}
    assert f"SELECT {DEFINER}()" in queued
    assert not_refused({sql: run for sql, run in runs.items() if sql not in queued}) == {}
    withdrawn = api.request(
        "PATCH",
        f"{DATASOURCES}/{datasource_id}",
        json_body={"allowed_functions": []},
        token=token,
    )
    assert withdrawn.status == 200, withdrawn.body
    assert run_the_queue(aws) == len(queued)
    ended = {sql: current(api, token, run) for sql, run in queued.items()}
    assert not_refused(ended) == {}
    assert target.snapshot() == before
    assert open_sessions(target) == 0


def legitimate_runs(target: Target) -> list[tuple[str, dict[str, Any]]]:
    """The engine's legitimate corpus, its parameterized queries written with `{{ name }}`."""
    runs: list[tuple[str, dict[str, Any]]] = [(sql, {}) for sql in LEGITIMATE[target.dialect]]
    for dialect, template, names in PARAMETERIZED:
        if dialect == target.dialect:
            sql = template.format(**{name: f"{{{{ {name} }}}}" for name in names})
            runs.append((sql, {name: PARAMETER_VALUES[name] for name in names}))
    return runs


def test_the_legitimate_corpus_runs_on_the_same_login(
    api: Any, register: Any, aws: str, target: Target
) -> None:
    token, datasource_id = writer_datasource(api, register, target)
    before = target.snapshot()
    corpus = legitimate_runs(target)
    runs = {sql: submit(api, token, datasource_id, sql, **values) for sql, values in corpus}
    assert {run["status"] for run in runs.values()} == {"queued"}
    assert run_the_queue(aws) == len(corpus)
    ended = {sql: current(api, token, run) for sql, run in runs.items()}
    failed = {
        sql: (run["status"], run.get("error")) for sql, run in ended.items() if run["status"] != "succeeded"
    }
    assert failed == {}
    # Each query reads seeded rows, but for the anti-join: every seeded order has its customer.
    assert {sql for sql, run in ended.items() if not run["row_count"]} <= {ANTI_JOIN}
    assert target.snapshot() == before
    assert open_sessions(target) == 0


def test_the_postgres_login_runs_a_program_and_empties_the_canary_outside_loupe() -> None:
    """The control: the writer itself, connected directly, runs the program through its function and
    deletes through its procedure, so the refusals through the API are what stops them."""
    with postgres_target(login_owns_the_definer=True) as target:
        try:
            with psycopg.connect(target.url, autocommit=True) as conn:
                conn.execute(f"SELECT {DEFINER}()")
                conn.execute("CALL cleanup()")
            assert str(PWNED) in target.snapshot()["files"]
            assert target.snapshot()["canary"] == []
        finally:
            PWNED.unlink(missing_ok=True)


def test_the_mariadb_login_writes_through_its_routines_outside_loupe() -> None:
    """The control: the writer, connected directly, changes the canary through its DEFINER function
    and empties it through its procedure."""
    with mariadb_target(login_owns_the_definer=True) as target:
        writer = pymysql.connect(**mysql_login(target.url), autocommit=True)
        try:
            with writer.cursor() as cursor:
                cursor.execute(f"SELECT {DEFINER}()")
                changed = target.snapshot()["canary"]
                cursor.execute("CALL cleanup()")
        finally:
            writer.close()
        assert {row[2] for row in changed} == {"owned"}
        assert target.snapshot()["canary"] == ()
