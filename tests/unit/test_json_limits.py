"""The body shape check reads brackets and numbers outside strings only, and stops at its limits."""

from __future__ import annotations

import json

import pytest

from loupe.api.json_limits import MAX_DEPTH, MAX_NUMBER_CHARS, shape_problem


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "text",
    [
        nested(MAX_DEPTH),
        json.dumps({"a": "[" * 1000, "b": '"{{{{\\"' * 50}),
        json.dumps({"n": -(10 ** (MAX_NUMBER_CHARS - 2))}),
        json.dumps({"n": "9" * 10_000}),
        '{"unterminated": "[[[[',
        "",
    ],
)
def test_acceptable_shapes(text: str) -> None:
    assert shape_problem(text) is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (nested(MAX_DEPTH + 1), "deeper"),
        ('{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1), "deeper"),
        ('["\\"", ' + "[" * 100 + "]", "deeper"),
        (json.dumps({"n": 10**MAX_NUMBER_CHARS}), "longer"),
        ("[1e" + "9" * MAX_NUMBER_CHARS + "]", "longer"),
    ],
)
def test_refused_shapes(text: str, problem: str) -> None:
    assert problem in (shape_problem(text) or "")
