"""The SQL guard: one read-only query per run (or an EXPLAIN of one), parsed with sqlglot in the
datasource's dialect, calling and reading only what its engine's catalogue lists (an allowlist)."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from loupe.connectors import ENGINE_NAMES, DatasourceType, GuardPolicy, engine

MAX_SQL_CHARS = 100_000
# What a placeholder becomes for parsing only: a value, valid wherever a bound parameter is.
NEUTRAL_VALUE = "NULL"
# A function an organization admin allows for one datasource: `name` or `schema.name`, as the
# database folds unquoted names (lower case).
FUNCTION_NAME = re.compile(r"[a-z_][a-z0-9_$]{0,62}(?:\.[a-z_][a-z0-9_$]{0,62})?")

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
    exp.Revoke,
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
# How SQL names the statements above, so that a refusal never shows sqlglot's names for them.
STATEMENT_NAMES: tuple[tuple[type[exp.Expr], str], ...] = (
    (exp.Insert, "INSERT"),
    (exp.Update, "UPDATE"),
    (exp.Delete, "DELETE"),
    (exp.Merge, "MERGE"),
    (exp.Copy, "COPY"),
    (exp.Create, "CREATE"),
    (exp.TruncateTable, "TRUNCATE"),
    (exp.LoadData, "LOAD DATA"),
    (exp.Drop, "DROP"),
    (exp.Alter, "ALTER"),
    (exp.Set, "SET"),
    (exp.SetItem, "SET"),
    (exp.Transaction, "a transaction statement"),
    (exp.Commit, "COMMIT"),
    (exp.Rollback, "ROLLBACK"),
    (exp.Pragma, "PRAGMA"),
    (exp.Attach, "ATTACH"),
    (exp.Detach, "DETACH"),
    (exp.Install, "INSTALL"),
    (exp.Use, "USE"),
    (exp.Grant, "GRANT"),
    (exp.Revoke, "REVOKE"),
    (exp.Describe, "DESCRIBE"),
    (exp.Kill, "KILL"),
    (exp.Analyze, "ANALYZE"),
    (exp.Summarize, "SUMMARIZE"),
    (exp.Export, "EXPORT"),
    (exp.Comment, "COMMENT"),
    (exp.Refresh, "REFRESH"),
    (exp.Cache, "CACHE"),
    (exp.Execute, "EXECUTE"),
)
# Function nodes sqlglot builds from syntax rather than from a written call: operators (`->`, `||`,
# `@>`), keywords without parentheses (`CURRENT_DATE`), literals (`ARRAY[...]`, `[1, 2]`, `{'a': 1}`,
# `INTERVAL '1 day'`, `DATE '2020-01-01'`), CASE, casts. Each is built into the engine and runs nothing
# else. Any other function node that no written call produced is refused: a construct a later sqlglot
# reads is refused until someone looks at it.
SYNTAX_NODES: tuple[type[exp.Expr], ...] = (
    # Operators: sqlglot makes some of them function nodes (AND, OR, ||).
    exp.Binary,
    exp.Unary,
    # EXISTS (...), x = ANY (...).
    exp.SubqueryPredicate,
    # CASE and its WHEN branches.
    exp.Case,
    exp.If,
    # DuckDB's absolute value operator, `@ x`.
    exp.Abs,
    exp.Cast,
    exp.Array,
    exp.Struct,
    exp.Bracket,
    exp.Interval,
    # SQL's keywords for the session's clock and identity.
    exp.CurrentCatalog,
    exp.CurrentDate,
    exp.CurrentRole,
    exp.CurrentSchema,
    exp.CurrentTime,
    exp.CurrentTimestamp,
    exp.CurrentUser,
    exp.Localtime,
    exp.Localtimestamp,
    exp.SessionUser,
    # `UNNEST(...)` in FROM, which sqlglot reads as a clause of its own; MySQL's `a SOUNDS LIKE b`.
    exp.Unnest,
    exp.Soundex,
    exp.JSONExtract,
    exp.JSONExtractScalar,
    exp.JSONBExtract,
    exp.JSONBExtractScalar,
    exp.JSONBContains,
    exp.ArrayContainsAll,
    exp.ArrayContainedBy,
    exp.ArrayOverlaps,
    exp.RegexpLike,
    exp.RegexpILike,
    exp.DPipe,
)
# Calls the parser may return wrapped in a window, a filter or an ordered-set clause.
CALL_WRAPPERS: tuple[type[exp.Expr], ...] = (
    exp.Window,
    exp.Filter,
    exp.WithinGroup,
    exp.IgnoreNulls,
    exp.RespectNulls,
)
# Where the guard's parser marks the nodes a written call became, or its builder made around the
# arguments (MySQL's `DAY(x)` is a Day node over a date conversion nobody wrote).
CALL_MARK = "loupe_written_call"
# Keyword constructs sqlglot parses like functions but which call none, even before a parenthesis:
# `CASE (x) WHEN ...`, PostgreSQL's `VARIADIC (array)`, DuckDB's absolute value `@(x)`.
SYNTAX_KEYWORDS = frozenset({"CASE", "VARIADIC", "@"})
# Tokens that start the query an EXPLAIN plans.
QUERY_STARTS = frozenset(
    {TokenType.SELECT, TokenType.WITH, TokenType.VALUES, TokenType.TABLE, TokenType.FROM}
)
EXPLAIN_PUNCTUATION = frozenset({TokenType.L_PAREN, TokenType.R_PAREN, TokenType.COMMA, TokenType.EQ})
NAME_TOKENS = frozenset({TokenType.VAR, TokenType.IDENTIFIER})
# Operators a query may name with OPERATOR(pg_catalog.op): PostgreSQL's built-in ones. Any other
# schema's operator is user code.
BUILTIN_OPERATOR_SYMBOLS = (
    "+ - * / % ^ = <> != < > <= >= || @> <@ && ? ?| ?& -> ->> #> #>> @? @@ ~ ~* !~ !~* ~~ ~~* !~~ !~~* "
    "<< >> & | # <-> -|- &< &> <<| |>> &<| |&> ?- ?# ?-| ?||"
)
BUILTIN_OPERATORS = frozenset(BUILTIN_OPERATOR_SYMBOLS.split())
# TABLESAMPLE methods built into the engines (an extension may add others, which run its code).
BUILTIN_SAMPLE_METHODS = frozenset({"bernoulli", "system", "reservoir"})
# A quote after an odd run of backslashes, in a string or quoted name.
ESCAPED_QUOTE = re.compile(r"(?<!\\)\\(?:\\\\)*['\"`]")
QUOTED_TOKENS = frozenset({TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.IDENTIFIER})
# A table name that looks like a path (`FROM '/etc/passwd'`, `FROM "x.csv"`).
PATH_LIKE = re.compile(r"[./\\:~]")

# sqlglot's warnings quote the SQL they are about ("'...' contains unsupported syntax"): a tenant's
# SQL, which must never reach Loupe's logs.
logging.getLogger("sqlglot").addFilter(lambda record: False)


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


def valid_function_name(name: str) -> bool:
    """Whether `name` may be allowed for a datasource: `name` or `schema.name`, lower case."""
    return FUNCTION_NAME.fullmatch(name) is not None


# The same saved SQL is checked at each of its runs and scheduled firings, and the answer depends on
# the text and the datasource's allowed functions alone (a refusal is an exception, which is not kept).
@functools.lru_cache(maxsize=256)
def check(
    sql: str, dialect: DatasourceType, allowed_functions: frozenset[str] = frozenset()
) -> GuardedStatement:
    """Accept one read-only query in `dialect`, its values written as the engine's placeholders, that
    calls only catalogued functions or `allowed_functions` (the datasource's); raise `SqlNotAllowed`
    otherwise. Placeholders are parsed as NULL, so one may only stand where a value can, never inside a
    string, a quoted name or a comment."""
    if dialect not in ENGINE_NAMES:
        raise SqlNotAllowed(f"{dialect!r} is not a datasource type")
    if len(sql) > MAX_SQL_CHARS:
        raise SqlNotAllowed(f"the SQL is longer than {MAX_SQL_CHARS} characters")
    if "\x00" in sql:
        raise SqlNotAllowed("the SQL contains a NUL character")
    neutral, slots = _neutralise_placeholders(sql, dialect)
    tokens = _statement_tokens(neutral, dialect)
    while tokens and tokens[-1].token_type == TokenType.SEMICOLON:
        tokens.pop()
    if not tokens:
        raise SqlNotAllowed("the SQL contains no statement")
    if any(token.token_type == TokenType.SEMICOLON for token in tokens):
        raise SqlNotAllowed("only one statement may run at a time")
    placeholder_tokens = _placeholder_tokens(tokens, slots)
    guard = engine(dialect).guard
    _check_tokens(tokens, neutral, guard)
    query_start = _explained_query(tokens, guard)
    statement, calls = _parse(tokens[query_start:], neutral, dialect)
    _check_tree(statement, guard, dialect, top_level=tokens[0])
    for call in calls:
        _check_call(call, guard, dialect, allowed_functions)
    names = tuple(dict.fromkeys(slot.name for slot in slots))
    return GuardedStatement(_rebuild(neutral, tokens, placeholder_tokens), dialect, names)


@dataclass(frozen=True)
class _Slot:
    """A placeholder: where its NULL starts in the neutral text, its name, and how it was written."""

    offset: int
    name: str
    text: str


@dataclass(frozen=True)
class _Call:
    """A function call as written: its name and what stands before it, joined by dots."""

    name: str
    qualifier: tuple[Token, ...]


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


def neutralised(sql: str, dialect: DatasourceType) -> tuple[str, Callable[[int], int]]:
    """The SQL with each placeholder read as NULL (as the guard reads it), and for a position in that
    text how far the same character lies further on in `sql`."""
    neutral, slots = _neutralise_placeholders(sql, dialect)

    def shift(offset: int) -> int:
        return sum(len(slot.text) - len(NEUTRAL_VALUE) for slot in slots if slot.offset < offset)

    return neutral, shift


def _dialect(dialect: DatasourceType) -> sqlglot.Dialect:
    return sqlglot.Dialect.get_or_raise(engine(dialect).dialect)


def _tokenize(sql: str, dialect: DatasourceType) -> list[Token]:
    try:
        return list(_dialect(dialect).tokenize(sql))
    except TokenError:
        raise SqlNotAllowed(f"the SQL could not be read as {dialect} (unclosed quote or comment?)") from None


def _statement_tokens(sql: str, dialect: DatasourceType) -> list[Token]:
    """The tokens of `sql`. Some dialects' tokenizers read EXPLAIN as a command and the rest of the
    text as one string; the rest is read again as SQL, in place, so every token keeps its position."""
    tokens = _tokenize(sql, dialect)
    if len(tokens) > 1 and tokens[0].token_type == TokenType.COMMAND and tokens[0].text.upper() == "EXPLAIN":
        after = tokens[0].end + 1
        return [tokens[0], *_tokenize(" " * after + sql[after:], dialect)]
    return tokens


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


def _explained_query(tokens: list[Token], guard: GuardPolicy) -> int:
    """Where the query starts: 0, or after `EXPLAIN` and its options when every option only plans."""
    if tokens[0].text.upper() != "EXPLAIN":
        return 0
    for index, token in enumerate(tokens[1:], start=1):
        if token.token_type in QUERY_STARTS:
            return index
        if token.token_type in EXPLAIN_PUNCTUATION or token.text.lower() in guard.explain_options:
            continue
        word = token.text.upper()
        if word == "ANALYZE":
            raise SqlNotAllowed("EXPLAIN ANALYZE runs the statement and is not allowed; EXPLAIN alone is")
        raise SqlNotAllowed(f"EXPLAIN {word[:30]} is not allowed: only a read-only query may be explained")
    raise SqlNotAllowed("EXPLAIN needs a query to explain")


def _parse(tokens: list[Token], sql: str, dialect: DatasourceType) -> tuple[exp.Expr, list[_Call]]:
    """The one statement `tokens` hold, and every function call the parser read in them.

    The database runs a call by the name written, so each call is judged by that name, never by the node
    sqlglot builds: sqlglot turns several names into one typed node (`ucase(x)` and `upper(x)` are both
    an Upper node; `now()` is CurrentTimestamp), and a user-defined `ucase` would hide behind the node of
    a built-in. So the parser notes the name token of every call it reads (any path: typed, anonymous,
    special syntax like CAST(... AS ...), a table function, after a dot), with the tokens before it
    joined by dots, and marks the node the call became. A function node left unmarked was built from
    syntax, which `SYNTAX_NODES` must list. Calls of a parse the parser abandoned and tried again
    differently are judged too: they can only refuse more."""
    parser = _dialect(dialect).parser()
    calls: list[_Call] = []
    read_call = parser._parse_function_call
    validate = parser.validate_expression

    def reading_calls(*args: Any, **kwargs: Any) -> exp.Expr | None:
        index = parser._index
        result = read_call(*args, **kwargs)
        if result is not None and _is_written_call(parser, index, result):
            calls.append(_written_call(parser._tokens, index))
            _called_node(result).meta[CALL_MARK] = True
        return result

    def marking_built(expression: exp.Expr, args: list[Any] | None = None) -> exp.Expr:
        # sqlglot validates what a function's builder made with the arguments it was given (and what
        # PostgreSQL's -> and ->> operators make): whatever is not an argument, the builder made.
        if args is not None:
            written = {id(node) for arg in args if isinstance(arg, exp.Expr) for node in arg.walk()}
            for node in expression.walk():
                if id(node) not in written:
                    node.meta[CALL_MARK] = True
        return validate(expression, args)

    parser._parse_function_call = reading_calls  # type: ignore[method-assign]
    parser.validate_expression = marking_built  # type: ignore[method-assign, assignment]
    try:
        statements = parser.parse(tokens, sql)
    except (ParseError, TokenError) as error:
        raise SqlNotAllowed(_parse_failure(error, dialect)) from None
    except RecursionError:
        # sqlglot's parser recurses per parenthesis; past a few dozen levels it runs out of stack.
        raise SqlNotAllowed("the SQL is nested too deeply to check") from None
    except Exception:  # whatever sqlglot fails on is refused, never a server error
        # sqlglot can fail on text it does not expect (DuckDB's `SHOW ALL` raises IndexError).
        raise SqlNotAllowed(f"the SQL could not be parsed as {dialect}") from None
    if len(statements) != 1 or statements[0] is None:
        raise SqlNotAllowed("only one statement may run at a time")
    return statements[0], calls


def _is_written_call(parser: Any, index: int, result: exp.Expr) -> bool:
    """Whether the parser read the token at `index` as a function's name followed by its arguments."""
    tokens: list[Token] = parser._tokens
    if index + 1 >= len(tokens) or tokens[index + 1].token_type != TokenType.L_PAREN:
        return False
    name = tokens[index]
    after_dot = index > 0 and tokens[index - 1].token_type == TokenType.DOT
    if name.text.upper() in SYNTAX_KEYWORDS and not after_dot:
        return False
    # EXISTS (...), ANY (...), ALL (...) are predicates over a subquery or an array, not calls.
    return not isinstance(_called_node(result), exp.SubqueryPredicate)


def _called_node(result: exp.Expr) -> exp.Expr:
    node = result
    while isinstance(node, CALL_WRAPPERS) and isinstance(node.this, exp.Expr):
        node = node.this
    return node


def _written_call(tokens: list[Token], index: int) -> _Call:
    qualifier: list[Token] = []
    position = index
    while position >= 2 and tokens[position - 1].token_type == TokenType.DOT:
        qualifier.insert(0, tokens[position - 2])
        position -= 2
    return _Call(_name(tokens[index]), tuple(qualifier))


def _name(token: Token) -> str:
    """A name as the database folds it: a quoted name exactly, any other in lower case."""
    return token.text if token.token_type == TokenType.IDENTIFIER else token.text.lower()


def _parse_failure(error: ParseError | TokenError, dialect: DatasourceType) -> str:
    """Where the parser stopped, without echoing the SQL back."""
    details = error.errors[0] if isinstance(error, ParseError) and error.errors else {}
    line, column = details.get("line"), details.get("col")
    where = f" (line {line}, column {column})" if line and column else ""
    return f"the SQL could not be parsed as {dialect}{where}"


def _check_tree(statement: exp.Expr, guard: GuardPolicy, dialect: DatasourceType, top_level: Token) -> None:
    if not isinstance(statement, exp.Query | exp.Values):
        raise SqlNotAllowed(
            f"{_statement_name(statement, top_level)} is not allowed: only a read-only query may run"
        )
    for node in statement.walk():
        if isinstance(node, FORBIDDEN_NODES):
            raise SqlNotAllowed(_forbidden_reason(node, top_level))
        if isinstance(node, exp.Func) and not node.meta.get(CALL_MARK) and not isinstance(node, SYNTAX_NODES):
            raise SqlNotAllowed(f"{_construct(node, dialect)} is not in Loupe's catalogue of {dialect} SQL")
        if isinstance(node, exp.Operator):
            _check_operator(node)
        elif isinstance(node, exp.DataType):
            _check_type(node, guard, dialect)
        elif isinstance(node, exp.Table):
            _check_table(node, guard)
        elif isinstance(node, exp.TableSample):
            _check_sample(node)
        elif isinstance(node, exp.SessionParameter):
            raise SqlNotAllowed("server variables (@@name) hold settings and may not be read")
        elif isinstance(node, exp.PropertyEQ) and isinstance(node.this, exp.Parameter):
            raise SqlNotAllowed("assigning a variable (@name := ...) is not allowed")


def _forbidden_reason(node: exp.Expr, top_level: Token) -> str:
    if isinstance(node, exp.Into):
        return "SELECT ... INTO is not allowed: a query may not create tables, files or variables"
    if isinstance(node, exp.Lock):
        return "locking clauses (FOR UPDATE, FOR SHARE, LOCK IN SHARE MODE) are not allowed"
    return f"{_statement_name(node, top_level)} is not allowed: only a read-only query may run"


def _statement_name(node: exp.Expr, top_level: Token) -> str:
    """The statement's keyword (DELETE, COPY, EXPLAIN), not its text nor sqlglot's name for it."""
    if isinstance(node, exp.Command):
        words = node.name.split(maxsplit=1)
        return words[0].upper()[:30] if words else "this statement"
    for kind, name in STATEMENT_NAMES:
        if isinstance(node, kind):
            return name
    if node.parent is None and top_level.token_type != TokenType.IDENTIFIER:
        return top_level.text.upper()[:30]
    return "this statement"


def _construct(node: exp.Expr, dialect: DatasourceType) -> str:
    """A short SQL rendering of a construct, to name it in a refusal."""
    if isinstance(node, exp.NextValueFor):
        return "NEXT VALUE FOR (a sequence write)"
    text = node.sql(engine(dialect).dialect)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _check_call(call: _Call, guard: GuardPolicy, dialect: DatasourceType, allowed: frozenset[str]) -> None:
    if not call.qualifier:
        if call.name in guard.functions or call.name in allowed:
            return
        raise SqlNotAllowed(_uncatalogued(call.name, dialect))
    if len(call.qualifier) != 1 or call.qualifier[0].token_type not in NAME_TOKENS:
        raise SqlNotAllowed(
            f"calling {call.name[:40]} with a dot after a value is not allowed: write {call.name[:40]}(value)"
        )
    schema = _name(call.qualifier[0])
    qualified = f"{schema}.{call.name}"
    if qualified in allowed or (schema in guard.function_schemas and call.name in guard.functions):
        return
    raise SqlNotAllowed(_uncatalogued(qualified, dialect))


def _uncatalogued(name: str, dialect: DatasourceType) -> str:
    shown = name if len(name) <= 40 else f"{name[:37]}..."
    return (
        f"the function {shown} is not in Loupe's {dialect} catalogue; "
        "an admin may allow it (allowed_functions)"
    )


def _check_operator(node: exp.Operator) -> None:
    written = str(node.args.get("operator") or "")
    schema, _, operator = written.rpartition(".")
    if schema.lower() != "pg_catalog" or operator not in BUILTIN_OPERATORS:
        raise SqlNotAllowed(
            f"OPERATOR({written[:40]}) is not allowed: only PostgreSQL's built-in operators may be named"
        )


def _check_type(node: exp.DataType, guard: GuardPolicy, dialect: DatasourceType) -> None:
    if node.this != exp.DataType.Type.USERDEFINED:
        return
    kind = node.args.get("kind")
    # sqlglot keeps the written name as names (PostgreSQL, MySQL) or as text (DuckDB).
    parts = _dotted(kind) if isinstance(kind, exp.Expr) else str(kind or "").split(".")
    names = [part.lower() for part in parts]
    built_in = (len(names) == 1 and names[0] in guard.types) or (
        len(names) == 2 and names[0] in guard.function_schemas
    )
    if not built_in:
        shown = ".".join(parts)[:40] or "this type"
        raise SqlNotAllowed(f"the type {shown} is not a built-in {dialect} type; a cast to it could run code")


def _dotted(node: exp.Expr) -> list[str]:
    """The names of `a.b.c`, in order."""
    if isinstance(node, exp.Dot):
        return [*_dotted(node.this), *_dotted(node.expression)]
    return [node.name]


def _check_table(node: exp.Table, guard: GuardPolicy) -> None:
    if guard.path_tables and any(
        isinstance(part, exp.Identifier) and PATH_LIKE.search(part.name) for part in node.parts
    ):
        raise SqlNotAllowed("a table name may not be a file path or URL")
    if not isinstance(node.this, exp.Identifier):
        # A table function: its call was judged as a call.
        return
    name = node.name.lower()
    schemas = [part.lower() for part in (node.catalog, node.db) if part]
    if not (
        any(schema in guard.system_schemas for schema in schemas)
        or name.startswith(guard.system_relation_prefixes)
    ):
        return
    readable = {name, *(f"{schema}.{name}" for schema in schemas)} if schemas else _unqualified(name, guard)
    if readable.isdisjoint(guard.catalog_relations):
        shown = ".".join([*schemas[-1:], name])[:35]
        raise SqlNotAllowed(
            f"the system relation {shown} may not be read; only tables, columns, views, types and keys may"
        )


def _unqualified(name: str, guard: GuardPolicy) -> set[str]:
    """What an unqualified system relation's name may be: itself, or the same name in a system schema."""
    return {name, *(f"{schema}.{name}" for schema in guard.system_schemas)}


def _check_sample(node: exp.TableSample) -> None:
    method = node.args.get("method")
    if isinstance(method, exp.Expr) and method.name.lower() not in BUILTIN_SAMPLE_METHODS:
        raise SqlNotAllowed(f"the TABLESAMPLE method {method.name[:40]} is not a built-in one")


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
