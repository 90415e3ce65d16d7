"""The SQL guard: one read-only query per run, parsed with sqlglot in the datasource's dialect, with
writes, locks and session changes refused, and each engine's dangerous functions and credential tables
(its spec's `GuardPolicy`)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from loupe.connectors import ENGINE_NAMES, DatasourceType, GuardPolicy, engine

MAX_SQL_CHARS = 100_000
# What a placeholder becomes for parsing only: a value, valid wherever a bound parameter is.
NEUTRAL_VALUE = "NULL"

# Statements that change data, schema, session or transaction state, or that lock rows; refused wherever
# they appear in the tree (a DELETE inside a CTE is as much a write as one at the top).
FORBIDDEN_NODES: tuple[type[exp.Expr], ...] = (
    exp.DML,
    exp.DDL,
    exp.Drop,
    exp.Alter,
    exp.Command,
    exp.Set,
    exp.SetItem,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Pragma,
    exp.Attach,
    exp.Detach,
    exp.Install,
    exp.Use,
    exp.Grant,
    exp.Describe,
    exp.Kill,
    exp.Analyze,
    exp.Summarize,
    exp.Export,
    exp.Comment,
    exp.Refresh,
    exp.Cache,
    exp.Execute,
    exp.Into,
    exp.Lock,
)
# A quote after an odd run of backslashes, in a string or quoted name.
ESCAPED_QUOTE = re.compile(r"(?<!\\)\\(?:\\\\)*['\"`]")
QUOTED_TOKENS = frozenset({TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.IDENTIFIER})
# sqlglot's names for statements whose keyword differs.
STATEMENT_NAMES = {"truncatetable": "TRUNCATE", "loaddata": "LOAD DATA", "setitem": "SET"}
# A table name that looks like a path (`FROM '/etc/passwd'`, `FROM "x.csv"`).
PATH_LIKE = re.compile(r"[./\\:~]")
# A function name a datasource may allow: a lower-case identifier, optionally schema-qualified.
FUNCTION_NAME = re.compile(r"[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?")
MAX_FUNCTION_NAME = 128


class SqlNotAllowed(ValueError):
    """The guard refused the SQL; `reason` is safe to show the user who wrote it."""

    code = "sql_not_allowed"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class GuardedStatement:
    """A statement the guard accepted. `sql` is what to send: the checked tokens exactly as written,
    with comments dropped, so the database runs only text the guard has read."""

    sql: str
    dialect: DatasourceType
    parameters: tuple[str, ...]


# The same saved SQL is checked at each of its runs and scheduled firings, and the answer depends on
# the text alone (a refusal is an exception, which is not kept).
@functools.lru_cache(maxsize=256)
def check(
    sql: str, dialect: DatasourceType, allowed_functions: frozenset[str] = frozenset()
) -> GuardedStatement:
    """Accept one read-only query in `dialect`, its values written as the engine's placeholders;
    raise `SqlNotAllowed` otherwise. Placeholders are parsed as NULL, so one may only stand where a
    value can, never inside a string, a quoted name or a comment. `allowed_functions` are the
    datasource's own additions to what the engine allows."""
    if dialect not in ENGINE_NAMES:
        raise SqlNotAllowed(f"{dialect!r} is not a datasource type")
    if len(sql) > MAX_SQL_CHARS:
        raise SqlNotAllowed(f"the SQL is longer than {MAX_SQL_CHARS} characters")
    if "\x00" in sql:
        raise SqlNotAllowed("the SQL contains a NUL character")
    neutral, slots = _neutralise_placeholders(sql, dialect)
    tokens = _tokenize(neutral, dialect)
    while tokens and tokens[-1].token_type == TokenType.SEMICOLON:
        tokens.pop()
    if not tokens:
        raise SqlNotAllowed("the SQL contains no statement")
    if any(token.token_type == TokenType.SEMICOLON for token in tokens):
        raise SqlNotAllowed("only one statement may run at a time")
    placeholder_tokens = _placeholder_tokens(tokens, slots)
    guard = engine(dialect).guard
    _check_tokens(tokens, neutral, guard)
    try:
        statements = _dialect(dialect).parser().parse(tokens, neutral)
    except (ParseError, TokenError) as error:
        raise SqlNotAllowed(_parse_failure(error, dialect)) from None
    except RecursionError:
        # sqlglot's parser recurses per parenthesis; past a few dozen levels it runs out of stack.
        raise SqlNotAllowed("the SQL is nested too deeply to check") from None
    if len(statements) != 1 or statements[0] is None:
        raise SqlNotAllowed("only one statement may run at a time")
    _check_tree(statements[0], guard, allowed_functions)
    names = tuple(dict.fromkeys(slot.name for slot in slots))
    return GuardedStatement(_rebuild(neutral, tokens, placeholder_tokens), dialect, names)


