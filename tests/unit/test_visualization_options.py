"""The options model of each visualization type: defaults, the columns charts need, and the 422 details."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loupe.errors import InvalidInput
from loupe.models.visualizations import OPTIONS_BY_TYPE, VisualizationType
from loupe.services.visualizations import checked_options

columns = st.text(min_size=1, max_size=40)
series = st.lists(
    st.builds(lambda column: {"column": column}, columns), min_size=1, max_size=5, unique_by=str
)

MINIMAL: dict[str, dict[str, Any]] = {
    "table": {},
    "pivot": {},
    "line": {"x": "day", "y": [{"column": "n"}]},
    "bar": {"x": "day", "y": [{"column": "n"}]},
    "area": {"x": "day", "y": [{"column": "n"}]},
    "scatter": {"x": "day", "y": [{"column": "n"}]},
    "pie": {"label": "region", "value": "n"},
    "counter": {"value": "n"},
}


def issues(kind: VisualizationType, options: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidInput) as raised:
        checked_options(kind, options)
    return {detail.field: detail.issue for detail in raised.value.issues}


def test_every_type_has_an_options_model() -> None:
    assert set(OPTIONS_BY_TYPE) == set(get_args(VisualizationType)) == set(MINIMAL)


@pytest.mark.parametrize("kind", sorted(MINIMAL))
def test_minimal_options_get_every_default(kind: VisualizationType) -> None:
    filled = checked_options(kind, MINIMAL[kind])
    assert set(filled) == set(OPTIONS_BY_TYPE[kind].model_fields)
    assert checked_options(kind, filled) == filled


@pytest.mark.parametrize(
    ("kind", "needed"),
    [
        ("line", {"x", "y"}),
        ("bar", {"x", "y"}),
        ("area", {"x", "y"}),
        ("scatter", {"x", "y"}),
        ("pie", {"label", "value"}),
        ("counter", {"value"}),
    ],
)
def test_charts_name_the_columns_they_need(kind: VisualizationType, needed: set[str]) -> None:
    found = issues(kind, {})
    assert set(found) == {f"options.{name}" for name in needed}
    assert all(issue == "Field required" for issue in found.values())


def test_details_name_nested_fields() -> None:
    found = issues("bar", {"x": "d", "y": [{"column": "n", "color": "blue"}], "x_axis": {"scale": "cubic"}})
    assert set(found) == {"options.y.0.color", "options.x_axis.scale"}


def test_unknown_options_are_refused() -> None:
    assert "options.stacked" in issues("line", {**MINIMAL["line"], "stacked": True})
    assert "options.columns.0.width" in issues("table", {"columns": [{"column": "a", "width": 3}]})


def test_axis_bounds_are_ordered() -> None:
    assert "options.y_axis" in issues("line", {**MINIMAL["line"], "y_axis": {"min": 1, "max": 1}})
    assert checked_options("line", {**MINIMAL["line"], "y_axis": {"min": 0, "max": 1}})["y_axis"]["max"] == 1


@given(st.sampled_from(["line", "bar", "area", "scatter"]), columns, series)
def test_cartesian_options_keep_their_columns(
    kind: VisualizationType, x: str, y: list[dict[str, str]]
) -> None:
    filled = checked_options(kind, {"x": x, "y": y})
    assert filled["x"] == x
    assert [item["column"] for item in filled["y"]] == [item["column"] for item in y]
    assert checked_options(kind, filled) == filled


@given(
    st.sampled_from(["line", "bar", "area", "scatter"]), columns, st.lists(columns, min_size=1, max_size=5)
)
def test_a_column_drawn_twice_is_refused(kind: VisualizationType, x: str, y: list[str]) -> None:
    repeated = [{"column": column} for column in [*y, y[0]]]
    assert "options.y" in issues(kind, {"x": x, "y": repeated})


@given(st.integers(min_value=-5, max_value=15))
def test_decimals_are_bounded(decimals: int) -> None:
    options = {"value": "n", "formatting": {"decimals": decimals}}
    if 0 <= decimals <= 10:
        assert checked_options("counter", options)["formatting"]["decimals"] == decimals
    else:
        assert "options.formatting.decimals" in issues("counter", options)
