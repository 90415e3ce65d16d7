"""The SQL guard's corpus against the real PostgreSQL and MariaDB on this machine (and DuckDB in a
temporary folder), through a login that may write and may call a SECURITY DEFINER function of the
superuser: the guard refuses every attack, the connectors' read-only transaction alone stops the writes,
a canary table proves nothing changed; and every catalogued function runs as a read-only login."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pymysql
import pytest
from psycopg import sql as pgsql

from loupe.config import get_settings
from loupe.connectors import ConnectorError, DatasourceType, Limits, Session, engine
from loupe.security.connection_policy import connect, parse
from loupe.security.sql_guard import SqlNotAllowed, check
from tests.integration.test_connectors import DUCKDB_ORGANIZATION
from tests.streams import collect
from tests.unit.test_sql_guard import (
    ATTACKS,
    DEFINER,
    LEGITIMATE,
    MARKER_PATH,
    PARAMETERIZED,
    Attack,
    with_placeholders,
)

POSTGRES = ("127.0.0.1", 5432)
MARIADB = ("127.0.0.1", 3306)
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
LIMITS = Limits(connect_timeout_seconds=5, statement_timeout_seconds=1)
# A statement may overrun its timeout by the time the server takes to notice, never by a sleep's length.
SLACK_SECONDS = 2.5
WRITER_PASSWORD = "writer-Pw-" + secrets.token_hex(6)
READER_PASSWORD = "reader-Pw-" + secrets.token_hex(6)
# What the PostgreSQL DEFINER function creates on the server when it runs.
PWNED = Path(f"/tmp/loupe_pwned_{secrets.token_hex(6)}")  # noqa: S108
# Files the corpus tries to create on the database server.
WRITTEN_FILES = tuple(
    Path(path)
    for path in (
        "/tmp/loupe_pwned",  # noqa: S108
        "/tmp/loupe_out.csv",  # noqa: S108
        "/tmp/loupe_out.txt",  # noqa: S108
        "/tmp/loupe_dump.bin",  # noqa: S108
        "/tmp/loupe_lo",  # noqa: S108
        "/tmp/loupe_export",  # noqa: S108
        "/tmp/loupe_other.duckdb",  # noqa: S108
        PWNED,
    )
)
# Sample data for the legitimate queries; the canary is what the attacks aim at.
POSTGRES_SCHEMA = (
    "CREATE TABLE canary (id serial PRIMARY KEY, secret text NOT NULL, note text)",
    "INSERT INTO canary (secret, note) VALUES ('bird one', 'alive'), ('bird two', 'alive')",
    "CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL, region text)",
    "INSERT INTO customers VALUES (1, 'Ada', 'north'), (2, 'Bob', 'south'), (3, 'Cy', NULL)",
    "CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer, amount numeric(10, 2),"
    " status text, created_at timestamptz NOT NULL DEFAULT now(), payload jsonb)",
    "INSERT INTO orders VALUES (1, 1, 120, 'paid', now() - interval '2 days',"
    ' \'{"channel": "web", "items": ["a", "b"]}\'), (2, 1, 15, \'open\', now(), \'{"channel": "shop"}\'),'
    " (3, 2, 40, 'paid', now() - interval '40 days', NULL)",
)
MARIADB_SCHEMA = (
    "CREATE TABLE canary (id INT AUTO_INCREMENT PRIMARY KEY, secret VARCHAR(50) NOT NULL, note VARCHAR(50))",
    "INSERT INTO canary (secret, note) VALUES ('bird one', 'alive'), ('bird two', 'alive')",
    "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL, region VARCHAR(20))",
    "INSERT INTO customers VALUES (1, 'Ada', 'north'), (2, 'Bob', 'south'), (3, 'Cy', NULL)",
    "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT, amount DECIMAL(10, 2), status VARCHAR(20),"
    " created_at DATETIME NOT NULL, payload JSON)",
    "INSERT INTO orders VALUES (1, 1, 120, 'paid', NOW() - INTERVAL 2 DAY,"
    ' \'{"channel": "web", "items": ["a", "b"]}\'), (2, 1, 15, \'open\', NOW(), \'{"channel": "shop"}\'),'
    " (3, 2, 40, 'paid', NOW() - INTERVAL 40 DAY, NULL)",
)
DUCKDB_SCHEMA = (
    "CREATE TABLE canary (id INTEGER PRIMARY KEY, secret VARCHAR NOT NULL, note VARCHAR)",
    "INSERT INTO canary VALUES (1, 'bird one', 'alive'), (2, 'bird two', 'alive')",
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, region VARCHAR)",
    "INSERT INTO customers VALUES (1, 'Ada', 'north'), (2, 'Bob', 'south'), (3, 'Cy', NULL)",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, amount DECIMAL(10, 2),"
    " status VARCHAR, created_at TIMESTAMP NOT NULL, payload JSON)",
    "INSERT INTO orders VALUES (1, 1, 120, 'paid', now()::TIMESTAMP - INTERVAL 2 DAY,"
    " '{\"channel\": \"web\"}'), (2, 1, 15, 'open', now()::TIMESTAMP, NULL)",
)
PARAMETER_VALUES: dict[str, Any] = {
    "min": 10,
    "status": "paid",
    "a": 1,
    "b": 2,
    "n": 2,
    "since": "2000-01-01",
}


def mysql_login(url: str) -> dict[str, Any]:
    spec = parse("mysql", url)
    return {
        "host": spec.host,
        "port": spec.port,
        "user": spec.user,
        "password": spec.password,
        "database": spec.database,
    }


def require_port(address: tuple[str, int], what: str) -> None:
    try:
        with socket.create_connection(address, timeout=1):
            return
    except OSError:
        pytest.skip(f"{what} is not running on {address[0]}:{address[1]} (CI starts it)")


def attacks_on(dialect: DatasourceType) -> list[Attack]:
    return [attack for attack in ATTACKS if attack.dialect == dialect]


@dataclass(frozen=True)
class Target:
    """A throwaway database with the canary, and the URL of a login allowed to write to it."""

    dialect: DatasourceType
    url: str
    snapshot: Callable[[], dict[str, Any]]
    # A login that may only read (PostgreSQL: CONNECT and SELECT; MariaDB: SELECT).
    reader_url: str = ""


@dataclass(frozen=True)
class Outcome:
    sql: str
    seconds: float
    rows: str
    error: str | None


@pytest.fixture(autouse=True)
def private_hosts_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local databases are on loopback, which only development and tests allow."""
    monkeypatch.setenv("LOUPE_ALLOW_PRIVATE_DATASOURCE_HOSTS", "true")
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def marker() -> Iterator[str]:
    """A world-readable file holding a secret, which the server could read if anything let it."""
    secret = "marker-" + secrets.token_hex(12)
    path = Path(MARKER_PATH)
    path.write_text(secret + "\n")
    path.chmod(0o644)
    for written in WRITTEN_FILES:
        assert not written.exists(), f"{written} is left from an earlier run; remove it"
    yield secret
    path.unlink(missing_ok=True)


