"""Each connector against a real database: the PostgreSQL and MariaDB on this machine, DuckDB in a
temporary folder. Read-only sessions, bound parameters, timeouts, cancellation, schema listing."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import duckdb
import psycopg
import pymysql
import pytest
from psycopg import sql

from loupe.config import get_settings
from loupe.connectors import (
    MAX_NOTICE_CHARS,
    MAX_NOTICES,
    ConnectorError,
    DatasourceType,
    Limits,
    QueryCancelled,
    QueryFailed,
    QueryTimedOut,
    Session,
    engine,
)
from loupe.security.connection_policy import ConnectionPolicyError, connect, parse
from loupe.services.query_parameters import typed_values
from loupe.services.runs import compiled
from tests.streams import collect

LOCAL_POSTGRES = ("127.0.0.1", 5432)
LOCAL_MARIADB = ("127.0.0.1", 3306)
READER_PASSWORD = "reader-Pw-" + secrets.token_hex(6)
# The organization whose folder under LOUPE_DUCKDB_ROOT the DuckDB files of these tests live in.
DUCKDB_ORGANIZATION = UUID("5d0c4b1e-7d1a-4c3e-9a7b-2f6e8d9c0b1a")
FAST = Limits(connect_timeout_seconds=5, statement_timeout_seconds=1)
HEAVY_MARIADB_SQL = (
    "SELECT COUNT(*) FROM information_schema.columns a, information_schema.columns b,"
    " information_schema.columns c"
)


def require_port(address: tuple[str, int], what: str) -> None:
    try:
        with socket.create_connection(address, timeout=1):
            return
    except OSError:
        pytest.skip(f"{what} is not running on {address[0]}:{address[1]} (CI starts it)")


@pytest.fixture
def private_hosts_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local databases are on loopback, which only development and tests allow."""
    monkeypatch.setenv("LOUPE_ALLOW_PRIVATE_DATASOURCE_HOSTS", "true")
    get_settings.cache_clear()


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A throwaway database on the local PostgreSQL with one table; yields its name, dropped after."""
    require_port(LOCAL_POSTGRES, "PostgreSQL")
    name = f"loupe_ds_{secrets.token_hex(4)}"
    server = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}", autocommit=True) as conn:
            conn.execute("CREATE TABLE widgets (id integer PRIMARY KEY, label text NOT NULL)")
            conn.execute("INSERT INTO widgets SELECT n, 'widget ' || n FROM generate_series(1, 5) AS n")
        yield name
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def throwaway_mariadb() -> Iterator[str]:
    """A throwaway database on the local MariaDB with one table and a reader user whose password is
    READER_PASSWORD (the user's name is the database's); dropped after."""
    require_port(LOCAL_MARIADB, "MariaDB")
    name = f"loupe_ds_{secrets.token_hex(4)}"
    root = pymysql.connect(host=LOCAL_MARIADB[0], port=LOCAL_MARIADB[1], user="root", autocommit=True)
    try:
        with root.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}`")
            cursor.execute(f"CREATE TABLE `{name}`.widgets (id INT PRIMARY KEY, label VARCHAR(50) NOT NULL)")
            cursor.execute(
                f"INSERT INTO `{name}`.widgets VALUES (1, 'widget 1'), (2, 'widget 2'), (3, 'widget 3')"
            )
            cursor.execute(f"CREATE USER '{name}'@'%%' IDENTIFIED BY %s", (READER_PASSWORD,))
            cursor.execute(f"GRANT SELECT, INSERT ON `{name}`.* TO '{name}'@'%'")
        yield name
    finally:
        with root.cursor() as cursor:
            cursor.execute(f"DROP USER IF EXISTS '{name}'@'%'")
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        root.close()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    with throwaway_postgres() as name:
        yield name


@pytest.fixture
def mariadb_database() -> Iterator[str]:
    with throwaway_mariadb() as name:
        yield name


@pytest.fixture
def duckdb_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DuckDB file in DUCKDB_ORGANIZATION's folder under the allowed root."""
    root = tmp_path / "duckdb-root"
    (root / str(DUCKDB_ORGANIZATION)).mkdir(parents=True)
    monkeypatch.setenv("LOUPE_DUCKDB_ROOT", str(root))
    get_settings.cache_clear()
    path = root / str(DUCKDB_ORGANIZATION) / "shop.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA sales")
        conn.execute("CREATE TABLE sales.widgets (id INTEGER, label VARCHAR)")
        conn.execute("INSERT INTO sales.widgets SELECT range, 'widget ' || range FROM range(1, 6)")
    return path


