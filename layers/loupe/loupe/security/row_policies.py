"""Row policies applied by rewriting: every reference to a policy's table becomes a subquery of it filtered
by the policy's predicate, its claims bound as values; SQL the rewriter cannot prove covered is refused."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.scope import traverse_scope

from loupe.connectors import DatasourceType, engine
from loupe.security.sql_guard import SqlNotAllowed, neutralised

# `:claims.name` in a predicate: a claim's value, bound (never written into the text). `::` is a cast.
CLAIM = re.compile(r"(?<!:):claims\.([A-Za-z_][A-Za-z0-9_]{0,62})\b")
# The alias of the policy's table inside the filtered subquery: the predicate's columns are qualified with
# it, so a column the table lacks is an error rather than a reference to an outer query's column.
ROWS_ALIAS = "loupe_policy_rows"
# Claim values bind under names no query parameter can take (parameters never start with `loupe_claim__`:
# query_parameters' names are checked against the prefix).
CLAIM_PREFIX = "loupe_claim__"
MAX_PREDICATE_CHARS = 4_000
ClaimValue = str | int | float | bool | list[str | int | float | bool]


class PolicyNotApplicable(SqlNotAllowed):
    """The SQL reads a policy's table where the rewriter cannot prove the policy covers it."""


@dataclass(frozen=True)
class TableName:
    """A table as the engine names it: `schema` and `name` folded as the engine folds unquoted names."""

    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"

    @classmethod
    def from_catalog(cls, schema: str, name: str, dialect: DatasourceType) -> TableName:
        """A relation as the engine's catalog spells it, compared as references to it are."""
        if dialect == "postgres":
            return cls(schema, name)
        return cls(schema.lower(), name.lower())


@dataclass(frozen=True)
class RowFilter:
    """One policy as a run applies it: its table and its predicate (checked by `checked_predicate`)."""

    table: TableName
    predicate: str


@dataclass(frozen=True)
class Effective:
    """The policies binding one principal on one datasource, and the claims they bind: a run's identity
    (`key`, None when no policy applies) for its cache and for who may read its rows."""

    filters: tuple[RowFilter, ...] = ()
    claims: Mapping[str, ClaimValue] = field(default_factory=dict)

    @property
    def key(self) -> str | None:
        if not self.filters:
            return None
        material = json.dumps(
            {"filters": self._row_filters(), "claims": self.claims},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(material.encode()).hexdigest()

    def _row_filters(self) -> list[dict[str, str]]:
        return [
            {"schema": item.table.schema, "table": item.table.name, "predicate": item.predicate}
            for item in self.filters
        ]

    def stored(self) -> dict[str, Any]:
        """The run's columns that record it."""
        return {"row_filters": self._row_filters(), "claims": dict(self.claims), "policy_key": self.key}

    @classmethod
    def from_stored(
        cls, row_filters: Sequence[Mapping[str, str]], claims: Mapping[str, ClaimValue]
    ) -> Effective:
        return cls(
            tuple(
                RowFilter(TableName(item["schema"], item["table"]), item["predicate"]) for item in row_filters
            ),
            dict(claims),
        )


def _dialect(dialect: DatasourceType) -> str:
    return engine(dialect).dialect


def _folded(identifier: exp.Identifier, dialect: DatasourceType) -> str:
    # PostgreSQL and DuckDB fold unquoted names to lower case; MySQL compares table names as the server's
    # file system does, so it is compared in lower case too: a wider match only filters more.
    if identifier.quoted and dialect == "postgres":
        return identifier.name
    return identifier.name.lower()


@functools.lru_cache(maxsize=256)
def parse_table(text: str, dialect: DatasourceType) -> TableName:
    """The schema-qualified table `text` names (`sales.orders`, `"Sales"."Orders"`); ValueError else."""
    try:
        parsed = sqlglot.parse_one(f"SELECT 1 FROM {text}", read=_dialect(dialect))  # noqa: S608  # parsed only
    except (ParseError, TokenError):
        raise ValueError("not a table name") from None
    tables = list(parsed.find_all(exp.Table))
    if (
        len(tables) != 1
        or parsed.args.get("where") is not None
        or len(parsed.args.get("joins") or []) > 0
        or tables[0].alias
        or tables[0].args.get("catalog") is not None
    ):
        raise ValueError("not a table name: write schema.table")
    table = tables[0]
    schema, name = table.args.get("db"), table.this
    if not isinstance(schema, exp.Identifier) or not isinstance(name, exp.Identifier):
        raise ValueError("name the table with its schema: schema.table")
    return TableName(_folded(schema, dialect), _folded(name, dialect))


@functools.lru_cache(maxsize=256)
def checked_predicate(predicate: str, dialect: DatasourceType) -> tuple[str, tuple[str, ...]]:
    """The predicate with each column qualified by the policy rows' alias (claims still `:claims.name`),
    and the claims it uses. ValueError when it is not a condition over the table's own columns: no
    subquery, no qualified column, no parameter other than claims."""
    if not predicate.strip() or len(predicate) > MAX_PREDICATE_CHARS:
        raise ValueError(f"the predicate must be 1 to {MAX_PREDICATE_CHARS} characters")
    if "\x00" in predicate or ";" in predicate:
        raise ValueError("the predicate must be one condition")
    claims = tuple(dict.fromkeys(match.group(1) for match in CLAIM.finditer(predicate)))
    # Each claim becomes a NULL of the same length, so positions in the parsed text are the predicate's.
    neutral = CLAIM.sub(lambda match: "NULL".ljust(len(match.group(0))), predicate)
    prefix = "SELECT 1 WHERE "
    try:
        statements = sqlglot.parse(prefix + neutral, read=_dialect(dialect))
    except (ParseError, TokenError):
        raise ValueError("the predicate is not a condition this engine reads") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Select):
        raise ValueError("the predicate must be one condition")
    statement = statements[0]
    condition = statement.args.get("where")
    extra = [key for key, value in statement.args.items() if value and key not in ("expressions", "where")]
    if condition is None or extra:
        raise ValueError("the predicate must be one condition")
    columns: list[int] = []
    for node in condition.walk():
        if isinstance(node, exp.Select | exp.Subquery | exp.Exists | exp.Table):
            raise ValueError("the predicate may not read other rows (no subquery)")
        if isinstance(node, exp.Placeholder | exp.Parameter | exp.SessionParameter):
            raise ValueError("values in the predicate come from claims: write :claims.name")
        if isinstance(node, exp.Star):
            raise ValueError("the predicate may not use *")
        if isinstance(node, exp.Column):
            if node.table:
                raise ValueError(
                    f"write the column {node.name!r} without a table: it is the policy's table's"
                )
            start = node.this.meta.get("start") if isinstance(node.this, exp.Identifier) else None
            if start is None:
                raise ValueError("the predicate is not a condition this engine reads")
            columns.append(start - len(prefix))
    qualified = predicate
    for start in sorted(columns, reverse=True):
        qualified = f"{qualified[:start]}{ROWS_ALIAS}.{qualified[start:]}"
    return qualified, claims