def files_written() -> list[str]:
    return [str(path) for path in WRITTEN_FILES if path.exists()]


@contextmanager
def postgres_target(*, login_owns_the_definer: bool = False) -> Iterator[Target]:
    """The writer may call the superuser's DEFINER function; with `login_owns_the_definer`, the writer
    owns it and is a member of pg_execute_server_program, so the call runs the program as the writer."""
    require_port(POSTGRES, "PostgreSQL")
    name = f"loupe_guard_{secrets.token_hex(4)}"
    reader = f"{name}_reader"
    database_url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))
        admin.execute(
            pgsql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                pgsql.Identifier(name), pgsql.Literal(WRITER_PASSWORD)
            )
        )
        admin.execute(
            pgsql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                pgsql.Identifier(reader), pgsql.Literal(READER_PASSWORD)
            )
        )
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for statement in POSTGRES_SCHEMA:
                conn.execute(statement)
            # Installed so that the dblink attacks meet a real extension, not a missing function.
            conn.execute("CREATE EXTENSION dblink")
            writer = pgsql.Identifier(name)
            conn.execute(pgsql.SQL("GRANT ALL ON DATABASE {} TO {}").format(writer, writer))
            conn.execute(pgsql.SQL("GRANT ALL ON SCHEMA public TO {}").format(writer))
            conn.execute(pgsql.SQL("GRANT ALL ON ALL TABLES IN SCHEMA public TO {}").format(writer))
            conn.execute(pgsql.SQL("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {}").format(writer))
            # The superuser's SECURITY DEFINER function: a call runs a program as the server's account,
            # read-only transaction or not (COPY TO PROGRAM only reads the database).
            conn.execute(
                pgsql.SQL(
                    "CREATE FUNCTION public.{}() RETURNS int LANGUAGE plpgsql SECURITY DEFINER"
                    " AS $body$ BEGIN EXECUTE {}; RETURN 1; END $body$"
                ).format(
                    pgsql.Identifier(DEFINER),
                    pgsql.Literal(f"COPY (SELECT 1) TO PROGRAM 'touch {PWNED}'"),
                )
            )
            if login_owns_the_definer:
                conn.execute(pgsql.SQL("GRANT pg_execute_server_program TO {}").format(writer))
                # The procedure the corpus calls, emptying the canary.
                conn.execute(
                    "CREATE PROCEDURE public.cleanup() LANGUAGE sql AS $body$ DELETE FROM canary $body$"
                )
                conn.execute(pgsql.SQL("ALTER PROCEDURE public.cleanup() OWNER TO {}").format(writer))
                conn.execute(
                    pgsql.SQL("ALTER FUNCTION public.{}() OWNER TO {}").format(
                        pgsql.Identifier(DEFINER), writer
                    )
                )
            read_only = pgsql.Identifier(reader)
            conn.execute(pgsql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(writer, read_only))
            conn.execute(pgsql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(read_only))

        def snapshot() -> dict[str, Any]:
            with psycopg.connect(database_url, autocommit=True) as conn:
                return {
                    "canary": conn.execute("SELECT id, secret, note FROM canary ORDER BY id").fetchall(),
                    "sequence": conn.execute("SELECT last_value FROM canary_id_seq").fetchone(),
                    "relations": conn.execute(
                        "SELECT n.nspname, c.relname FROM pg_class c"
                        " JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
                        " ORDER BY 1, 2"
                    ).fetchall(),
                    "functions": conn.execute(
                        "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                        " WHERE n.nspname = 'public'"
                    ).fetchone(),
                    "large_objects": conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone(),
                    "privileges": conn.execute(
                        "SELECT relacl::text FROM pg_class WHERE relname = 'canary'"
                    ).fetchone(),
                    "files": files_written(),
                }

        yield Target(
            "postgres",
            f"postgresql://{name}:{WRITER_PASSWORD}@127.0.0.1:5432/{name}",
            snapshot,
            f"postgresql://{reader}:{READER_PASSWORD}@127.0.0.1:5432/{name}",
        )
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name)))
            admin.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(name)))
            admin.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(reader)))