def open_session(kind: DatasourceType, url: str, limits: Limits = FAST) -> Session:
    return connect(parse(kind, url, organization_id=DUCKDB_ORGANIZATION), limits)


def cancel_soon(session: Session, delay: float = 0.5) -> threading.Thread:
    """Cancel from another thread while this one waits on the statement, as a run's cancel does."""

    def cancel() -> None:
        time.sleep(delay)
        session.cancel()

    thread = threading.Thread(target=cancel)
    thread.start()
    return thread


PERCENT_SQL = "SELECT count(*) FROM widgets WHERE label LIKE 'widget%' AND id % 2 = {odd} AND '%(odd)' <> ''"


def percent_signs_are_text(kind: DatasourceType, session: Session) -> None:
    """A literal `%` (a LIKE pattern, the modulo operator, text that looks like a placeholder) beside a
    bound value reaches the database as written."""
    sql = PERCENT_SQL.format(odd=engine(kind).placeholder("odd"))
    assert collect(session, sql, {"odd": 1}, max_rows=1).rows[0][0] >= 2
    without_values = "SELECT count(*) FROM widgets WHERE label LIKE 'widget%' AND id % 2 = 1"
    assert collect(session, without_values, None, max_rows=1).rows[0][0] >= 2


TWICE_SQL = (
    "SELECT {{ day }} AS day, {{ floor }} AS floor, {{ label }} AS label FROM widgets"
    " WHERE {{ day }} >= DATE '2026-01-01' AND id >= {{ floor }} AND label <> {{ label }} ORDER BY id"
)
TWICE_TYPES = {"day": "date", "floor": "number", "label": "text"}


def values_used_twice_bind_with_their_declared_types(kind: DatasourceType, session: Session) -> None:
    """A date used in the select list and in a predicate is bound as a date, so the database does not
    type it twice (PostgreSQL's "inconsistent types deduced for parameter"); numbers and text too."""
    values = typed_values({"day": "2026-03-01", "floor": 2, "label": "widget 9"}, TWICE_TYPES)
    statement, values = compiled(TWICE_SQL, kind, values)
    rows = collect(session, statement, values, max_rows=10).rows
    assert len(rows) >= 2
    assert {(str(day), float(floor), label) for day, floor, label in rows} == {
        (("2026-03-01", 2.0, "widget 9"))
    }


LISTS_SQL = "SELECT id FROM widgets WHERE id IN {{ ids }} AND label IN {{ labels }} ORDER BY id"
LISTS_TYPES = {"ids": "number", "labels": "text"}


def lists_bind_one_placeholder_per_value(
    kind: DatasourceType, session: Session, table: str = "widgets"
) -> None:
    """A multi-value parameter's list is bound value by value (`IN (...)`); an empty list matches no row."""
    sql = LISTS_SQL.replace("widgets", table)
    values = typed_values({"ids": [1, 2, 3], "labels": ["widget 2", "widget 3", "x' OR '1'='1"]}, LISTS_TYPES)
    statement, bound = compiled(sql, kind, values)
    assert [row[0] for row in collect(session, statement, bound, max_rows=10).rows] == [2, 3]
    statement, bound = compiled(sql, kind, {"ids": [], "labels": ["widget 2"]})
    assert collect(session, statement, bound, max_rows=10).rows == []


