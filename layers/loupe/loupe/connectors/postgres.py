"""PostgreSQL datasources through psycopg: read-only transactions, a server-side statement timeout,
cancellation through the server's cancel protocol, and the SQL guard's PostgreSQL rules."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg.errors
from psycopg.types.string import TextLoader

from loupe.connectors import (
    PYFORMAT,
    SCHEMA_COLUMN_LIMIT,
    Column,
    ConnectFailed,
    ConnectionSpec,
    EngineSpec,
    GuardPolicy,
    Limits,
    LoginFinding,
    LoginFindingCode,
    QueryCancelled,
    QueryFailed,
    QueryTimedOut,
    RowStream,
    Table,
    fetched_batches,
    finding,
    is_explain,
    kept_notice,
    postgres_catalogue,
    pyformat,
    scrubbed,
    tables_from_rows,
)

# EXPLAIN's options that only plan (ANALYZE executes the statement), and their values.
EXPLAIN_OPTIONS = frozenset(
    {"verbose", "costs", "settings", "buffers", "wal", "timing", "summary", "generic_plan", "format"}
    | {"true", "false", "on", "off", "text", "json", "xml", "yaml"}
)
SCHEMA_SQL = """
SELECT table_schema, table_name, column_name, data_type
FROM information_schema.columns
WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_schema NOT LIKE 'pg\\_toast%%'
ORDER BY table_schema, table_name, ordinal_position
LIMIT %s
"""

# The login inspection's queries. Each lists at most INSPECTED_OBJECTS rows; a finding shows fewer.
INSPECTED_OBJECTS = 200
ROLE_ATTRIBUTES_SQL = """
SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls
FROM pg_roles WHERE rolname = current_user
"""
# Predefined roles that read or write the server's files, run programs on it, or write every table;
# membership counts whether it is direct or inherited.
PRIVILEGED_ROLES_SQL = """
SELECT rolname FROM pg_roles
WHERE rolname IN ('pg_read_server_files', 'pg_write_server_files', 'pg_execute_server_program',
                  'pg_write_all_data')
  AND pg_has_role(current_user, oid, 'MEMBER')
