"""The metadata database: one psycopg connection per process, one transaction per unit of work.

A warm Lambda reuses its connection (RDS Proxy pools them in AWS), or lets go of it after each
invocation so an idle database can pause; a broken one is replaced on the next use, and a database
resuming from a pause is waited for. Nothing runs as the login: the session's role is the
cross-tenant one and each transaction narrows it, so row-level security applies.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, LiteralString, TypeVar
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from loupe.config import Settings, get_settings


class DbRole(StrEnum):
    """The database roles the migrations create; see infra/migrations/0001_roles.sql."""

    APP = "loupe_app"  # tenant-scoped: row-level security filters by loupe.organization_id
    SYSTEM = "loupe_system"  # before authentication and for cross-tenant jobs


TENANT_SETTING = "loupe.organization_id"

Connection = psycopg.Connection[dict[str, Any]]
ConnectedT = TypeVar("ConnectedT")

# One connection per owner: a Lambda process serves one invocation at a time, so the default owner's
# connection serves it all; threads beside an invocation (the runner's watchdog) and a process running
# several functions at once (the local stack) name their own.
_connections: dict[str, Connection] = {}
_connection_lock = threading.Lock()
_owner: ContextVar[str] = ContextVar("loupe_db_owner", default="")
_current: ContextVar[Connection | None] = ContextVar("loupe_db_current", default=None)
# The role the transaction in progress runs as, as this module last set it.
_role: ContextVar[DbRole] = ContextVar("loupe_db_role", default=DbRole.SYSTEM)


@dataclass
class _Unit:
    """The outermost transaction in progress, which `suspended` may end and begin again, and what is
    to happen once it commits."""

    tx: AbstractContextManager[Any]
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    # The statements' cursor (see _cursor), made at the first statement.
    cursor: psycopg.Cursor[dict[str, Any]] | None = None

    def committed(self) -> None:
        """Call what was to happen once the work so far committed, each callback once."""
        callbacks, self.after_commit = self.after_commit, []
        for callback in dict.fromkeys(callbacks):
            callback()


_unit: ContextVar[_Unit | None] = ContextVar("loupe_db_unit", default=None)


class DatabaseUnavailable(RuntimeError):
    """The metadata database could not be reached."""


def tls_options(settings: Settings) -> dict[str, str]:
    """libpq's TLS settings: the configured mode, and for the verifying modes the system's trust
    store unless the URL names its own root certificate (RDS Proxy's certificates are public ones; a
    cluster endpoint needs the RDS bundle as `?sslrootcert=...`)."""
    options: dict[str, str] = {"sslmode": settings.effective_sslmode}
    verifying = settings.effective_sslmode in ("verify-ca", "verify-full")
    if verifying and "sslrootcert" not in settings.database_url.get_secret_value():
        options["sslrootcert"] = "system"
    return options


def session_settings(settings: Settings) -> dict[str, str]:
    """What every transaction runs with: the timeouts, UTC, and the cross-tenant role it starts as
    (SET LOCAL ends with it, so a transaction that stays in it needs no SET ROLE round trip)."""
    return {
        "statement_timeout": str(settings.db_statement_timeout_ms),
        "lock_timeout": str(settings.db_lock_timeout_ms),
        "idle_in_transaction_session_timeout": str(settings.db_idle_in_transaction_timeout_ms),
        "timezone": "UTC",
        "role": DbRole.SYSTEM.value,
    }


# A server that answers a connection with FATAL is up: it refused the login, the database or an option,
# and asking again would not change that; unless what it says is that it is still starting.
_STILL_STARTING = (
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "not yet accepting connections",
)


def _transient(error: psycopg.OperationalError) -> bool:
    """Worth trying again: no answer (a paused Aurora resuming, a restart, a timeout), or a server
    still starting. libpq reports connection failures as text, without a SQLSTATE."""
    text = str(error)
    return "FATAL" not in text or any(phrase in text for phrase in _STILL_STARTING)


def _startup_options(settings: Settings) -> str:
    return " ".join(f"-c {name}={value}" for name, value in session_settings(settings).items())


def _connect_once(settings: Settings, timeout_seconds: int) -> Connection:
    # Through RDS Proxy the settings cannot travel in the startup packet; _begin sets them per transaction.
    startup = {} if settings.db_through_proxy else {"options": _startup_options(settings)}
    conn = psycopg.connect(
        make_conninfo(settings.database_url.get_secret_value(), **tls_options(settings), **startup),
        connect_timeout=timeout_seconds,
        application_name="loupe",
        row_factory=dict_row,
        # Transactions are explicit (db.transaction); outside one nothing is held open.
        autocommit=True,
    )
    if settings.db_through_proxy:
        # Named prepared statements would pin the connection to one server connection of the proxy.
        conn.prepare_threshold = None
        return conn
    session_role = conn.execute("SELECT current_user AS name").fetchone()
    # Transactions trust the session role (see transaction): a server or proxy that dropped the startup
    # options would leave the login's own role in force, which row-level security may not narrow.
    if session_role is None or session_role["name"] != DbRole.SYSTEM.value:
        conn.close()
        raise DatabaseUnavailable("the metadata database ignored the session role option")
    return conn


def while_waking(
    attempt: Callable[[int], ConnectedT], wait_seconds: float, timeout_seconds: int
) -> ConnectedT:
    """`attempt(timeout)`, tried again for up to `wait_seconds` while the database does not answer (Aurora
    resuming from a pause); its last OperationalError is raised. No attempt runs past the wait by more
    than libpq's shortest timeout (2 s), so a request that waited gets its 503 inside API Gateway's 29 s."""
    give_up_at = time.monotonic() + wait_seconds
    pause = 0.5
    while True:
        left = math.ceil(give_up_at - time.monotonic())
        timeout = max(2, min(timeout_seconds, left)) if left > 0 else timeout_seconds
        try:
            return attempt(timeout)
        except psycopg.OperationalError as error:
            if not _transient(error) or time.monotonic() + pause > give_up_at:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 4.0)


def connect(settings: Settings | None = None) -> Connection:
    """Open a new connection with the configured TLS mode and timeouts, trying again for up to
    LOUPE_DB_WAKE_WAIT_SECONDS while the database does not answer (Aurora resuming from a pause)."""
    configured = settings or get_settings()
    try:
        return while_waking(
            lambda timeout: _connect_once(configured, timeout),
            configured.db_wake_wait_seconds,
            configured.db_connect_timeout_seconds,
        )
    except psycopg.OperationalError as error:
        # psycopg's message can echo the host and user; keep only its gist.
        raise DatabaseUnavailable("cannot connect to the metadata database") from error


def _shared_connection(*, fresh: bool = False) -> Connection:
    owner = _owner.get()
    with _connection_lock:
        conn = _connections.get(owner)
        if fresh or conn is None or conn.closed or conn.broken:
            if conn is not None and not conn.closed:
                conn.close()
            conn = _connections[owner] = connect()
        return conn


@contextmanager
def own_connection(owner: str) -> Iterator[None]:
    """Run the block's transactions on the connection kept for `owner`, never on another thread's."""
    token = _owner.set(owner)
    try:
        yield
    finally:
        _owner.reset(token)


def close() -> None:
    """Close every shared connection (tests and the local stack's shutdown)."""
    with _connection_lock:
        for conn in _connections.values():
            conn.close()
        _connections.clear()


def invocation_ended() -> None:
    """After each Lambda invocation: let go of the connection unless LOUPE_DB_KEEP_CONNECTIONS, so a
    warm function holds none and an idle database without a proxy can pause."""
    if _connections and not get_settings().db_keep_connections:
        close()


# Written out, not composed per call: quoting an identifier is work a request would do twice.
SET_ROLE: dict[DbRole, LiteralString] = {
    DbRole.APP: 'SET LOCAL ROLE "loupe_app"',
    DbRole.SYSTEM: 'SET LOCAL ROLE "loupe_system"',
}


def _set_role(role: DbRole) -> None:
    _cursor().execute(SET_ROLE[role])
    _role.set(role)


def _begin() -> tuple[Connection, AbstractContextManager[psycopg.Transaction]]:
    conn = _shared_connection()
    try:
        tx = conn.transaction()
        tx.__enter__()
    except psycopg.OperationalError:
        if not (conn.broken or conn.closed):
            raise
        # The server dropped an idle connection between invocations: reconnect once.
        conn = _shared_connection(fresh=True)
        tx = conn.transaction()
        tx.__enter__()
    settings = get_settings()
    if settings.db_through_proxy:
        # Local to the transaction: RDS Proxy can lend the server connection to others between them.
        items = session_settings(settings).items()
        conn.execute(
            sql.SQL("SELECT {}").format(
                sql.SQL(", ").join(
                    sql.SQL("set_config({}, {}, true)").format(sql.Literal(name), sql.Literal(value))
                    for name, value in items
                )
            )
        )
    return conn, tx


@contextmanager
def transaction(role: DbRole = DbRole.SYSTEM) -> Iterator[Connection]:
    """Run the block in one transaction, committed on success and rolled back on any exception.

    Inside an open transaction this joins it, so a request's pieces share one unit of work.
    """
    current = _current.get()
    if current is not None:
        yield current
        return
    conn, tx = _begin()
    unit = _Unit(tx)
    token = _current.set(conn)
    unit_token = _unit.set(unit)
    role_token = _role.set(DbRole.SYSTEM)  # the session's role (see connect)
    try:
        if role is not DbRole.SYSTEM:
            _set_role(role)
        yield conn
    except BaseException as error:
        unit.tx.__exit__(type(error), error, error.__traceback__)
        raise
    else:
        unit.tx.__exit__(None, None, None)
    finally:
        _role.reset(role_token)
        _unit.reset(unit_token)
        _current.reset(token)
    # Outside the committed transaction: a callback's own transaction() is a new one.
    unit.committed()


@contextmanager
def suspended(organization_id: UUID) -> Iterator[None]:
    """Commit the transaction in progress and hold none through the block (a long poll's wait: no
    snapshot, no lock, and RDS Proxy may lend the server connection to others); after it, go on in a
    new transaction, bound to the organization again if it was. The block's own `transaction()`s are
    transactions of their own."""
    unit = _unit.get()
    if unit is None:
        yield
        return
    role = _role.get()
    unit.tx.__exit__(None, None, None)
    # Until a new one begins, ending the outer transaction has nothing to end.
    unit.tx = nullcontext()
    current_token = _current.set(None)
    unit_token = _unit.set(None)
    unit.committed()
    try:
        yield
    finally:
        _unit.reset(unit_token)
        _current.reset(current_token)
        conn, unit.tx = _begin()
        _current.set(conn)
        _role.set(DbRole.SYSTEM)
        if role is DbRole.APP:
            bind_tenant(organization_id)


def after_commit(callback: Callable[[], None]) -> None:
    """Call `callback` once the outermost transaction in progress has committed (at once outside one),
    once however often it was asked for; never when it rolls back. It must not raise: the work is
    committed by then."""
    unit = _unit.get()
    if unit is None:
        callback()
    else:
        unit.after_commit.append(callback)


def connection() -> Connection:
    """The connection of the transaction in progress; repositories call this."""
    conn = _current.get()
    if conn is None:
        raise RuntimeError("no transaction in progress: wrap the call in db.transaction()")
    return conn


def bind_tenant(organization_id: UUID) -> None:
    """Narrow the current transaction to one organization: RLS filters every table from here on."""
    _cursor().execute("SELECT " + tenant_binding("%s"), (organization_id,))
    tenant_bound()


def tenant_binding(organization_id: LiteralString) -> LiteralString:
    """The select-list items that narrow the transaction to one organization (set_config('role', ..., true)
    is SET LOCAL ROLE), so that a query whose row proves the caller binds it in its own round trip
    (`organization_id` is that query's SQL expression). They run only for a row the query returns; call
    tenant_bound() when it returned one."""
    return (
        f"set_config('role', '{DbRole.APP.value}', true) AS bound_role,"
        f" set_config('{TENANT_SETTING}', {organization_id}::text, true) AS bound_organization_id"
    )


def tenant_bound() -> None:
    """Note that the current transaction's query bound it with tenant_binding()."""
    _role.set(DbRole.APP)


def use_system_role() -> None:
    """Widen the current transaction back to the cross-tenant role (authentication lookups)."""
    _set_role(DbRole.SYSTEM)


@contextmanager
def as_system() -> Iterator[None]:
    """The block runs as the cross-tenant role (tables without a tenant: rate limits), then the
    transaction goes back to the role it had, tenant setting untouched."""
    previous = _role.get()
    if previous is DbRole.SYSTEM:
        # Unauthenticated requests and API-key lookups already run as it: no round trip.
        yield
        return
    _set_role(DbRole.SYSTEM)
    try:
        yield
    finally:
        _set_role(previous)


Query = str | sql.Composable
Params = tuple[Any, ...] | dict[str, Any] | None


def _cursor() -> psycopg.Cursor[dict[str, Any]]:
    """The current transaction's cursor. psycopg's `Connection.execute` makes a cursor per statement
    (copying the connection's adapters, then freeing them); this module's statements read each result
    before the next one is sent, so a transaction's statements share one."""
    conn = connection()
    unit = _unit.get()
    assert unit is not None  # transaction() and suspended() set it with the connection
    if unit.cursor is None or unit.cursor.connection is not conn:
        unit.cursor = conn.cursor()
    return unit.cursor


def fetch_one(query: Query, params: Params = None) -> dict[str, Any] | None:
    """Run a parameterized statement in the current transaction and return its first row."""
    return _cursor().execute(query, params).fetchone()  # type: ignore[arg-type]


def fetch_all(query: Query, params: Params = None) -> list[dict[str, Any]]:
    return _cursor().execute(query, params).fetchall()  # type: ignore[arg-type]


def execute(query: Query, params: Params = None) -> int:
    """Run a parameterized statement; returns the number of rows it touched."""
    return _cursor().execute(query, params).rowcount  # type: ignore[arg-type]


def execute_many(query: Query, params_seq: list[tuple[Any, ...]]) -> None:
    """Run one parameterized statement for each parameter set, pipelined (one round trip per batch)."""
    if params_seq:
        with connection().cursor() as cursor:
            cursor.executemany(query, params_seq)  # type: ignore[arg-type]
