"""Placeholders and declared parameters: properties over generated SQL and parameter sets."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from loupe.errors import FieldIssue, InvalidInput
from loupe.models.queries import QueryCreate, QueryParameter
from loupe.services import query_parameters

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,62}", fullmatch=True)
# SQL between placeholders: anything without braces, so no accidental placeholder appears.
sql_text = st.text(st.characters(blacklist_characters="{}", blacklist_categories=["Cs"]), max_size=30)
spaces = st.sampled_from(["", " ", "  ", "\n", "\t "])
dates = st.dates().map(lambda day: day.isoformat())
datetimes = st.datetimes().map(lambda moment: moment.isoformat(timespec="seconds") + "Z")


@st.composite
def sql_using(draw: st.DrawFn, used: list[str]) -> str:
    """SQL that uses each name at least once, in some order, some more than once, spaced variously."""
    uses = used + draw(st.lists(st.sampled_from(used), max_size=5)) if used else []
    uses = draw(st.permutations(uses))
    parts = ["SELECT ", draw(sql_text)]
    for name in uses:
        parts.append("{{" + draw(spaces) + name + draw(spaces) + "}}")
        parts.append(draw(sql_text))
    return "".join(parts)


@st.composite
def parameter(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """A valid declaration: a type and, maybe, a default of that type."""
    kind = draw(st.sampled_from(["text", "number", "date", "datetime", "boolean", "enum"]))
    declared: dict[str, Any] = {"name": name, "type": kind, "required": draw(st.booleans())}
    if kind == "enum":
        declared["options"] = draw(
            st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=5, unique=True)
        )
    defaults = {
        "text": st.text(max_size=50),
        "number": st.integers() | st.floats(allow_nan=False, allow_infinity=False),
        "date": dates,
        "datetime": datetimes,
        "boolean": st.booleans(),
        "enum": st.sampled_from(declared.get("options") or [""]),
    }
    if draw(st.booleans()):
        declared["default"] = draw(defaults[kind])
    return declared


@st.composite
def matching(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    used = draw(st.lists(names, max_size=6, unique=True))
    return draw(sql_using(used)), [draw(parameter(name)) for name in used]


def body(sql: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "q", "datasource_id": str(uuid.uuid4()), "sql": sql, "parameters": parameters}


@given(
    st.lists(names, max_size=8, unique=True).flatmap(lambda used: st.tuples(st.just(used), sql_using(used)))
)
def test_placeholders_found_are_the_names_used(case: tuple[list[str], str]) -> None:
    used, sql = case
    assert set(query_parameters.placeholders(sql)) == set(used)
    assert len(query_parameters.placeholders(sql)) == len(used)
    assert query_parameters.malformed_placeholders(sql) == []


@given(matching())
def test_valid_parameter_sets_are_accepted(case: tuple[str, list[dict[str, Any]]]) -> None:
    sql, parameters = case
    query = QueryCreate.model_validate(body(sql, parameters))
    assert query_parameters.mismatches(query.sql, [p.name for p in query.parameters]) == []
    query_parameters.require_match(query.sql, [p.name for p in query.parameters])


@given(matching(), names)
def test_an_undeclared_placeholder_is_rejected(case: tuple[str, list[dict[str, Any]]], extra: str) -> None:
    sql, parameters = case
    declared = [p["name"] for p in parameters]
    if extra in declared:
        return
    details = query_parameters.mismatches(sql + " {{ " + extra + " }}", declared)
    assert details == [FieldIssue("sql", f"{{{{ {extra} }}}} is used but not declared in parameters")]
    with pytest.raises(InvalidInput):
        query_parameters.require_match(sql + "{{" + extra + "}}", declared)


@given(matching(), names)
def test_an_unused_parameter_is_rejected(case: tuple[str, list[dict[str, Any]]], extra: str) -> None:
    sql, parameters = case
    declared = [p["name"] for p in parameters]
    if extra in declared:
        return
    details = query_parameters.mismatches(sql, [*declared, extra])
    assert [detail.field for detail in details] == [f"parameters.{len(declared)}.name"]


@given(matching().filter(lambda case: bool(case[1])), st.data())
def test_dropping_a_placeholder_from_the_sql_is_rejected(
    case: tuple[str, list[dict[str, Any]]], data: st.DataObject
) -> None:
    _, parameters = case
    declared = [p["name"] for p in parameters]
    dropped = data.draw(st.sampled_from(declared))
    sql = data.draw(sql_using([name for name in declared if name != dropped]))
    details = query_parameters.mismatches(sql, declared)
    assert details == [
        FieldIssue(
            f"parameters.{declared.index(dropped)}.name", f"{dropped!r} is declared but not used in sql"
        )
    ]


@pytest.mark.parametrize("text", ["{{}}", "{{ }}", "{{ 1st }}", "{{ a-b }}", "{{ a b }}"])
def test_malformed_placeholders_are_reported(text: str) -> None:
    assert query_parameters.malformed_placeholders(f"SELECT {text}") == [text]
    assert query_parameters.placeholders(f"SELECT {text}") == []
    assert query_parameters.mismatches(f"SELECT {text}", [])[0].field == "sql"


@given(
    st.sampled_from(["text", "number", "boolean"]),
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30)),
)
def test_a_default_is_accepted_exactly_when_it_fits_the_type(kind: str, default: Any) -> None:
    fits = (
        default is None
        or {
            "text": isinstance(default, str),
            "number": isinstance(default, int | float)
            and not isinstance(default, bool)
            and abs(default) != float("inf"),
            "boolean": isinstance(default, bool),
        }[kind]
    )
    declared = {"name": "p", "type": kind, "default": default}
    if fits:
        assert QueryParameter.model_validate(declared).default == default
    else:
        with pytest.raises(ValidationError) as raised:
            QueryParameter.model_validate(declared)
        assert [issue["loc"] for issue in raised.value.errors()] == [("default",)]


@given(dates, datetimes)
def test_dates_and_datetimes_in_iso_form_are_accepted(day: str, moment: str) -> None:
    assert QueryParameter.model_validate({"name": "d", "type": "date", "default": day}).default == day
    assert (
        QueryParameter.model_validate({"name": "t", "type": "datetime", "default": moment}).default == moment
    )
    with pytest.raises(ValidationError):
        QueryParameter.model_validate({"name": "d", "type": "date", "default": moment})
    with pytest.raises(ValidationError):
        QueryParameter.model_validate({"name": "t", "type": "datetime", "default": day})


@given(st.lists(names, min_size=1, max_size=5))
def test_repeated_names_are_rejected(declared: list[str]) -> None:
    repeated = [*declared, declared[0]]
    sql = " ".join("{{" + name + "}}" for name in repeated)
    with pytest.raises(ValidationError) as raised:
        QueryCreate.model_validate(body(sql, [{"name": name, "type": "text"} for name in repeated]))
    assert raised.value.errors()[0]["loc"] == ("parameters",)


def test_a_list_value_expands_to_one_placeholder_per_value() -> None:
    sql, values = query_parameters.expanded(
        "SELECT 1 WHERE a IN {{ ids }} AND b = {{ b }} AND c IN {{ none }}",
        {"ids": [3, 4], "b": 1, "none": []},
    )
    assert sql == "SELECT 1 WHERE a IN ({{ ids__0 }}, {{ ids__1 }}) AND b = {{ b }} AND c IN (NULL)"
    assert values == {"b": 1, "ids__0": 3, "ids__1": 4}


def test_a_list_whose_element_names_collide_with_a_value_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        query_parameters.expanded("SELECT {{ ids }}, {{ ids__0 }}", {"ids": [1], "ids__0": 2})
    assert refused.value.issues[0].field == "parameters.ids__0"