"""
# Every query below leaves out PostgreSQL's own schemas (pg_catalog, information_schema, TOAST, temporary).
WRITABLE_TABLES_SQL = """
SELECT format('%%s on %%I.%%I', string_agg(p.privilege, ', ' ORDER BY p.position), n.nspname, c.relname)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) WITH ORDINALITY AS p(privilege, position)
WHERE c.relkind IN ('r', 'p', 'v', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
  AND has_schema_privilege(n.oid, 'USAGE')
  AND CASE WHEN p.privilege IN ('INSERT', 'UPDATE') THEN has_any_column_privilege(c.oid, p.privilege)
           ELSE has_table_privilege(c.oid, p.privilege) END
GROUP BY n.nspname, c.relname
ORDER BY n.nspname, c.relname
LIMIT %s
"""
CREATABLE_SCHEMAS_SQL = """
SELECT format('CREATE on schema %%I', n.nspname) FROM pg_namespace n
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
  AND has_schema_privilege(n.oid, 'CREATE')
ORDER BY n.nspname
LIMIT %s
"""
OWNED_OBJECTS_SQL = """
SELECT * FROM (
    SELECT format('table %%I.%%I', n.nspname, c.relname) AS owned
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND pg_has_role(c.relowner, 'USAGE')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
    UNION ALL
    SELECT format('function %%I.%%I(%%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE pg_has_role(p.proowner, 'USAGE')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
) AS owned
ORDER BY owned
LIMIT %s
"""
# Functions, operators and casts the login can execute that are not PostgreSQL's own: overload
# resolution can pick one in a schema on the search path over the built-in a query meant
# (`public.upper(varchar)` over `pg_catalog.upper(text)` for a varchar argument).
EXECUTABLES_SQL = """
WITH path AS (
    SELECT n.oid FROM pg_namespace n
    WHERE n.nspname = ANY (current_schemas(false))
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
)
SELECT * FROM (
    SELECT format('function %%I.%%I(%%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
        AS executable
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE p.pronamespace IN (SELECT oid FROM path) AND p.prokind <> 'p'
      AND has_function_privilege(p.oid, 'EXECUTE')
    UNION ALL
    SELECT format('operator %%I.%%s(%%s, %%s)', n.nspname, o.oprname,
                  coalesce(format_type(o.oprleft, NULL), 'NONE'),
                  coalesce(format_type(o.oprright, NULL), 'NONE'))
    FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
    WHERE o.oprnamespace IN (SELECT oid FROM path) AND has_function_privilege(o.oprcode, 'EXECUTE')
    UNION ALL
    SELECT format('cast (%%s AS %%s) by function %%I.%%I', format_type(c.castsource, NULL),
                  format_type(c.casttarget, NULL), n.nspname, p.proname)
    FROM pg_cast c JOIN pg_proc p ON p.oid = c.castfunc JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname <> 'pg_catalog' AND has_function_privilege(p.oid, 'EXECUTE')
) AS executables
ORDER BY executable
LIMIT %s
"""
ROLE_FINDINGS: dict[str, LoginFindingCode] = {
    "pg_read_server_files": "server_file_read",
    "pg_write_server_files": "server_file_write",
    "pg_execute_server_program": "server_program_execution",
}


# Types whose text form is already the one a result stores (ISO dates and times, ISO 8601 intervals with
# the session settings below, exact decimals): read as text, they skip a parse into Python objects and a
# conversion back, which is most of the cost of a large result.
TEXT_TYPES = (
    "numeric",
    "date",
    "time",
    "timetz",
    "timestamp",
    "timestamptz",
    "interval",
    "uuid",
    "inet",
    "cidr",
    "macaddr",
    "money",
)


class PostgresSession:
    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]], spec: ConnectionSpec) -> None:
        self._conn = conn
        self._spec = spec
        self._cancelled = False
        self._notices: list[str] = []
        conn.add_notice_handler(
            lambda diagnostic: kept_notice(
                self._notices, f"{diagnostic.severity_nonlocalized}: {diagnostic.message_primary}"
            )
        )

    @contextmanager
    def stream(self, sql: str, parameters: Mapping[str, Any] | None) -> Iterator[RowStream]:
        self._cancelled = False
        try:
            # A named cursor is a server-side cursor: rows stay in PostgreSQL until a batch is fetched.
            # Its DECLARE goes through the extended protocol, which runs exactly one statement. DECLARE
            # takes a query only: an EXPLAIN's few rows come through an ordinary cursor, prepared so that
            # it too goes through the extended protocol.
            opened = self._conn.cursor() if is_explain(sql) else self._conn.cursor(name="loupe_run")
            with opened as cursor:
                with self._translated_errors():
                    if isinstance(cursor, psycopg.ServerCursor):
                        cursor.execute(*pyformat(sql, parameters))
                    else:
                        cursor.execute(*pyformat(sql, parameters), prepare=True)
                columns = tuple(
                    Column(item.name, self._type_name(item.type_code)) for item in cursor.description or ()
                )
                yield RowStream(columns, fetched_batches(cursor.fetchmany, self._translated_errors))
        finally:
            self._end_transaction()

    def estimate_cost(self, sql: str, parameters: Mapping[str, Any] | None) -> float | None:
        if is_explain(sql):
            # An EXPLAIN plans its query without running it: there is nothing to weigh.
            return None
        try:
            with self._translated_errors():
                row = self._conn.execute(
                    *pyformat(f"EXPLAIN (FORMAT JSON) {sql}", parameters), prepare=True
                ).fetchone()
        finally:
            self._end_transaction()
        if row is None:
            return None
        plans = row[0] if isinstance(row[0], list) else json.loads(row[0])
        return float(plans[0]["Plan"]["Total Cost"])

    @contextmanager
    def _translated_errors(self) -> Iterator[None]:
        try:
            yield
        except psycopg.errors.QueryCanceled as error:
            if self._cancelled:
                raise QueryCancelled("the statement was cancelled") from None
            raise QueryTimedOut(scrubbed(error, self._spec)) from None
        except psycopg.Error as error:
            raise QueryFailed(scrubbed(error, self._spec)) from None

    def list_schema(self) -> list[Table]:
        try:
            rows = self._conn.execute(SCHEMA_SQL, (SCHEMA_COLUMN_LIMIT,)).fetchall()
        except psycopg.Error as error:
            raise QueryFailed(scrubbed(error, self._spec)) from None
        finally:
            self._end_transaction()
        return tables_from_rows(rows)

    def inspect_login(self) -> list[LoginFinding]:
        try:
            attributes = self._conn.execute(ROLE_ATTRIBUTES_SQL).fetchone()
            roles = [row[0] for row in self._conn.execute(PRIVILEGED_ROLES_SQL).fetchall()]
            listed = {
                query: [str(row[0]) for row in self._conn.execute(query, (INSPECTED_OBJECTS,)).fetchall()]
                for query in (WRITABLE_TABLES_SQL, CREATABLE_SCHEMAS_SQL, OWNED_OBJECTS_SQL, EXECUTABLES_SQL)
            }
        except psycopg.Error as error:
            raise QueryFailed(scrubbed(error, self._spec)) from None
        finally:
            self._end_transaction()
        found: list[LoginFinding] = []
        superuser, create_role, create_database, replication, bypass_rls = attributes or (False,) * 5
        if superuser:
            # A superuser holds every predefined role too; accepting the one finding covers them.
            found.append(finding("superuser", [self._spec.user]))
            roles = []
        found.extend(finding(code, [role]) for role, code in ROLE_FINDINGS.items() if role in roles)
        if listed[EXECUTABLES_SQL]:
            found.append(finding("executables_outside_catalog", listed[EXECUTABLES_SQL]))
        flags: tuple[tuple[bool, LoginFindingCode], ...] = (
            (create_role, "create_role"),
            (create_database, "create_database"),
            (replication, "replication"),
            (bypass_rls, "bypass_row_security"),
        )
        for flag, code in flags:
            if flag:
                found.append(finding(code))
        writes = [f"member of {role}" for role in roles if role == "pg_write_all_data"]
        writes += listed[WRITABLE_TABLES_SQL] + listed[CREATABLE_SCHEMAS_SQL]
        if writes:
            found.append(finding("write_privileges", writes))
        if listed[OWNED_OBJECTS_SQL]:
            found.append(finding("object_ownership", listed[OWNED_OBJECTS_SQL]))
        return found

    def ping(self) -> None:
        try:
            self._conn.execute("SELECT 1").fetchone()
        except psycopg.Error as error:
            raise ConnectFailed(scrubbed(error, self._spec)) from None
        finally:
            self._end_transaction()

    def cancel(self) -> None:
        self._cancelled = True
        try:
            self._conn.cancel_safe(timeout=5)
        except psycopg.Error as error:
            raise QueryFailed(scrubbed(error, self._spec)) from None

    def notices(self) -> list[str]:
        return list(self._notices)

    def close(self) -> None:
        self._conn.close()

    def _type_name(self, oid: int) -> str:
        info = self._conn.adapters.types.get(oid)
        return info.name if info is not None else str(oid)

    def _end_transaction(self) -> None:
        # Nothing read-only is worth keeping, and an idle open transaction would hold locks.
        if not self._conn.broken and not self._conn.closed:
            self._conn.rollback()


def connect(spec: ConnectionSpec, address: str | None, limits: Limits) -> PostgresSession:
    sslmode = spec.option("sslmode") or "prefer"
    server_options = (
        "-c default_transaction_read_only=on -c DateStyle=ISO -c IntervalStyle=iso_8601"
        f" -c statement_timeout={limits.statement_timeout_seconds * 1000}"
        f" -c idle_in_transaction_session_timeout={(limits.statement_timeout_seconds + 30) * 1000}"
    )
    try:
        conn = psycopg.connect(
            host=spec.host,
            hostaddr=address,
            port=spec.port,
            dbname=spec.database,
            user=spec.user,
            password=spec.password,
            sslmode=sslmode,
            # libpq would otherwise read this service's own files: ~/.pgpass, client certificates,
            # ~/.postgresql/root.crt. Certificates are checked against the system's trust store.
            passfile="/dev/null",
            sslcertmode="disable",
            sslrootcert="system" if sslmode.startswith("verify") else None,
            application_name=spec.option("application_name") or "loupe",
            connect_timeout=limits.connect_timeout_seconds,
            options=server_options,
            autocommit=False,
        )
    except psycopg.Error as error:
        raise ConnectFailed(scrubbed(error, spec)) from None
    conn.read_only = True
    for type_name in TEXT_TYPES:
        conn.adapters.register_loader(type_name, TextLoader)
    return PostgresSession(conn, spec)


# Views (and materialized views) over the table, transitively, and its inheritance or partition children.
DEPENDENTS_SQL = (
    "WITH RECURSIVE target AS ("
    " SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = %(schema)s AND c.relname = %(name)s),"
    " reading(oid) AS (SELECT oid FROM target UNION SELECT next.oid FROM reading, LATERAL ("
    " SELECT r.ev_class AS oid FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid"
    " WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.refobjid = reading.oid"
    " AND r.ev_class <> reading.oid"
    " UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = reading.oid) AS next)"
    " SELECT n.nspname, c.relname FROM reading JOIN pg_catalog.pg_class c ON c.oid = reading.oid"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE reading.oid NOT IN (SELECT oid FROM target)"
)

ENGINE = EngineSpec(
    name="postgres",
    dialect="postgres",
    schemes=("postgresql", "postgres"),
    default_port=5432,
    options={
        "sslmode": frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}),
        "application_name": None,
    },
    placeholder=PYFORMAT,
    guard=GuardPolicy(
        functions=postgres_catalogue.FUNCTIONS,
        catalog_relations=postgres_catalogue.CATALOG_RELATIONS,
        system_schemas=frozenset({"pg_catalog", "information_schema", "pg_toast"}),
        system_relation_prefixes=("pg_",),
        function_schemas=frozenset({"pg_catalog"}),
        types=postgres_catalogue.TYPES,
        explain_options=EXPLAIN_OPTIONS,
        unicode_escape_prefix=True,
    ),
    connect=connect,
    dependents_sql=DEPENDENTS_SQL,
)
