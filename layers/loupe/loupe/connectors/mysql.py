"""MySQL and MariaDB datasources through PyMySQL: LOCAL INFILE off, read-only transactions, the
server's statement timeout, cancellation with KILL QUERY from a second connection, and the SQL guard's
MySQL rules."""

from __future__ import annotations

import math
import re
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

import pymysql
import pymysql.cursors
import pymysql.err
from pymysql.constants import FIELD_TYPE

from loupe.connectors import (
    LOGIN_FINDING_CODES,
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
    mysql_catalogue,
    pyformat,
    scrubbed,
    tables_from_rows,
)

# EXPLAIN's forms that only plan (MySQL's EXPLAIN ANALYZE executes the statement), and their values.
EXPLAIN_OPTIONS = frozenset({"extended", "partitions", "format", "traditional", "json", "tree"})
# The server's own schemas: accounts and password hashes, the FEDERATED servers' passwords, sessions,
# settings, statistics. Never a datasource's database, and system relations for the guard.
SYSTEM_DATABASES = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
SCHEMA_SQL = """
SELECT table_schema, table_name, column_name, column_type
FROM information_schema.columns
WHERE table_schema = DATABASE()
ORDER BY table_name, ordinal_position
LIMIT %s
"""
# MariaDB's ER_STATEMENT_TIMEOUT, MySQL's ER_QUERY_TIMEOUT; ER_QUERY_INTERRUPTED after KILL QUERY.
TIMEOUT_ERRORS = frozenset({1969, 3024})
INTERRUPTED = 1317
# A line of SHOW GRANTS that grants privileges (not a role): what, and on which object.
GRANT_LINE = re.compile(
    r"^GRANT (?P<privileges>.+?) ON (?:(?:TABLE|FUNCTION|PROCEDURE|PACKAGE BODY|PACKAGE) )?"
    r"(?P<target>.+?) TO ",
    re.IGNORECASE,
)
# A line of SHOW GRANTS that grants roles, each as the server quotes it (`name` or `name`@`host`).
ROLE_LINE = re.compile(
    r"^GRANT (?P<roles>`[^`]+`(?:@`[^`]*`)?(?:\s*,\s*`[^`]+`(?:@`[^`]*`)?)*) TO ", re.IGNORECASE
)
ROLE_NAME = re.compile(r"`[^`]+`(?:@`[^`]*`)?")
# Roles granted to a login that are inspected, at most.
MAX_ROLES = 50
# Column lists inside a privilege (`SELECT (a, b)`), dropped before the list is split.
COLUMN_LIST = re.compile(r"\s*\([^)]*\)")
# Global privileges with a finding of their own; ALL on *.* is a superuser's.
GLOBAL_FINDINGS: dict[str, tuple[LoginFindingCode, ...]] = {
    "SUPER": ("superuser",),
    "FILE": ("server_file_read", "server_file_write"),
    "PROCESS": ("process_list",),
    "SHUTDOWN": ("server_administration",),
    "RELOAD": ("server_administration",),
    "CREATE USER": ("create_role",),
}
# Privileges that change data, schema or routines, or run routines (which may write).
WRITE_PRIVILEGES = frozenset(
    {
        "ALL",
        "ALL PRIVILEGES",
        "INSERT",
        "UPDATE",
        "DELETE",
        "DELETE HISTORY",
        "CREATE",
        "DROP",
        "ALTER",
        "INDEX",
        "CREATE VIEW",
        "CREATE ROUTINE",
        "ALTER ROUTINE",
        "CREATE TEMPORARY TABLES",
        "LOCK TABLES",
        "EXECUTE",
        "TRIGGER",
        "EVENT",
    }
)
TYPE_NAMES = {
    value: name for name, value in vars(FIELD_TYPE).items() if name.isupper() and isinstance(value, int)
}


def _type_name(code: Any) -> str:
    return TYPE_NAMES.get(code, str(code)) if isinstance(code, int) else str(code)


def findings_from_grants(grants: list[str]) -> list[LoginFinding]:
    """The findings of a login's SHOW GRANTS lines, in the order of LOGIN_FINDING_CODES."""
    objects: dict[LoginFindingCode, list[str]] = {}
    for line in grants:
        match = GRANT_LINE.match(line.strip())
        if match is None:
            continue
        target = match["target"]
        privileges = [
            " ".join(name.split()).upper() for name in COLUMN_LIST.sub("", match["privileges"]).split(",")
        ]
        if "WITH GRANT OPTION" in line.upper():
            objects.setdefault("grant_option", []).append(target)
        for privilege in privileges:
            if target == "*.*" and privilege in ("ALL", "ALL PRIVILEGES"):
                objects.setdefault("superuser", []).append(f"{privilege} ON *.*")
            elif target == "*.*" and privilege in GLOBAL_FINDINGS:
                for code in GLOBAL_FINDINGS[privilege]:
                    objects.setdefault(code, []).append(f"{privilege} ON *.*")
            if privilege in WRITE_PRIVILEGES and not (target == "*.*" and "superuser" in objects):
                objects.setdefault("write_privileges", []).append(f"{privilege} ON {target}")
    return [finding(code, objects[code]) for code in LOGIN_FINDING_CODES if code in objects]


