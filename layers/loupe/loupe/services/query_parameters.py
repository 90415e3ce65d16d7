"""`{{ name }}` placeholders in a saved query's SQL, and the rule that they match its declared parameters
one to one (a placeholder nobody declared, or a declared parameter nobody uses, is a 422)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from loupe.errors import FieldIssue, InvalidInput
from loupe.models.queries import RANGE_PARTS, value_issue

# Anything between double braces is meant as a placeholder; its inside must then be an identifier, or a
# range parameter's end (`period.from`).
PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\.(from|to))?")


def _uses(sql: str) -> list[tuple[str, str | None]]:
    """Each well-formed placeholder of `sql` as (name, range end or None), in order."""
    found = []
    for match in PLACEHOLDER.finditer(sql):
        name = NAME.fullmatch(match.group(1).strip())
        if name is not None:
            found.append((name.group(1), name.group(2)))
    return found


def placeholders(sql: str) -> list[str]:
    """The distinct parameter names `sql` uses, in order of first use (`period.from` uses `period`)."""
    return list(dict.fromkeys(name for name, _ in _uses(sql)))


def malformed_placeholders(sql: str) -> list[str]:
    """Double-brace groups whose inside is not a name, such as `{{ 1st }}` or `{{}}`."""
    return [
        match.group(0) for match in PLACEHOLDER.finditer(sql) if not NAME.fullmatch(match.group(1).strip())
    ]


def mismatches(sql: str, declared: Sequence[str], ranges: frozenset[str] = frozenset()) -> list[FieldIssue]:
    """The issues of every way `sql` and the declared parameter names disagree (`ranges`: those of a
    range type, used by their ends only); empty when they match."""
    details: list[FieldIssue] = [
        FieldIssue("sql", f"{text} is not a placeholder: use {{{{ name }}}} with an identifier")
        for text in malformed_placeholders(sql)
    ]
    for name, end in dict.fromkeys(_uses(sql)):
        if end is None and name in ranges:
            details.append(
                FieldIssue(
                    "sql", f"{{{{ {name} }}}} is a range: use {{{{ {name}.from }}}} and {{{{ {name}.to }}}}"
                )
            )
        elif end is not None and name in declared and name not in ranges:
            details.append(
                FieldIssue("sql", f"{{{{ {name}.{end} }}}}: only a range parameter has from and to")
            )
    used = placeholders(sql)
    details.extend(
        FieldIssue("sql", f"{{{{ {name} }}}} is used but not declared in parameters")
        for name in used
        if name not in declared
    )
    details.extend(
        FieldIssue(f"parameters.{index}.name", f"{name!r} is declared but not used in sql")
        for index, name in enumerate(declared)
        if name not in used
    )
    return details


def require_match(sql: str, declared: Sequence[str], ranges: frozenset[str] = frozenset()) -> None:
    """Raise a 422 naming each mismatch between the SQL's placeholders and the declared parameters."""
    details = mismatches(sql, declared, ranges)
    if details:
        raise InvalidInput("The SQL's placeholders and the declared parameters differ", issues=details)


def checked_parameters(declared: list[dict[str, Any]], given: Mapping[str, Any]) -> dict[str, Any]:
    """The values, once each names a parameter the query declares with a value of its type, and every
    required parameter without a default has one."""
    by_name = {parameter["name"]: parameter for parameter in declared}
    details: list[FieldIssue] = []
    for name, value in given.items():
        parameter = by_name.get(name)
        issue = (
            "the query declares no such parameter"
            if parameter is None
            else value_issue(
                parameter["type"], parameter.get("options"), value, parameter.get("multi", False)
            )
        )
        if issue is not None:
            details.append(FieldIssue(f"parameters.{name}", issue))
    details.extend(
        FieldIssue(f"parameters.{name}", "required: the query gives it no default")
        for name, parameter in by_name.items()
        if parameter.get("required") and parameter.get("default") is None and name not in given
    )
    if details:
        raise InvalidInput("The parameters do not fit the query", issues=details)
    return dict(given)


# Checked values arrive as JSON; these give the driver the declared type, so a date is bound as a date
# wherever it is used (a string would be typed by its first use: "inconsistent types deduced").
_TYPED: dict[str, Any] = {
    "date": date.fromisoformat,
    "datetime": datetime.fromisoformat,
    "date_range": date.fromisoformat,
    "datetime_range": datetime.fromisoformat,
}


def typed_values(values: Mapping[str, Any], types: Mapping[str, str]) -> dict[str, Any]:
    """Each value (each of a list's) as the Python type of its declared parameter type (dates and times
    as such)."""

    def typed(value: Any, convert: Callable[[str], Any] | None) -> Any:
        if isinstance(value, list):
            return [typed(item, convert) for item in value]
        if isinstance(value, dict):
            return {part: typed(end, convert) if part in RANGE_PARTS else end for part, end in value.items()}
        return convert(value) if convert is not None and value is not None else value

    return {name: typed(value, _TYPED.get(types.get(name, ""))) for name, value in values.items()}


def expanded(sql: str, values: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The SQL with each placeholder of a list value written as a parenthesized list of placeholders, one
    per value (`{{ regions }}` → `({{ regions__0 }}, {{ regions__1 }})`; an empty list → `(NULL)`, which
    matches no row) and each range end as a placeholder of its own (`{{ period.from }}` →
    `{{ period__from }}`), and the values by the names then used."""
    flat: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, list):
            parts = {f"{name}__{index}": item for index, item in enumerate(value)}
        elif isinstance(value, dict):
            parts = {f"{name}__{part}": value[part] for part in RANGE_PARTS if part in value}
        else:
            parts = {name: value}
        collisions = sorted(set(parts) & set(values) - {name})
        if collisions:
            raise InvalidInput(
                "The parameters' names collide",
                issues=[
                    FieldIssue(f"parameters.{element}", f"is also a part of {name!r}")
                    for element in collisions
                ],
            )
        flat.update(parts)

    def written(match: re.Match[str]) -> str:
        found = NAME.fullmatch(match.group(1).strip())
        if found is None:
            return match.group(0)
        name, end = found.groups()
        value = values.get(name)
        if end is not None:
            return f"{{{{ {name}__{end} }}}}"
        if not isinstance(value, list):
            return match.group(0)
        if not value:
            return "(NULL)"
        return "(" + ", ".join(f"{{{{ {name}__{index} }}}}" for index in range(len(value))) + ")"

    return PLACEHOLDER.sub(written, sql), flat