@dataclass(frozen=True)
class _Slot:
    """A placeholder: where its NULL starts in the neutral text, its name, and how it was written."""

    offset: int
    name: str
    text: str


def _neutralise_placeholders(sql: str, dialect: DatasourceType) -> tuple[str, list[_Slot]]:
    """The SQL with each placeholder replaced by NULL, and where each one went."""
    parts: list[str] = []
    slots: list[_Slot] = []
    position = 0
    length = 0
    for match in engine(dialect).placeholder.pattern.finditer(sql):
        parts.append(sql[position : match.start()])
        length += match.start() - position
        slots.append(_Slot(length, match.group(1), match.group(0)))
        parts.append(NEUTRAL_VALUE)
        length += len(NEUTRAL_VALUE)
        position = match.end()
    parts.append(sql[position:])
    return "".join(parts), slots


def _dialect(dialect: DatasourceType) -> sqlglot.Dialect:
    return sqlglot.Dialect.get_or_raise(engine(dialect).dialect)


def _tokenize(sql: str, dialect: DatasourceType) -> list[Token]:
    try:
        return list(_dialect(dialect).tokenize(sql))
    except TokenError:
        raise SqlNotAllowed(f"the SQL could not be read as {dialect} (unclosed quote or comment?)") from None


def _placeholder_tokens(tokens: list[Token], slots: list[_Slot]) -> dict[int, str]:
    """Token index -> the placeholder as written, for every placeholder; each must be a whole token."""
    starts = {token.start: index for index, token in enumerate(tokens)}
    found: dict[int, str] = {}
    for slot in slots:
        index = starts.get(slot.offset)
        if index is None or tokens[index].end != slot.offset + len(NEUTRAL_VALUE) - 1:
            raise SqlNotAllowed(
                f"the parameter {slot.name} is inside a string, a quoted name or a comment; "
                "a parameter may only stand where a value does"
            )
        found[index] = slot.text
    return found


def _check_tokens(tokens: list[Token], neutral: str, guard: GuardPolicy) -> None:
    """Refuse what the parser could read differently from the database."""
    for index, token in enumerate(tokens):
        if token.token_type in QUOTED_TOKENS and ESCAPED_QUOTE.search(neutral[token.start : token.end + 1]):
            # Whether \' ends a string depends on server modes (MySQL's NO_BACKSLASH_ESCAPES and
            # ANSI_QUOTES, PostgreSQL's standard_conforming_strings) that sqlglot cannot see.
            raise SqlNotAllowed("a backslash before a quote is ambiguous: write a quote inside quotes twice")
        if guard.executable_comments and any(
            comment.lstrip().startswith(("!", "M!")) for comment in token.comments
        ):
            raise SqlNotAllowed("executable comments (/*! ... */) are not allowed")
        if token.token_type == TokenType.UNICODE_STRING or (
            guard.unicode_escape_prefix
            and token.token_type == TokenType.VAR
            and token.text.lower() == "u"
            and index + 2 < len(tokens)
            and tokens[index + 1].token_type == TokenType.AMP
            and tokens[index + 1].start == token.end + 1
            and tokens[index + 2].token_type in (TokenType.IDENTIFIER, TokenType.STRING)
            and tokens[index + 2].start == token.end + 2
        ):
            # U&"..." and U&'...' spell names and strings with escapes sqlglot does not decode.
            raise SqlNotAllowed("Unicode escape strings and names (U&) are not allowed")