def _granted_roles(grants: list[str]) -> list[str]:
    roles: list[str] = []
    for line in grants:
        match = ROLE_LINE.match(line.strip())
        if match is not None:
            roles += ROLE_NAME.findall(match["roles"])
    return roles


def _ssl_context(mode: str | None) -> ssl.SSLContext | None:
    if mode in (None, "disabled"):
        return None
    context = ssl.create_default_context()
    # The session connects to a checked IP address, so the certificate chain is verified, not the name.
    context.check_hostname = False
    if mode == "required":
        context.verify_mode = ssl.CERT_NONE
    return context


def _open(spec: ConnectionSpec, address: str, limits: Limits) -> pymysql.Connection[Any]:
    return pymysql.connect(
        host=address,
        port=spec.port,
        user=spec.user,
        password=spec.password,
        database=spec.database,
        charset=spec.option("charset") or "utf8mb4",
        ssl=_ssl_context(spec.option("ssl_mode")),
        connect_timeout=limits.connect_timeout_seconds,
        # A backstop if the server ignores its own timeout: the socket gives up a little later.
        read_timeout=limits.statement_timeout_seconds + 10,
        write_timeout=limits.statement_timeout_seconds + 10,
        local_infile=False,
        autocommit=True,
    )


class MySqlSession:
    def __init__(
        self,
        conn: pymysql.Connection[Any],
        connection_id: int,
        spec: ConnectionSpec,
        address: str,
        limits: Limits,
    ) -> None:
        self._conn = conn
        self._connection_id = connection_id
        self._spec = spec
        self._address = address
        self._limits = limits
        self._cancelled = False

    @contextmanager
    def stream(self, sql: str, parameters: Mapping[str, Any] | None) -> Iterator[RowStream]:
        self._cancelled = False
        with self._conn.cursor() as control:
            with self._translated_errors():
                # Again for every statement: a statement that set the session read-write and a later
                # one that commits implicitly (DDL) must not combine across runs on a reused session.
                control.execute("SET SESSION TRANSACTION READ ONLY")
                control.execute("START TRANSACTION READ ONLY")
            # An unbuffered cursor: the server sends rows as they are read, not the whole result first.
            rows = self._conn.cursor(pymysql.cursors.SSCursor)
            exhausted = False
            try:
                with self._translated_errors():
                    rows.execute(*pyformat(sql, parameters))
                description = rows.description or ()
                columns = tuple(Column(str(item[0]), _type_name(item[1])) for item in description)

                def batches() -> Iterator[list[tuple[Any, ...]]]:
                    nonlocal exhausted
                    yield from fetched_batches(rows.fetchmany, self._translated_errors)
                    exhausted = True

                yield RowStream(columns, batches() if description else iter(()))
            finally:
                if rows.description and not exhausted:
                    # Closing an unbuffered cursor reads every row left; stop the statement instead.
                    with suppress(QueryFailed):
                        self.cancel()
                with suppress(pymysql.err.MySQLError):
                    rows.close()
                with suppress(pymysql.err.MySQLError):
                    control.execute("ROLLBACK")

    def estimate_cost(self, sql: str, parameters: Mapping[str, Any] | None) -> float | None:
        """The product of the plan's row estimates: the row combinations MySQL and MariaDB expect to
        examine (MariaDB reports no cost figure). An EXPLAIN plans its query without running it."""
        if is_explain(sql):
            return None
        with self._conn.cursor(pymysql.cursors.DictCursor) as cursor, self._translated_errors():
            cursor.execute(*pyformat(f"EXPLAIN {sql}", parameters))
            plan = cursor.fetchall()
        estimates = [float(step["rows"]) for step in plan if step.get("rows") is not None]
        return math.prod(estimates) if estimates else None

    @contextmanager
    def _translated_errors(self) -> Iterator[None]:
        try:
            yield
        except pymysql.err.MySQLError as error:
            code = error.args[0] if error.args else None
            if self._cancelled or code == INTERRUPTED:
                raise QueryCancelled("the statement was cancelled") from None
            if code in TIMEOUT_ERRORS:
                raise QueryTimedOut(scrubbed(error, self._spec)) from None
            raise QueryFailed(scrubbed(error, self._spec)) from None

    def list_schema(self) -> list[Table]:
        try:
            with self._conn.cursor() as cursor:
                cursor.execute(SCHEMA_SQL, (SCHEMA_COLUMN_LIMIT,))
                rows = cursor.fetchall()
        except pymysql.err.MySQLError as error:
            raise QueryFailed(scrubbed(error, self._spec)) from None
        return tables_from_rows(rows)

    def inspect_login(self) -> list[LoginFinding]:
        """The login's grants and those of every role granted to it, active or not (a role it may SET
        is as much its own); MariaDB lists a role's nested roles' grants once the role is set."""
        try:
            with self._conn.cursor() as cursor:
                cursor.execute("SHOW GRANTS")
                grants = [str(row[0]) for row in cursor.fetchall()]
            roles = _granted_roles(grants)[:MAX_ROLES]
            if roles:
                # On a connection of its own, so this session's role stays as it was.
                other = _open(self._spec, self._address, self._limits)
                try:
                    with other.cursor() as cursor:
                        for role in roles:
                            cursor.execute(f"SET ROLE {role}")
                            cursor.execute("SHOW GRANTS")
                            grants += [str(row[0]) for row in cursor.fetchall()]
                finally:
                    other.close()
        except pymysql.err.MySQLError as error:
            raise QueryFailed(scrubbed(error, self._spec)) from None
        return findings_from_grants(grants)

    def ping(self) -> None:
        try:
            with self._conn.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except pymysql.err.MySQLError as error:
            raise ConnectFailed(scrubbed(error, self._spec)) from None

    def cancel(self) -> None:
        self._cancelled = True
        try:
            killer = _open(self._spec, self._address, self._limits)
            try:
                with killer.cursor() as cursor:
                    cursor.execute("KILL QUERY %s", (self._connection_id,))
            finally:
                killer.close()
        except pymysql.err.MySQLError as error:
            raise QueryFailed(scrubbed(error, self._spec)) from None

    def notices(self) -> list[str]:
        # MySQL and MariaDB give warnings only to a second statement (SHOW WARNINGS); none are kept.
        return []

    def close(self) -> None:
        if self._conn.open:
            self._conn.close()


