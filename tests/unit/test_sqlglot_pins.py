"""The sqlglot parser internals the SQL guard hooks (loupe.security.sql_guard._parse), pinned: each
test fails on an upgrade that changes one of them, before a guard that no longer sees the calls it
judges reaches production (it would refuse too much, never too little: an unmarked function node is
refused).

sqlglot offers no public hook for these: the parser method every function call goes through, the
validation each built node goes through with the arguments it was given, and the parser's token list
and position, from which the guard reads the name each call was written with."""

from __future__ import annotations

import inspect
from importlib import metadata
from typing import Any

import pytest
import sqlglot
from sqlglot.parser import Parser

from loupe.security import sql_guard

PINNED_SQLGLOT = "30.30.0"


def test_the_sqlglot_version_is_the_one_these_pins_were_read_from() -> None:
    assert metadata.version("sqlglot") == PINNED_SQLGLOT, (
        "read sql_guard._parse against the new sqlglot, then move the pin"
    )


def test_function_calls_go_through_parse_function_call() -> None:
    assert callable(getattr(Parser, "_parse_function_call", None))
    parser = sqlglot.Dialect.get_or_raise("postgres").parser()
    seen: list[int] = []
    read_call = parser._parse_function_call

    def counting(*args: Any, **kwargs: Any) -> Any:
        seen.append(parser._index)
        return read_call(*args, **kwargs)

    parser._parse_function_call = counting  # type: ignore[method-assign]
    sql = "SELECT upper(a), lower(b) FROM t"
    parser.parse(sqlglot.Dialect.get_or_raise("postgres").tokenize(sql), sql)
    names = {parser._tokens[index].text for index in seen if index < len(parser._tokens)}
    assert {"upper", "lower"} <= names


def test_validate_expression_takes_the_node_and_its_arguments() -> None:
    parameters = list(inspect.signature(Parser.validate_expression).parameters)
    assert parameters[:3] == ["self", "expression", "args"]


def test_the_guard_judges_calls_by_the_name_written() -> None:
    # The guard's own behaviour that depends on the hooks: ucase is an Upper node in sqlglot, and not
    # a PostgreSQL function; a guard that lost its hooks would take it for upper.
    assert sql_guard.check("SELECT upper(a) FROM t", "postgres").sql
    with pytest.raises(sql_guard.SqlNotAllowed, match="ucase"):
        sql_guard.check("SELECT ucase(a) FROM t", "postgres")