def _parse_failure(error: ParseError | TokenError, dialect: DatasourceType) -> str:
    """Where the parser stopped, without echoing the SQL back."""
    details = error.errors[0] if isinstance(error, ParseError) and error.errors else {}
    line, column = details.get("line"), details.get("col")
    where = f" (line {line}, column {column})" if line and column else ""
    return f"the SQL could not be parsed as {dialect}{where}"


def valid_function_name(name: str) -> bool:
    """Whether `name` may be listed among a datasource's allowed functions."""
    return len(name) <= MAX_FUNCTION_NAME and FUNCTION_NAME.fullmatch(name) is not None


def _check_tree(statement: exp.Expr, guard: GuardPolicy, allowed_functions: frozenset[str]) -> None:
    if not isinstance(statement, exp.Query | exp.Values):
        raise SqlNotAllowed(f"{_statement_name(statement)} is not allowed: only a read-only query may run")
    for node in statement.walk():
        if isinstance(node, FORBIDDEN_NODES):
            raise SqlNotAllowed(_forbidden_reason(node))
        if isinstance(node, exp.Func):
            _check_function(node, guard, allowed_functions)
        elif isinstance(node, exp.Table):
            _check_table(node, guard)


def _forbidden_reason(node: exp.Expr) -> str:
    if isinstance(node, exp.Into):
        return "SELECT ... INTO is not allowed: a query may not create tables, files or variables"
    if isinstance(node, exp.Lock):
        return "locking clauses (FOR UPDATE, FOR SHARE, LOCK IN SHARE MODE) are not allowed"
    return f"{_statement_name(node)} is not allowed: only a read-only query may run"


def _statement_name(node: exp.Expr) -> str:
    """The statement's keyword (DELETE, COPY, EXPLAIN), not its text."""
    if isinstance(node, exp.Command):
        return node.name.split(maxsplit=1)[0].upper() if node.name.strip() else "this statement"
    return STATEMENT_NAMES.get(node.key, node.key.upper())


def _function_names(node: exp.Func) -> set[str]:
    if isinstance(node, exp.Anonymous):
        return {node.name.lower()}
    return {name.lower() for name in type(node).sql_names()} | {node.key.lower()}


def _check_function(node: exp.Func, guard: GuardPolicy, allowed_functions: frozenset[str]) -> None:
    for name in _function_names(node):
        if name in allowed_functions:
            continue
        if name in guard.denied_functions or name.startswith(guard.denied_function_prefixes):
            raise SqlNotAllowed(f"the function {name} is not allowed")


def _check_table(node: exp.Table, guard: GuardPolicy) -> None:
    name = node.name.lower()
    if name in guard.denied_tables or node.db.lower() in guard.denied_schemas:
        raise SqlNotAllowed(f"the table {name} holds credentials or settings and may not be read")
    if guard.path_tables and any(
        isinstance(part, exp.Identifier) and PATH_LIKE.search(part.name) for part in node.parts
    ):
        raise SqlNotAllowed("a table name may not be a file path or URL")


def _rebuild(neutral: str, tokens: list[Token], placeholders: dict[int, str]) -> str:
    """The tokens as written, each placeholder restored, joined by one space where the source had
    whitespace or a comment."""
    pieces: list[str] = []
    previous_end = -1
    for index, token in enumerate(tokens):
        if pieces and token.start > previous_end + 1:
            pieces.append(" ")
        pieces.append(placeholders.get(index, neutral[token.start : token.end + 1]))
        previous_end = token.end
    return "".join(pieces)
