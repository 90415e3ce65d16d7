"""DuckDB datasources: a database file under the allowed folder, opened read-only with file access
and extension loading switched off and the configuration locked; statements interrupted on timeout;
and the SQL guard's DuckDB rules.

The driver is imported on first connect, not with this module: the Lambda layer ships no duckdb
(docs/adr/0009), and the connection policy and the SQL guard read this module's spec without it."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from loupe.connectors import (
    DOLLAR,
    SCHEMA_COLUMN_LIMIT,
    Column,
    ConnectFailed,
    ConnectionSpec,
    EngineSpec,
    GuardPolicy,
    Limits,
    LoginFinding,
    QueryCancelled,
    QueryFailed,
    QueryTimedOut,
    RowStream,
    Table,
    duckdb_catalogue,
    fetched_batches,
    finding,
    scrubbed,
    tables_from_rows,
)

if TYPE_CHECKING:
    import duckdb

# Without these, SQL could read or write any file this service can (read_csv, COPY, ATTACH) or load code.
LOCKED_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "lock_configuration": True,
}
SCHEMA_SQL = """
SELECT table_schema, table_name, column_name, data_type
FROM information_schema.columns
WHERE table_catalog = current_database()
ORDER BY table_schema, table_name, ordinal_position
LIMIT $limit
"""

# The database's own macros (DuckDB's built-ins are `internal`).
MACROS_SQL = """
SELECT DISTINCT format('macro {}.{}', schema_name, function_name)
FROM duckdb_functions()
WHERE NOT internal AND database_name = current_database()
ORDER BY 1
LIMIT $limit
"""
INSPECTED_OBJECTS = 200


class DuckDbSession:
    def __init__(self, conn: duckdb.DuckDBPyConnection, spec: ConnectionSpec, limits: Limits) -> None:
        self._conn = conn
        self._spec = spec
        self._limits = limits
        self._timed_out = False

    @contextmanager
    def stream(self, sql: str, parameters: Mapping[str, Any] | None) -> Iterator[RowStream]:
        self._timed_out = False
        # DuckDB has no statement timeout of its own: a timer interrupts the statement instead.
        timer = threading.Timer(self._limits.statement_timeout_seconds, self._time_out)
        timer.start()
        try:
            with self._translated_errors():
                cursor = self._conn.execute(sql, dict(parameters) if parameters else None)
            description = cursor.description or []
            columns = tuple(Column(str(item[0]), str(item[1])) for item in description)
            yield RowStream(
                columns,
                fetched_batches(cursor.fetchmany, self._translated_errors) if description else iter(()),
            )
        finally:
            timer.cancel()

    def estimate_cost(self, sql: str, parameters: Mapping[str, Any] | None) -> float | None:
        """DuckDB's plans carry row estimates per operator but no cost to compare runs by."""
        return None

    @contextmanager
    def _translated_errors(self) -> Iterator[None]:
        import duckdb

        try:
            yield
        except duckdb.InterruptException:
            if self._timed_out:
                raise QueryTimedOut(
                    f"the statement ran longer than {self._limits.statement_timeout_seconds} seconds"
                ) from None
            raise QueryCancelled("the statement was cancelled") from None
        except duckdb.Error as error:
            raise QueryFailed(scrubbed(error, self._spec)) from None

    def list_schema(self) -> list[Table]:
        import duckdb

        try:
            rows = self._conn.execute(SCHEMA_SQL, {"limit": SCHEMA_COLUMN_LIMIT}).fetchall()
        except duckdb.Error as error:
            raise QueryFailed(scrubbed(error, self._spec)) from None
        return tables_from_rows(rows)

    def inspect_login(self) -> list[LoginFinding]:
        """There is no login: the file is opened read-only with LOCKED_CONFIG (no writes, files,
        network or extensions). What remains is the file's own macros, which the SQL guard cannot see
        into."""
        import duckdb

        try:
            rows = self._conn.execute(MACROS_SQL, {"limit": INSPECTED_OBJECTS}).fetchall()
        except duckdb.Error as error:
            raise QueryFailed(scrubbed(error, self._spec)) from None
        return [finding("executables_outside_catalog", [str(row[0]) for row in rows])] if rows else []

    def ping(self) -> None:
        import duckdb

        try:
            self._conn.execute("SELECT 1").fetchone()
        except duckdb.Error as error:
            raise ConnectFailed(scrubbed(error, self._spec)) from None

    def cancel(self) -> None:
        self._conn.interrupt()

    def notices(self) -> list[str]:
        # DuckDB has no channel for notices beside a statement's rows.
        return []

    def close(self) -> None:
        self._conn.close()

    def _time_out(self) -> None:
        self._timed_out = True
        self._conn.interrupt()


def connect(spec: ConnectionSpec, address: str | None, limits: Limits) -> DuckDbSession:
    import duckdb

    if spec.path is None or not spec.path.is_file():
        raise ConnectFailed("the duckdb database file does not exist")
    try:
        conn = duckdb.connect(str(spec.path), read_only=True, config=LOCKED_CONFIG)
    except duckdb.Error as error:
        raise ConnectFailed(scrubbed(error, spec)) from None
    return DuckDbSession(conn, spec, limits)


# Views whose definition names the table (DuckDB has no inheritance).
DEPENDENTS_SQL = (
    "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal AND $schema IS NOT NULL"
    " AND strpos(lower(sql), lower($name)) > 0"
)

ENGINE = EngineSpec(
    name="duckdb",
    dialect="duckdb",
    schemes=("duckdb",),
    default_port=None,
    placeholder=DOLLAR,
    guard=GuardPolicy(
        functions=duckdb_catalogue.FUNCTIONS,
        catalog_relations=duckdb_catalogue.CATALOG_RELATIONS,
        # `system` is the catalog holding DuckDB's own views, whatever the database's name.
        system_schemas=frozenset({"system", "pg_catalog", "information_schema"}),
        system_relation_prefixes=("duckdb_", "pg_", "sqlite_", "pragma_"),
        unicode_escape_prefix=True,
        path_tables=True,
    ),
    connect=connect,
    dependents_sql=DEPENDENTS_SQL,
)