@pytest.mark.usefixtures("private_hosts_allowed")
class TestPostgres:
    def url(self, database: str) -> str:
        return f"postgresql://postgres:ignored-by-trust@127.0.0.1:5432/{database}"

    def test_ping_and_schema(self, postgres_database: str) -> None:
        session = open_session("postgres", self.url(postgres_database))
        try:
            session.ping()
            tables = session.list_schema()
        finally:
            session.close()
        widgets = next(table for table in tables if table.name == "widgets")
        assert widgets.schema == "public"
        assert [(column.name, column.type) for column in widgets.columns] == [
            ("id", "integer"),
            ("label", "text"),
        ]

    def test_bound_parameters_are_values_and_rows_are_capped(self, postgres_database: str) -> None:
        session = open_session("postgres", self.url(postgres_database))
        try:
            placeholder = engine("postgres").placeholder("floor")
            result = collect(
                session,
                f"SELECT id, label FROM widgets WHERE id > {placeholder} ORDER BY id",
                {"floor": 1},
                max_rows=2,
            )
            injected = collect(
                session,
                "SELECT count(*) AS n FROM widgets WHERE label = %(label)s",
                {"label": "x' OR '1'='1"},
                max_rows=10,
            )
            percent_signs_are_text("postgres", session)
            values_used_twice_bind_with_their_declared_types("postgres", session)
            lists_bind_one_placeholder_per_value("postgres", session)
        finally:
            session.close()
        assert [column.name for column in result.columns] == ["id", "label"]
        assert result.columns[0].type == "int4"
        assert result.rows == [(2, "widget 2"), (3, "widget 3")]
        assert result.truncated is True
        assert injected.rows == [(0,)]

    def test_writes_are_refused(self, postgres_database: str) -> None:
        with psycopg.connect(self.url(postgres_database), autocommit=True) as conn:
            # A function that writes, so a plain SELECT can try to write through it.
            conn.execute(
                "CREATE FUNCTION add_widget() RETURNS integer LANGUAGE sql"
                " AS $$ INSERT INTO widgets VALUES (99, 'x') RETURNING id $$"
            )
        session = open_session("postgres", self.url(postgres_database))
        try:
            # A server-side cursor takes a query only, so a bare write does not even parse as one.
            with pytest.raises(QueryFailed, match="syntax error"):
                collect(session, "INSERT INTO widgets VALUES (99, 'x')", None, max_rows=1)
            # A query that writes through a function meets the read-only transaction.
            with pytest.raises(QueryFailed, match="read-only transaction"):
                collect(session, "SELECT add_widget()", None, max_rows=1)
            # The session is still usable after a failed statement.
            assert collect(session, "SELECT count(*) FROM widgets", None, max_rows=1).rows == [(5,)]
        finally:
            session.close()

    def test_statement_timeout(self, postgres_database: str) -> None:
        session = open_session("postgres", self.url(postgres_database))
        started = time.monotonic()
        try:
            with pytest.raises(QueryTimedOut):
                collect(session, "SELECT pg_sleep(10)", None, max_rows=1)
        finally:
            session.close()
        assert time.monotonic() - started < 5

    def test_cancel_stops_the_statement_in_the_server(self, postgres_database: str) -> None:
        session = open_session("postgres", self.url(postgres_database), Limits(statement_timeout_seconds=30))
        thread = cancel_soon(session)
        started = time.monotonic()
        try:
            with pytest.raises(QueryCancelled):
                collect(session, "SELECT pg_sleep(20)", None, max_rows=1)
        finally:
            thread.join()
            session.close()
        assert time.monotonic() - started < 10

    def test_wrong_database_is_a_connect_failure_without_the_password(self) -> None:
        require_port(LOCAL_POSTGRES, "PostgreSQL")
        with pytest.raises(ConnectorError) as raised:
            open_session("postgres", "postgresql://postgres:Sup3rSecret@127.0.0.1:5432/loupe_no_such_db")
        assert "loupe_no_such_db" in str(raised.value)
        assert "Sup3rSecret" not in str(raised.value)