def _bound(
    predicate: str, dialect: DatasourceType, claims: Mapping[str, ClaimValue], values: dict[str, Any]
) -> str:
    """The predicate with each claim written as the engine's placeholder (a list's as one per item, an
    empty list as `(NULL)`, which matches no row), adding the values to `values`."""
    placeholder = engine(dialect).placeholder

    def written(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in claims:
            raise SqlNotAllowed(f"a row policy needs the claim {name!r}, which this caller does not carry")
        value = claims[name]
        if isinstance(value, list):
            if not value:
                return "(NULL)"
            names = [f"{CLAIM_PREFIX}{name}__{index}" for index in range(len(value))]
            values.update(zip(names, value, strict=True))
            return "(" + ", ".join(placeholder(item) for item in names) + ")"
        values[f"{CLAIM_PREFIX}{name}"] = value
        return placeholder(f"{CLAIM_PREFIX}{name}")

    return CLAIM.sub(written, predicate)


def _matches(table: exp.Table, policy: TableName, dialect: DatasourceType) -> bool:
    """Whether the reference may be the policy's table: same name, and the same schema or none (an
    unqualified name may resolve to it through the search path, so it is taken to)."""
    if not isinstance(table.this, exp.Identifier) or _folded(table.this, dialect) != policy.name:
        return False
    schema = table.args.get("db")
    return not isinstance(schema, exp.Identifier) or _folded(schema, dialect) == policy.schema


def _span(table: exp.Table) -> tuple[int, int]:
    """Where the table's (possibly qualified) name is written: first and last character."""
    parts = [part for part in (table.args.get(key) for key in ("catalog", "db", "this")) if part is not None]
    starts = [part.meta.get("start") for part in parts]
    end = table.this.meta.get("end")
    if any(start is None for start in starts) or end is None:
        raise PolicyNotApplicable("the SQL names a table with a row policy in a way the rewriter cannot read")
    return min(start for start in starts if start is not None), end


def _cte_reference(table: exp.Table, ctes: set[str]) -> bool:
    return table.args.get("db") is None and table.name.lower() in ctes


def apply(
    sql: str,
    dialect: DatasourceType,
    filters: Sequence[RowFilter],
    claims: Mapping[str, ClaimValue],
    refused: Collection[TableName] = (),
) -> tuple[str, dict[str, Any]]:
    """`sql` (a statement the guard accepted, its values as the engine's placeholders) with every
    reference to a filtered table replaced by `(SELECT * FROM table AS loupe_policy_rows WHERE
    predicates) AS alias`, and the claims' values by their placeholders' names. A table with several
    policies keeps the rows every one of them lets through. A reference to a `refused` relation (one
    that reads a filtered table's rows unfiltered: a view over it, a child of it) is refused."""
    if not filters:
        return sql, {}
    neutral, shifts = neutralised(sql, dialect)
    try:
        statement = sqlglot.parse_one(neutral, read=_dialect(dialect))
    except (ParseError, TokenError):
        raise PolicyNotApplicable("the rewriter cannot read this SQL, and a row policy applies") from None
    values: dict[str, Any] = {}
    by_table: dict[TableName, list[str]] = {}
    for row_filter in filters:
        qualified, _ = checked_predicate(row_filter.predicate, dialect)
        by_table.setdefault(row_filter.table, []).append(f"({_bound(qualified, dialect, claims, values)})")
    for table in statement.find_all(exp.Table):
        if any(_matches(table, name, dialect) for name in refused):
            raise PolicyNotApplicable(
                f"the SQL reads {table.name[:40]}, which reads a table with a row policy without it"
                " (a view over it, or a child of it): give it a row policy of its own"
            )
    every = [table for table in statement.find_all(exp.Table) if _covered_by(table, by_table, dialect)]
    wrapped: dict[int, exp.Table] = {}
    named_ctes: set[int] = set()
    for scope in traverse_scope(statement):
        ctes = {name.lower() for name in scope.cte_sources}
        for table in scope.tables:
            if not _covered_by(table, by_table, dialect):
                continue
            if _cte_reference(table, ctes):
                named_ctes.add(id(table))
            else:
                wrapped[id(table)] = table
    # A reference is covered when it is wrapped, or when both sqlglot's scopes and the tree's own WITH
    # clauses say it names a common table expression; any other is refused rather than run unfiltered.
    for table in every:
        named_cte = id(table) in named_ctes and _is_cte_reference(table, dialect)
        if id(table) not in wrapped and not named_cte:
            raise PolicyNotApplicable(
                f"the SQL reads {table.name[:40]}, which has a row policy,"
                " where the rewriter cannot filter it"
            )
    rewritten = sql
    for table in sorted(wrapped.values(), key=lambda node: _span(node)[0], reverse=True):
        first, last = _span(table)
        start, end = first + shifts(first), last + shifts(last) + 1
        written = rewritten[start:end]
        # An unqualified name may be any schema's table of that name: every such table's policies hold.
        predicates = " AND ".join(
            predicate
            for name, listed in by_table.items()
            if _matches(table, name, dialect)
            for predicate in listed
        )
        alias = "" if table.alias else f" AS {table.this.sql(dialect=_dialect(dialect))}"
        # The text as written around the wrapped name; the predicates' values are bound.
        filtered = f"(SELECT * FROM {written} AS {ROWS_ALIAS} WHERE {predicates}){alias}"  # noqa: S608
        rewritten = f"{rewritten[:start]}{filtered}{rewritten[end:]}"
    return rewritten, values


def _covered_by(table: exp.Table, by_table: Mapping[TableName, list[str]], dialect: DatasourceType) -> bool:
    return any(_matches(table, name, dialect) for name in by_table)


def _same_name(written: exp.Identifier, defined: exp.Identifier, dialect: DatasourceType) -> bool:
    """Whether a table reference names a common table expression: PostgreSQL folds unquoted names,
    DuckDB ignores case, and MySQL is taken at its word (its names may be case-sensitive)."""
    if dialect == "postgres":
        return _folded(written, dialect) == _folded(defined, dialect)
    if dialect == "duckdb":
        return written.name.lower() == defined.name.lower()
    return written.name == defined.name


def _is_cte_reference(table: exp.Table, dialect: DatasourceType) -> bool:
    """Whether an unqualified name is a common table expression of an enclosing query's WITH clause;
    sqlglot's scopes place it (which CTEs a name can see), this confirms the name is the CTE's."""
    if table.args.get("db") is not None or not isinstance(table.this, exp.Identifier):
        return False
    node: exp.Expr | None = table.parent
    while node is not None:
        with_clause = node.args.get("with_") if isinstance(node, exp.Query) else None
        if isinstance(with_clause, exp.With) and any(
            isinstance(cte.args.get("alias"), exp.TableAlias)
            and isinstance(cte.args["alias"].this, exp.Identifier)
            and _same_name(table.this, cte.args["alias"].this, dialect)
            for cte in with_clause.expressions
        ):
            return True
        node = node.parent
    return False
