"""The database engines datasources name: one module per engine, each exposing an `EngineSpec` that owns
everything about it, and the registry that loads an engine's module on first use."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, get_args
from urllib.parse import quote

# The registry: each name is also its module's, `loupe.connectors.<name>`, whose `ENGINE` is its spec.
DatasourceType = Literal["postgres", "mysql", "duckdb"]
ENGINE_NAMES: tuple[DatasourceType, ...] = get_args(DatasourceType)
# A schema listing stops here; a warehouse with more columns than this is shown in part.
SCHEMA_COLUMN_LIMIT = 50_000
MAX_ERROR_CHARS = 300
# What inspecting a datasource's login can find; every engine reports from this one set.
LoginFindingCode = Literal[
    "superuser",
    "server_file_read",
    "server_file_write",
    "server_program_execution",
    "executables_outside_catalog",
    "create_role",
    "create_database",
    "replication",
    "bypass_row_security",
    "grant_option",
    "server_administration",
    "process_list",
    "write_privileges",
    "object_ownership",
]
LOGIN_FINDING_CODES: tuple[LoginFindingCode, ...] = get_args(LoginFindingCode)
# A login with one of these reaches beyond reading the database's data (the server's files, its
# programs, code the guard cannot see into): its datasource is refused unless the risk is accepted.
REFUSED_FINDINGS: frozenset[LoginFindingCode] = frozenset(
    {
        "superuser",
        "server_file_read",
        "server_file_write",
        "server_program_execution",
        "executables_outside_catalog",
    }
)
# A finding names at most this many objects and counts the rest.
MAX_FINDING_OBJECTS = 20
MASK = "****"
# A quoted value as libpq and drivers write one: '...' or "..." with backslash escapes.
_QUOTED = r"'(?:[^'\\]|\\.)*'" + r'|"(?:[^"\\]|\\.)*"'
# Key names that hold a password (`db_password` too, `passwords` not).
_CREDENTIAL_FIELD = r"(?<![A-Za-z])(?:password|passwd|pwd)(?![A-Za-z])"
CREDENTIAL_PATTERNS = (
    # password=secret, password = 'a b', PWD="x": a connection string's field.
    re.compile(rf"(?P<lead>{_CREDENTIAL_FIELD}\s*=\s*)(?:{_QUOTED}|[^\s&;]+)", re.IGNORECASE),
    # password: 'secret' (quoted only: MySQL's "using password: YES" says no more than that).
    re.compile(rf"(?P<lead>{_CREDENTIAL_FIELD}\s*:\s*)(?:{_QUOTED})", re.IGNORECASE),
    # scheme://user:password@host, up to the last @ before the host's path (a raw @ in a password too).
    re.compile(r"(?P<lead>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^\s/]+(?=@)", re.IGNORECASE),
)
# Rows per round trip while streaming: large enough that the round trips cost little, small enough
# that a batch of wide rows stays a few MB.
FETCH_ROWS = 5_000
# The first word of an EXPLAIN, which planning runs differently from a query.
EXPLAIN = re.compile(r"explain\b", re.IGNORECASE)


@dataclass(frozen=True)
class Limits:
    """How long a connection attempt and one statement may take."""

    connect_timeout_seconds: int = 10
    statement_timeout_seconds: int = 30


@dataclass(frozen=True)
class ConnectionSpec:
    """A parsed, allowlisted connection string. `path` is set for file databases, the network fields
    otherwise."""

    type: DatasourceType
    host: str = ""
    port: int = 0
    database: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    options: tuple[tuple[str, str], ...] = ()
    path: Path | None = None

    def option(self, name: str) -> str | None:
        return dict(self.options).get(name)

    def display(self) -> str:
        """The connection string as shown to clients: the password replaced by `****`."""
        scheme = engine(self.type).schemes[0]
        if self.path is not None:
            return f"{scheme}://{self.path}"
        credentials = quote(self.user, safe="") + (":****" if self.password else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in self.options)
        return f"{scheme}://{credentials}@{host}:{self.port}/{quote(self.database, safe='')}" + (
            f"?{query}" if query else ""
        )


@dataclass(frozen=True)
class Column:
    """A result's or a table's column: its name and the engine's name for its type. The one column type
    from a connector through the runner to the stored result."""

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


@dataclass(frozen=True)
class LoginFinding:
    """Something the login may do beyond reading: the objects concerned (tables, functions, grants) as
    the engine names them, at most MAX_FINDING_OBJECTS, and how many more there are."""

    code: LoginFindingCode
    objects: tuple[str, ...] = ()
    more: int = 0


def finding(code: LoginFindingCode, objects: Sequence[str] = ()) -> LoginFinding:
    """A finding naming the first MAX_FINDING_OBJECTS of `objects`, in order, and counting the rest."""
    unique = list(dict.fromkeys(objects))
    return LoginFinding(code, tuple(unique[:MAX_FINDING_OBJECTS]), max(0, len(unique) - MAX_FINDING_OBJECTS))


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


# A run keeps the first notices its datasource raised, each cut short: a loop of RAISE NOTICE must not
# grow the run's row.
MAX_NOTICES = 20
MAX_NOTICE_CHARS = 500


def kept_notice(notices: list[str], message: str) -> None:
    """Append `message`, cut to MAX_NOTICE_CHARS, unless MAX_NOTICES are kept already."""
    if len(notices) < MAX_NOTICES:
        notices.append(message[:MAX_NOTICE_CHARS])


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

    def inspect_login(self) -> list[LoginFinding]:
        """What the session's login may do beyond reading the data it is meant to: its privileges, what
        it owns, and code the SQL guard could run unknowingly. Empty for a read-only login."""
        ...

    def cancel(self) -> None:
        """Stop the running statement in the datasource; safe to call from another thread."""
        ...

    def notices(self) -> list[str]:
        """What the datasource reported beside the rows since the session opened (notices, warnings):
        at most MAX_NOTICES of them, each cut to MAX_NOTICE_CHARS."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class PlaceholderStyle:
    """How an engine's SQL writes a bound parameter, and the pattern the SQL guard finds one by."""

    template: str
    pattern: re.Pattern[str]

    def __call__(self, name: str) -> str:
        return self.template.format(name=name)


