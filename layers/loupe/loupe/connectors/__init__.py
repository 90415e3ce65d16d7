"""Connectors to the databases datasources name: one Protocol for every type, and the registry that
opens a read-only session after the host policy has checked where it connects."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from loupe.security.connection_policy import ConnectionSpec, DatasourceType, check_host

# Each type's module, imported on first use: a function that never meets duckdb never loads it.
MODULES: dict[DatasourceType, str] = {
    "postgres": "loupe.connectors.postgres",
    "mysql": "loupe.connectors.mysql",
    "duckdb": "loupe.connectors.duckdb",
}
# A schema listing stops here; a warehouse with more columns than this is shown in part.
SCHEMA_COLUMN_LIMIT = 50_000
MAX_ERROR_CHARS = 300
# Rows per round trip while streaming: large enough that the round trips cost little, small enough
# that a batch of wide rows stays a few MB.
FETCH_ROWS = 5_000


@dataclass(frozen=True)
class Limits:
    """How long a connection attempt and one statement may take."""

    connect_timeout_seconds: int = 10
    statement_timeout_seconds: int = 30


@dataclass(frozen=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class RowStream:
    """The rows of a running statement, batch by batch as the datasource sends them; the columns are
    known before the first batch. Reading the batches raises the connector's errors."""

    columns: tuple[Column, ...]
    batches: Iterator[list[tuple[Any, ...]]]


class ConnectorError(Exception):
    """A datasource failed; the message is the driver's first line, without the password."""


class ConnectFailed(ConnectorError):
    """The datasource could not be reached or refused the credentials."""


class QueryFailed(ConnectorError):
    """The datasource rejected or failed the statement."""


class QueryTimedOut(ConnectorError):
    """The statement ran past its timeout and was stopped in the datasource."""


class QueryCancelled(ConnectorError):
    """`Session.cancel` stopped the statement."""


class Session(Protocol):
    """An open, read-only connection to one datasource. Not shared between threads, except `cancel`."""

    def stream(self, sql: str, parameters: Mapping[str, Any] | None) -> AbstractContextManager[RowStream]:
        """Run one statement in a read-only transaction, with values bound (never formatted in); rows
        are fetched from the datasource as the batches are read, never all at once. The transaction
        ends with the block."""
        ...

    def estimate_cost(self, sql: str, parameters: Mapping[str, Any] | None) -> float | None:
        """The planner's estimate of the statement's cost in the datasource's own unit, without running
        it; None where the datasource gives none."""
        ...

    def list_schema(self) -> list[Table]:
        """The tables and views the credentials can see, with their columns in order."""
        ...

    def ping(self) -> None:
        """A trivial round trip, to prove the session works."""
        ...

    def cancel(self) -> None:
        """Stop the running statement in the datasource; safe to call from another thread."""
        ...

    def close(self) -> None: ...


class Connector(Protocol):
    """One datasource type: opens sessions and says how a bound parameter is written in its SQL."""

    def connect(self, spec: ConnectionSpec, address: str | None, limits: Limits) -> Session:
        """Open a session to `address` (an IP the host policy allowed; None for file databases)."""
        ...

    def placeholder(self, name: str) -> str:
        """How SQL refers to the named parameter `name` (`%(name)s`, `$name`)."""
        ...


def connector_for(kind: DatasourceType) -> Connector:
    """The registered connector of a datasource type."""
    module = importlib.import_module(MODULES[kind])
    connector: Connector = module.CONNECTOR
    return connector


def connect(spec: ConnectionSpec, limits: Limits) -> Session:
    """Open a session; the caller closes it. The host is resolved and checked again here, at connect
    time, and the session connects to the checked address rather than to the name."""
    address = check_host(spec.host)[0] if spec.host else None
    return connector_for(spec.type).connect(spec, address, limits)


def scrubbed(error: BaseException, spec: ConnectionSpec) -> str:
    """A driver's message fit for a client: its first line, without the password, and short."""
    lines = str(error).strip().splitlines()
    message = lines[0] if lines else type(error).__name__
    if spec.password:
        message = message.replace(spec.password, "****")
    return message[:MAX_ERROR_CHARS]


def fetched_batches(
    fetchmany: Callable[[int], Sequence[tuple[Any, ...]]],
    translated_errors: Callable[[], AbstractContextManager[None]],
) -> Iterator[list[tuple[Any, ...]]]:
    """A cursor's rows FETCH_ROWS at a time until it has no more, the driver's errors translated."""
    while True:
        with translated_errors():
            batch = list(fetchmany(FETCH_ROWS))
        if not batch:
            return
        yield batch


def pyformat(sql: str, parameters: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The SQL and values for a driver with `%(name)s` placeholders (psycopg, PyMySQL): every other `%`
    doubled, since those drivers read `%` as the start of a placeholder (`LIKE 'a%'`, `n % 2`)."""
    values = dict(parameters or {})
    names = "|".join(re.escape(name) for name in values)
    kept = rf"%(?!\((?:{names})\)s)" if names else "%"
    return re.sub(kept, "%%", sql), values


def tables_from_rows(rows: Iterable[tuple[Any, ...]]) -> list[Table]:
    """Group (schema, table, column, type) rows, ordered by table, into tables."""
    tables: dict[tuple[str, str], list[Column]] = {}
    for schema, table, column, data_type in rows:
        tables.setdefault((str(schema), str(table)), []).append(Column(str(column), str(data_type)))
    return [Table(schema, name, tuple(columns)) for (schema, name), columns in tables.items()]