def test_postgres_notices_are_kept_bounded_in_count_and_length(
    private_hosts_allowed: None, postgres_database: str
) -> None:
    url = f"postgresql://postgres@127.0.0.1:5432/{postgres_database}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION loud() RETURNS integer LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE WARNING 'careful'; FOR i IN 1..30 LOOP RAISE NOTICE '%', repeat('n', 600); END LOOP;"
            " RETURN 1; END $$"
        )
    session = open_session("postgres", url)
    try:
        assert session.notices() == []
        assert collect(session, "SELECT loud()", None, max_rows=1).rows == [(1,)]
        notices = session.notices()
    finally:
        session.close()
    assert len(notices) == MAX_NOTICES
    assert notices[0] == "WARNING: careful"
    assert notices[1] == ("NOTICE: " + "n" * 600)[:MAX_NOTICE_CHARS]


@pytest.mark.usefixtures("private_hosts_allowed")
class TestMariaDb:
    def url(self, database: str, password: str = READER_PASSWORD) -> str:
        return f"mysql://{database}:{password}@127.0.0.1:3306/{database}"

    def test_ping_and_schema(self, mariadb_database: str) -> None:
        session = open_session("mysql", self.url(mariadb_database))
        try:
            session.ping()
            tables = session.list_schema()
        finally:
            session.close()
        assert [(table.schema, table.name) for table in tables] == [(mariadb_database, "widgets")]
        assert [(column.name, column.type) for column in tables[0].columns] == [
            ("id", "int(11)"),
            ("label", "varchar(50)"),
        ]

    def test_bound_parameters_are_values_and_rows_are_capped(self, mariadb_database: str) -> None:
        session = open_session("mysql", self.url(mariadb_database))
        try:
            placeholder = engine("mysql").placeholder("floor")
            result = collect(
                session,
                f"SELECT id, label FROM widgets WHERE id >= {placeholder} ORDER BY id",
                {"floor": 1},
                max_rows=2,
            )
            injected = collect(
                session,
                "SELECT COUNT(*) FROM widgets WHERE label = %(label)s",
                {"label": "x' OR '1'='1"},
                max_rows=1,
            )
            percent_signs_are_text("mysql", session)
            values_used_twice_bind_with_their_declared_types("mysql", session)
            lists_bind_one_placeholder_per_value("mysql", session)
        finally:
            session.close()
        assert [(column.name, column.type) for column in result.columns] == [
            ("id", "LONG"),
            ("label", "VAR_STRING"),
        ]
        assert result.rows == [(1, "widget 1"), (2, "widget 2")]
        assert result.truncated is True
        assert injected.rows == [(0,)]

    def test_writes_are_refused_even_with_the_grant(self, mariadb_database: str) -> None:
        session = open_session("mysql", self.url(mariadb_database))
        try:
            with pytest.raises(QueryFailed, match="READ ONLY"):
                collect(session, "INSERT INTO widgets VALUES (99, 'x')", None, max_rows=1)
            assert collect(session, "SELECT COUNT(*) FROM widgets", None, max_rows=1).rows == [(3,)]
        finally:
            session.close()

    def test_statement_timeout(self, mariadb_database: str) -> None:
        session = open_session("mysql", self.url(mariadb_database))
        started = time.monotonic()
        try:
            with pytest.raises(QueryTimedOut):
                collect(session, HEAVY_MARIADB_SQL, None, max_rows=1)
        finally:
            session.close()
        assert time.monotonic() - started < 8

    def test_cancel_kills_the_query_in_the_server(self, mariadb_database: str) -> None:
        session = open_session("mysql", self.url(mariadb_database), Limits(statement_timeout_seconds=60))
        thread = cancel_soon(session)
        started = time.monotonic()
        try:
            with pytest.raises(QueryCancelled):
                collect(session, HEAVY_MARIADB_SQL, None, max_rows=1)
        finally:
            thread.join()
            session.close()
        assert time.monotonic() - started < 20

    def test_wrong_password_is_refused_without_echoing_it(self, mariadb_database: str) -> None:
        with pytest.raises(ConnectorError) as raised:
            open_session("mysql", self.url(mariadb_database, password="Wr0ngPassw0rd"))
        assert "Access denied" in str(raised.value)
        assert "Wr0ngPassw0rd" not in str(raised.value)