# psycopg and PyMySQL.
PYFORMAT = PlaceholderStyle("%({name})s", re.compile(r"%\(([A-Za-z_][A-Za-z0-9_]*)\)s"))
# Not the tag of a dollar-quoted string ($tag$ ... $tag$, $$ ... $$).
DOLLAR = PlaceholderStyle("${name}", re.compile(r"(?<![$\w])\$([A-Za-z_][A-Za-z0-9_]*)(?![$\w])"))


@dataclass(frozen=True)
class GuardPolicy:
    """What the SQL guard lets one engine's queries call and read: everything else is refused. Names are
    compared in lower case."""

    # The engine's catalogue (`loupe/connectors/<name>_catalogue.py`): each built-in function a query may
    # call, with an example call that the tests run on a real server.
    functions: Mapping[str, str]
    # The system relations a query may read, `schema.name` (or a bare name for a relation reachable from
    # any schema, like DuckDB's `duckdb_tables`).
    catalog_relations: frozenset[str] = frozenset()
    # Schemas whose relations are system relations: readable only when in `catalog_relations`.
    system_schemas: frozenset[str] = frozenset()
    # Relation names read as system relations in any schema (PostgreSQL searches pg_catalog before the
    # search path, so `FROM pg_settings` reads pg_catalog.pg_settings).
    system_relation_prefixes: tuple[str, ...] = ()
    # Schemas a call may name to reach a catalogued built-in (`pg_catalog.upper(x)`); no other schema.
    function_schemas: frozenset[str] = frozenset()
    # Built-in type names sqlglot does not know, which a cast may name besides the ones it does.
    types: frozenset[str] = frozenset()
    # Words that may stand between EXPLAIN and the query (its options and their values).
    explain_options: frozenset[str] = frozenset()
    # The engine executes the inside of `/*! ... */`, which sqlglot reads as a comment.
    executable_comments: bool = False
    # The engine reads U&'...' and U&"..." as escaped strings and names, which sqlglot does not decode.
    unicode_escape_prefix: bool = False
    # The engine reads a file when a table's name looks like a path (`FROM '/etc/passwd'`).
    path_tables: bool = False


Connect = Callable[[ConnectionSpec, str | None, Limits], Session]


@dataclass(frozen=True)
class EngineSpec:
    """Everything Loupe knows about one engine. `connect` opens a session to `address` (an IP the host
    policy allowed; None for file databases); the session runs, streams, estimates cost, lists the
    schema and cancels, mapping the driver's types to names."""

    name: DatasourceType
    # sqlglot's name for the engine's SQL.
    dialect: str
    # URL schemes a connection string may use; the first is the one shown.
    schemes: tuple[str, ...]
    placeholder: PlaceholderStyle
    guard: GuardPolicy
    connect: Connect
    # None for an engine whose connection string names a database file under LOUPE_DUCKDB_ROOT.
    default_port: int | None
    # Query options a connection string may carry, with the values each may take (None: any short value).
    options: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    # The server's own databases (lower case), which a datasource may not name as its database: a login
    # landing in one would browse and query accounts, settings or activity by default.
    system_databases: frozenset[str] = frozenset()
    # The relations that read a table's rows without naming it (views over it, and inheritance or
    # partition children): a statement taking `schema` and `name` placeholders, answering (schema, name)
    # rows. A row policy's table is read only through its policy, so these are refused unless they carry
    # a policy of their own. A view the login cannot see the definition of is answered as one.
    dependents_sql: str = ""


def engine(name: DatasourceType) -> EngineSpec:
    """The registered engine of a datasource type. Its module is imported on first use: a function that
    never meets an engine never loads its module or its driver (docs/adr/0009)."""
    if name not in ENGINE_NAMES:
        raise KeyError(name)
    spec: EngineSpec = importlib.import_module(f"{__name__}.{name}").ENGINE
    return spec


def is_explain(sql: str) -> bool:
    """Whether guarded SQL is an EXPLAIN: the guard sends a statement's tokens from its first keyword."""
    return EXPLAIN.match(sql) is not None


def scrubbed(error: BaseException, spec: ConnectionSpec) -> str:
    """A driver's message fit for a client: its first line, with every credential masked, and short."""
    lines = str(error).strip().splitlines()
    message = lines[0] if lines else type(error).__name__
    return masked_credentials(message, spec.user)[:MAX_ERROR_CHARS]


def masked_credentials(text: str, user: str = "") -> str:
    """`text` with whatever stands where a credential goes masked: a `password=` pair's value, a quoted
    `password:` value, a URL's password and the password after `user:` in `user:password@host`.

    The value is masked whatever it is, and nothing else is: masking the password wherever it occurs
    would rewrite ordinary words ("does not e****ist") and tell anyone who can make the datasource
    answer with chosen text (an editor's SQL) which letters the password holds, or that a guess is it.
    """
    for pattern in CREDENTIAL_PATTERNS:
        text = pattern.sub(rf"\g<lead>{MASK}", text)
    if user:
        # Only where the user name stands as a whole word, so that no other text decides what is masked.
        user_password = rf"(?<![\w.%+-])(?P<lead>{re.escape(user)}:)[^\s/@]+(?=@)"
        text = re.sub(user_password, rf"\g<lead>{MASK}", text)
    return text


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