@contextmanager
def mariadb_target(*, login_owns_the_definer: bool = False) -> Iterator[Target]:
    """The writer may call the administrator's DEFINER function; with `login_owns_the_definer`, the
    writer is its definer, holds FILE, and defines the `cleanup` procedure the corpus calls."""
    require_port(MARIADB, "MariaDB")
    name = f"loupe_guard_{secrets.token_hex(4)}"
    reader = f"{name}_r"
    root = pymysql.connect(host=MARIADB[0], port=MARIADB[1], user="root", autocommit=True)
    try:
        with root.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}`")
            cursor.execute(f"USE `{name}`")
            for statement in MARIADB_SCHEMA:
                cursor.execute(statement)
            cursor.execute(f"CREATE USER '{name}'@'%%' IDENTIFIED BY %s", (WRITER_PASSWORD,))
            cursor.execute(f"GRANT ALL ON `{name}`.* TO '{name}'@'%'")
            cursor.execute(f"CREATE USER '{reader}'@'%%' IDENTIFIED BY %s", (READER_PASSWORD,))
            cursor.execute(f"GRANT SELECT ON `{name}`.* TO '{reader}'@'%'")
            # The administrator's (or the writer's) SQL SECURITY DEFINER function, which the writer may call.
            definer = f"'{name}'@'%'" if login_owns_the_definer else "CURRENT_USER"
            cursor.execute(
                f"CREATE DEFINER = {definer} FUNCTION `{DEFINER}`() RETURNS INT MODIFIES SQL DATA"
                " SQL SECURITY DEFINER BEGIN UPDATE canary SET note = 'owned'; RETURN 1; END"
            )
            if login_owns_the_definer:
                cursor.execute(f"GRANT FILE ON *.* TO '{name}'@'%'")
                cursor.execute(
                    f"CREATE DEFINER = {definer} PROCEDURE cleanup() MODIFIES SQL DATA SQL SECURITY DEFINER"
                    " DELETE FROM canary"
                )

        def snapshot() -> dict[str, Any]:
            with root.cursor() as cursor:
                try:
                    cursor.execute(f"SELECT id, secret, note FROM `{name}`.canary ORDER BY id")
                    canary: Any = cursor.fetchall()
                except pymysql.err.ProgrammingError:
                    canary = "dropped"
                cursor.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
                    (name,),
                )
                tables = cursor.fetchall()
                cursor.execute(
                    "SELECT count(*) FROM information_schema.routines WHERE routine_schema = %s", (name,)
                )
                routines = cursor.fetchone()
                cursor.execute(f"SHOW GRANTS FOR '{name}'@'%'")
                grants = sorted(cursor.fetchall())
            return {
                "canary": canary,
                "tables": tables,
                "routines": routines,
                "grants": grants,
                "files": files_written(),
            }

        yield Target(
            "mysql",
            f"mysql://{name}:{WRITER_PASSWORD}@127.0.0.1:3306/{name}",
            snapshot,
            f"mysql://{reader}:{READER_PASSWORD}@127.0.0.1:3306/{name}",
        )
    finally:
        with root.cursor() as cursor:
            cursor.execute(f"DROP USER IF EXISTS '{name}'@'%'")
            cursor.execute(f"DROP USER IF EXISTS '{reader}'@'%'")
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        root.close()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Target]:
    with postgres_target() as target:
        yield target


@pytest.fixture(scope="module")
def mariadb() -> Iterator[Target]:
    with mariadb_target() as target:
        yield target


@pytest.fixture
def duck(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Target:
    """A DuckDB file under the allowed folder; the connector opens it read-only, locked down."""
    root = tmp_path / "duckdb-root"
    (root / str(DUCKDB_ORGANIZATION)).mkdir(parents=True)
    monkeypatch.setenv("LOUPE_DUCKDB_ROOT", str(root))
    get_settings.cache_clear()
    path = root / str(DUCKDB_ORGANIZATION) / "shop.duckdb"
    with duckdb.connect(str(path)) as conn:
        for statement in DUCKDB_SCHEMA:
            conn.execute(statement)

    def snapshot() -> dict[str, Any]:
        with duckdb.connect(str(path), read_only=True) as conn:
            return {
                "canary": conn.execute("SELECT * FROM canary ORDER BY id").fetchall(),
                "tables": conn.execute(
                    "SELECT table_name FROM information_schema.tables ORDER BY 1"
                ).fetchall(),
                "files": files_written(),
                "folder": sorted(str(item.relative_to(root)) for item in root.rglob("*")),
            }

    # The connector opens DuckDB files read-only, so the one URL is also the read-only login.
    return Target("duckdb", f"duckdb://{path}", snapshot, f"duckdb://{path}")


def open_session(target: Target, url: str | None = None) -> Session:
    return connect(parse(target.dialect, url or target.url, organization_id=DUCKDB_ORGANIZATION), LIMITS)


def run_directly(target: Target, sqls: list[str]) -> list[Outcome]:
    """Run each statement through the connector without the guard, on one session as a reused one
    would be; a statement that kills its own session gets a fresh one for the next."""
    outcomes: list[Outcome] = []
    session = open_session(target)
    try:
        for sql in sqls:
            started = time.monotonic()
            try:
                result = collect(session, sql, None, max_rows=100)
                rows, error = repr(result.rows), None
            except ConnectorError as failure:
                rows, error = "", str(failure)
            outcomes.append(Outcome(sql, time.monotonic() - started, rows, error))
            try:
                session.ping()
            except ConnectorError:
                session.close()
                session = open_session(target)
    finally:
        session.close()
    return outcomes


def refused_by_the_guard(target: Target, attacks: list[Attack]) -> list[str]:
    """Every attack the guard lets through runs for real, so the canary judges it; the accepted ones
    are returned."""
    accepted: list[str] = []
    for attack in attacks:
        try:
            statement = check(attack.sql, attack.dialect)
        except SqlNotAllowed:
            continue
        accepted.append(attack.sql)
        run_directly(target, [statement.sql])
    return accepted


def assert_contained(outcomes: list[Outcome], secret: str) -> None:
    for outcome in outcomes:
        assert secret not in outcome.rows, f"{outcome.sql!r} read the marker file"
        assert outcome.seconds < LIMITS.statement_timeout_seconds + SLACK_SECONDS, (
            f"{outcome.sql!r} ran {outcome.seconds:.1f}s, past the timeout"
        )


def run_legitimate(target: Target) -> None:
    session = open_session(target)
    try:
        for sql in LEGITIMATE[target.dialect]:
            collect(session, check(sql, target.dialect).sql, None, max_rows=100)
        for dialect, template, names in PARAMETERIZED:
            if dialect == target.dialect:
                statement = check(with_placeholders(dialect, template, names), dialect)
                values = {name: PARAMETER_VALUES[name] for name in statement.parameters}
                collect(session, statement.sql, values, max_rows=100)
    finally:
        session.close()


def catalogue_failures(target: Target) -> list[str]:
    """Each catalogued function's example that the guard refuses or the read-only login cannot run."""
    failures: list[str] = []
    session = open_session(target, target.reader_url)
    try:
        for name, example in engine(target.dialect).guard.functions.items():
            try:
                statement = check(f"SELECT {example}", target.dialect)
                collect(session, statement.sql, None, max_rows=100)
            except (SqlNotAllowed, ConnectorError) as failure:
                failures.append(f"{name}: {failure}")
    finally:
        session.close()
    return failures


def assert_an_explain_has_no_cost(target: Target) -> None:
    """An EXPLAIN plans without running: the cost guard has nothing to weigh, where a query has a cost."""
    session = open_session(target)
    try:
        assert session.estimate_cost(check("EXPLAIN SELECT * FROM orders", target.dialect).sql, None) is None
        assert session.estimate_cost("SELECT * FROM orders", None)
    finally:
        session.close()


def assert_escapes_are_contained(target: Target) -> None:
    """The attacks marked as escaping the connector, then a DDL statement, on one session as a reused
    one would run them; the canary must survive."""
    escapes = [attack.sql for attack in attacks_on(target.dialect) if attack.escapes_connector]
    assert escapes
    before = target.snapshot()
    run_directly(target, [*escapes, "DROP TABLE canary"])
    assert target.snapshot() == before


class TestPostgres:
    def test_the_server_could_read_the_marker_file(self, marker: str) -> None:
        """The control: a superuser reads the file, so the attacks below fail for the right reasons."""
        require_port(POSTGRES, "PostgreSQL")
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            row = admin.execute("SELECT pg_read_file(%s)", (MARKER_PATH,)).fetchone()
        assert row is not None
        assert marker in row[0]

    def test_the_guard_refuses_every_attack(self, postgres: Target, marker: str) -> None:
        before = postgres.snapshot()
        assert refused_by_the_guard(postgres, attacks_on("postgres")) == []
        assert postgres.snapshot() == before

    def test_the_read_only_transaction_alone_stops_the_writes(self, postgres: Target, marker: str) -> None:
        before = postgres.snapshot()
        outcomes = run_directly(
            postgres,
            [
                attack.sql
                for attack in attacks_on("postgres")
                if not attack.escapes_connector and not attack.calls_the_definer
            ],
        )
        assert postgres.snapshot() == before
        assert_contained(outcomes, marker)
        failed = {outcome.sql: outcome.error for outcome in outcomes}
        # The runner's server-side cursor accepts a query only; a query that writes through a function
        # meets the read-only transaction.
        assert "syntax error" in str(failed["DELETE FROM canary"])
        assert "read-only transaction" in str(failed["SELECT nextval('canary_id_seq')"])
        assert "read-only transaction" in str(failed["SELECT * FROM canary FOR UPDATE"])
        assert "permission denied" in str(failed[f"SELECT pg_read_file('{MARKER_PATH}')"])
        assert "statement timeout" in str(failed["SELECT pg_sleep(5)"])

    def test_what_escapes_the_read_only_transaction(self, marker: str) -> None:
        with postgres_target() as target:
            assert_escapes_are_contained(target)

    def test_the_definer_function_runs_a_program_through_the_read_only_transaction(self, marker: str) -> None:
        """The control for the DEFINER attacks: without the guard, one call creates a file on the server."""
        with postgres_target() as target:
            try:
                outcome = run_directly(target, [f"SELECT {DEFINER}()"])[0]
                assert outcome.error is None
                assert PWNED.exists()
            finally:
                PWNED.unlink(missing_ok=True)

    def test_ordinary_analytics_sql_runs_as_the_guard_returns_it(self, postgres: Target) -> None:
        run_legitimate(postgres)

    def test_every_catalogued_function_runs_as_a_read_only_login(self, postgres: Target) -> None:
        assert catalogue_failures(postgres) == []

    def test_an_explain_has_no_cost_to_estimate(self, postgres: Target) -> None:
        assert_an_explain_has_no_cost(postgres)


class TestMariaDb:
    def test_the_guard_refuses_every_attack(self, mariadb: Target, marker: str) -> None:
        before = mariadb.snapshot()
        assert refused_by_the_guard(mariadb, attacks_on("mysql")) == []
        assert mariadb.snapshot() == before

    def test_the_read_only_transaction_alone_stops_the_writes(self, mariadb: Target, marker: str) -> None:
        before = mariadb.snapshot()
        outcomes = run_directly(
            mariadb, [attack.sql for attack in attacks_on("mysql") if not attack.escapes_connector]
        )
        assert mariadb.snapshot() == before
        assert_contained(outcomes, marker)
        failed = {outcome.sql: outcome.error for outcome in outcomes}
        assert "READ ONLY transaction" in str(failed["DELETE FROM canary"])

    def test_what_escapes_the_read_only_transaction(self, marker: str) -> None:
        with mariadb_target() as target:
            assert_escapes_are_contained(target)

    def test_ordinary_analytics_sql_runs_as_the_guard_returns_it(self, mariadb: Target) -> None:
        run_legitimate(mariadb)

    def test_the_definer_function_writes_outside_a_read_only_transaction(self) -> None:
        """The control for the DEFINER attacks: called outside the connector's read-only transaction,
        it changes the canary."""
        with mariadb_target() as target:
            before = target.snapshot()
            writer = pymysql.connect(**mysql_login(target.url), autocommit=True)
            try:
                with writer.cursor() as cursor:
                    cursor.execute(f"SELECT {DEFINER}()")
            finally:
                writer.close()
            assert target.snapshot()["canary"] != before["canary"]

    def test_every_catalogued_function_runs_as_a_read_only_login(self, mariadb: Target) -> None:
        assert catalogue_failures(mariadb) == []

    def test_an_explain_has_no_cost_to_estimate(self, mariadb: Target) -> None:
        assert_an_explain_has_no_cost(mariadb)


class TestDuckDb:
    def test_the_guard_refuses_every_attack_and_the_locked_connection_stops_them_too(
        self, duck: Target, marker: str
    ) -> None:
        before = duck.snapshot()
        assert refused_by_the_guard(duck, attacks_on("duckdb")) == []
        outcomes = run_directly(duck, [attack.sql for attack in attacks_on("duckdb")])
        assert duck.snapshot() == before
        assert_contained(outcomes, marker)
        assert all(outcome.error for outcome in outcomes if "read_csv" in outcome.sql)

    def test_ordinary_analytics_sql_runs_as_the_guard_returns_it(self, duck: Target) -> None:
        run_legitimate(duck)

    def test_every_catalogued_function_runs_as_a_read_only_login(self, duck: Target) -> None:
        assert catalogue_failures(duck) == []