class TestDuckDb:
    def test_lists_bind_one_placeholder_per_value(self, duckdb_file: Path) -> None:
        session = open_session("duckdb", f"duckdb://{duckdb_file}")
        try:
            lists_bind_one_placeholder_per_value("duckdb", session, "sales.widgets")
        finally:
            session.close()

    def test_schema_parameters_and_timeout(self, duckdb_file: Path) -> None:
        session = open_session("duckdb", f"duckdb://{duckdb_file}")
        try:
            tables = session.list_schema()
            placeholder = engine("duckdb").placeholder("floor")
            result = collect(
                session,
                f"SELECT id, label FROM sales.widgets WHERE id > {placeholder} ORDER BY id",
                {"floor": 3},
                max_rows=5,
            )
            with pytest.raises(QueryTimedOut):
                collect(session, "SELECT count(*) FROM range(10000000000) a, range(1000) b", None, max_rows=1)
        finally:
            session.close()
        assert [(table.schema, table.name) for table in tables] == [("sales", "widgets")]
        assert [(column.name, column.type) for column in tables[0].columns] == [
            ("id", "INTEGER"),
            ("label", "VARCHAR"),
        ]
        assert result.rows == [(4, "widget 4"), (5, "widget 5")]
        assert result.truncated is False

    @pytest.mark.parametrize(
        "statement",
        [
            "SELECT * FROM read_csv('/etc/passwd')",
            "COPY sales.widgets TO '{outside}/leak.csv'",
            "ATTACH '{outside}/other.duckdb' AS other",
            "INSTALL httpfs",
            "LOAD httpfs",
            "SET enable_external_access = true",
            "INSERT INTO sales.widgets VALUES (9, 'x')",
        ],
    )
    def test_files_extensions_settings_and_writes_are_refused(
        self, duckdb_file: Path, statement: str
    ) -> None:
        outside = duckdb_file.parent.parent
        session = open_session("duckdb", f"duckdb://{duckdb_file}")
        try:
            with pytest.raises(QueryFailed):
                collect(session, statement.format(outside=outside), None, max_rows=1)
        finally:
            session.close()
        assert list(outside.iterdir()) == [duckdb_file.parent]

    def test_cancel_interrupts(self, duckdb_file: Path) -> None:
        session = open_session("duckdb", f"duckdb://{duckdb_file}", Limits(statement_timeout_seconds=60))
        thread = cancel_soon(session)
        try:
            with pytest.raises(QueryCancelled):
                collect(session, "SELECT count(*) FROM range(10000000000) a, range(1000) b", None, max_rows=1)
        finally:
            thread.join()
            session.close()

    def test_missing_file_is_a_connect_failure(self, duckdb_file: Path) -> None:
        with pytest.raises(ConnectorError, match="does not exist"):
            open_session("duckdb", f"duckdb://{duckdb_file.parent / 'absent.duckdb'}")


def test_loopback_is_refused_at_connect_time_unless_allowed(
    monkeypatch: pytest.MonkeyPatch, postgres_database: str
) -> None:
    # As if saved while allowed, and connected to after the setting changed.
    spec = parse("postgres", f"postgresql://postgres@localhost:5432/{postgres_database}")
    monkeypatch.setenv("LOUPE_ALLOW_PRIVATE_DATASOURCE_HOSTS", "false")
    get_settings.cache_clear()
    with pytest.raises(ConnectionPolicyError, match="loopback or private"):
        connect(spec, FAST)


def test_every_type_is_registered_with_its_placeholder_style() -> None:
    kinds: tuple[DatasourceType, ...] = ("postgres", "mysql", "duckdb")
    assert {kind: engine(kind).placeholder("x") for kind in kinds} == {
        "postgres": "%(x)s",
        "mysql": "%(x)s",
        "duckdb": "$x",
    }