def connect(spec: ConnectionSpec, address: str | None, limits: Limits) -> MySqlSession:
    if address is None:
        raise ConnectFailed("a MySQL datasource needs a host")
    try:
        conn = _open(spec, address, limits)
    except pymysql.err.MySQLError as error:
        raise ConnectFailed(scrubbed(error, spec)) from None
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
            cursor.execute("SELECT CONNECTION_ID(), VERSION()")
            connection_id, version = cursor.fetchone() or (0, "")
            if "mariadb" in str(version).lower():
                cursor.execute("SET SESSION max_statement_time = %s", (limits.statement_timeout_seconds,))
            else:
                # MySQL bounds SELECT statements only, in milliseconds.
                cursor.execute(
                    "SET SESSION max_execution_time = %s", (limits.statement_timeout_seconds * 1000,)
                )
    except pymysql.err.MySQLError as error:
        conn.close()
        raise ConnectFailed(scrubbed(error, spec)) from None
    return MySqlSession(conn, int(connection_id), spec, address, limits)


# Views whose definition names the table, or whose definition the login may not see (MySQL and MariaDB
# have no inheritance). `%(schema)s` is unused by the match but keeps the placeholders alike.
DEPENDENTS_SQL = (
    "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.VIEWS"
    " WHERE %(schema)s IS NOT NULL AND (VIEW_DEFINITION = '' OR VIEW_DEFINITION IS NULL"
    " OR LOCATE(LOWER(%(name)s), LOWER(VIEW_DEFINITION)) > 0)"
)

ENGINE = EngineSpec(
    name="mysql",
    dialect="mysql",
    schemes=("mysql", "mariadb"),
    default_port=3306,
    options={
        "ssl_mode": frozenset({"disabled", "required", "verify_ca"}),
        "charset": frozenset({"utf8mb4", "utf8", "latin1"}),
    },
    system_databases=SYSTEM_DATABASES,
    placeholder=PYFORMAT,
    guard=GuardPolicy(
        functions=mysql_catalogue.FUNCTIONS,
        catalog_relations=mysql_catalogue.CATALOG_RELATIONS,
        system_schemas=SYSTEM_DATABASES,
        explain_options=EXPLAIN_OPTIONS,
        executable_comments=True,
    ),
    connect=connect,
    dependents_sql=DEPENDENTS_SQL,
)
