"""The drawing rule and the Vega-Lite specification of each type, from rows in memory: what is kept,
folded, sampled or cut, and said so; and the dashboard page's layout and escaping."""

from __future__ import annotations

import time
from typing import Any

import pytest

from loupe.charts import engine, sampling
from loupe.charts.page import PlacedTile, dashboard_page, page_height, plain_lines, tile_size
from loupe.charts.specs import (
    UndrawableResult,
    field_kind,
    formatted,
    label_expression,
    vega_lite,
)
from loupe.connectors import Column
from loupe.models.visualizations import Formatting, VisualizationType

COLUMNS = [Column("day", "date"), Column("region", "text"), Column("revenue", "numeric"), Column("n", "int8")]


def spec(
    kind: VisualizationType, options: dict[str, Any], rows: list[list[Any]], **size: int
) -> dict[str, Any]:
    return vega_lite(
        kind,
        options,
        COLUMNS,
        iter(rows),
        len(rows),
        title="T",
        width=size.get("width", 800),
        height=size.get("height", 450),
    )


def sales(count: int) -> list[list[Any]]:
    regions = ("emea", "amer", "apac")
    return [[f"2026-01-{1 + n % 28:02d}", regions[n % 3], str(n), n] for n in range(count)]


@pytest.mark.parametrize(
    ("engine_type", "kind"),
    [
        ("timestamptz", "temporal"),
        ("DATETIME", "temporal"),
        ("date", "temporal"),
        ("interval", "nominal"),
        ("int4", "quantitative"),
        ("DECIMAL", "quantitative"),
        ("double precision", "quantitative"),
        ("text", "nominal"),
        ("uuid", "nominal"),
    ],
)
def test_a_column_is_measured_by_its_engine_type(engine_type: str, kind: str) -> None:
    assert field_kind(engine_type) == kind


def test_numbers_are_formatted_as_the_options_say() -> None:
    assert formatted(1234567.891, Formatting(decimals=2, prefix="€")) == "€1,234,567.89"
    assert formatted(1234567.0, Formatting(thousands_separator=False, suffix=" u")) == "1234567 u"
    assert formatted(None, Formatting()) == "—"
    # Prefix and suffix are string literals of the Vega expression, whatever they hold.
    expression = label_expression(Formatting(prefix='"+alert(1)+"', decimals=1))
    assert expression == '"\\"+alert(1)+\\"" + format(datum.value, ",.1f") + ""'


def test_a_line_within_the_bound_draws_every_row_and_each_group_as_a_series() -> None:
    drawn = spec("line", {"x": "day", "y": [{"column": "revenue"}], "group_by": "region"}, sales(30))
    values = drawn["data"]["values"]
    assert len(values) == 30
    assert {value["series"] for value in values} == {"emea", "amer", "apac"}
    assert drawn["encoding"]["x"]["type"] == "temporal"
    assert "subtitle" not in drawn["title"]
    assert (drawn["width"], drawn["height"]) == (800, 450)
    assert drawn["autosize"] == {"type": "fit", "contains": "padding"}


def test_points_over_the_bound_are_sampled_evenly_and_the_chart_says_so() -> None:
    drawn = spec("scatter", {"x": "n", "y": [{"column": "revenue"}]}, sales(12_001))
    values = drawn["data"]["values"]
    assert [value["x"] for value in values[:3]] == [0, 3, 6]
    assert len(values) == 4001
    assert drawn["title"]["subtitle"] == "every 3th of 12,001 rows drawn"


def test_an_aggregated_bar_folds_rows_into_groups() -> None:
    rows = [
        ["2026-01-01", region, str(amount), 1]
        for region, amount in [("a", 1), ("b", 2), ("a", 3), ("b", "x")]
    ]
    for aggregation, expected in [
        ("sum", [4, 2]),
        ("count", [2, 2]),
        ("avg", [2, 2]),
        ("min", [1, 2]),
        ("max", [3, 2]),
    ]:
        drawn = spec("bar", {"x": "region", "y": [{"column": "revenue"}], "aggregation": aggregation}, rows)
        assert [value["value"] for value in drawn["data"]["values"]] == expected, aggregation


def test_groups_beyond_the_bound_are_left_out_and_said_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sampling, "MAX_GROUPS", 5)
    drawn = spec("bar", {"x": "n", "y": [{"column": "revenue"}], "aggregation": "sum"}, sales(8))
    assert len(drawn["data"]["values"]) == 5
    assert "groups beyond the first 5 left out" in drawn["title"]["subtitle"]


def test_reading_stops_at_the_row_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sampling, "MAX_READ_ROWS", 10)
    drawn = spec("counter", {"value": "n", "aggregation": "count"}, sales(25))
    assert drawn["data"]["values"][0]["text"] == "10"
    assert drawn["title"]["subtitle"] == "drawn from the first 10 of 25 rows"


def test_a_pie_keeps_its_largest_slices_and_sums_the_rest_as_other() -> None:
    rows = [["2026-01-01", f"r{n}", str(n + 1), n] for n in range(20)]
    drawn = spec("pie", {"label": "region", "value": "revenue"}, rows)
    slices = drawn["data"]["values"]
    assert [item["label"] for item in slices[:3]] == ["r19", "r18", "r17"]
    assert slices[-1] == {
        "label": "Other",
        "value": sum(range(1, 10)),
        "text": "45",
        "share": pytest.approx(45 / 210),
    }
    assert len(slices) == sampling.MAX_SLICES
    assert "9 smaller slices summed as Other" in drawn["title"]["subtitle"]


def test_a_counter_compares_with_its_target() -> None:
    rows = [["2026-01-01", "emea", "150", 100], ["2026-01-02", "emea", "50", 100]]
    drawn = spec(
        "counter", {"value": "revenue", "target": "n", "aggregation": "sum", "title": "Revenue"}, rows
    )
    texts = [line["text"] for line in drawn["data"]["values"]]
    assert texts == ["Revenue", "200", "target 200 (+0.0%)"]
    first = spec("counter", {"value": "revenue"}, rows)
    assert first["data"]["values"][0]["text"] == "150"


def test_a_table_shows_the_rows_that_fit_with_each_column_formatted() -> None:
    options = {
        "columns": [
            {"column": "revenue", "label": "Revenue", "formatting": {"prefix": "$"}},
            {"column": "n", "visible": False},
        ]
    }
    drawn = spec("table", options, sales(100), height=260)
    cells = drawn["data"]["values"]
    assert drawn["encoding"]["x"]["sort"] == ["day", "region", "Revenue"]
    assert {cell["row"] for cell in cells} == set(range(10))
    assert cells[2] == {"row": 0, "column": "Revenue", "text": "$0"}
    assert drawn["title"]["subtitle"] == "the first 10 of 100 rows shown"


def test_a_pivot_totals_its_rows_and_columns_last() -> None:
    rows = [["d", region, "1", n % 2] for n, region in enumerate(["a", "b", "a", "b", "a"])]
    drawn = spec("pivot", {"rows": ["region"], "columns": ["n"], "values": ["revenue"]}, rows)
    cells = {(cell["row"], cell["column"]): cell["text"] for cell in drawn["data"]["values"]}
    assert drawn["encoding"]["y"]["sort"] == ["a", "b", "Total"]
    assert drawn["encoding"]["x"]["sort"] == ["0", "1", "Total"]
    assert cells[("a", "0")] == "3"
    assert cells[("b", "1")] == "2"
    assert cells[("Total", "Total")] == "5"
    assert cells[("a", "Total")] == "3"
    shades = {(cell["row"], cell["column"]): cell["shade"] for cell in drawn["data"]["values"]}
    assert shades[("Total", "0")] is None
    assert shades[("a", "0")] == 3


def test_series_on_the_right_axis_get_a_scale_of_their_own() -> None:
    options = {"x": "day", "y": [{"column": "revenue"}, {"column": "n", "axis": "right", "color": "#ff0000"}]}
    drawn = spec("line", options, sales(5))
    _left, right = drawn["layer"]
    assert drawn["resolve"] == {"scale": {"y": "independent"}}
    assert right["encoding"]["y"]["axis"]["orient"] == "right"
    assert right["encoding"]["color"]["scale"] == {
        "domain": ["revenue", "n"],
        "range": ["#4c78a8", "#ff0000"],
    }


def test_a_horizontal_stacked_bar_swaps_its_axes() -> None:
    options = {
        "x": "region",
        "y": [{"column": "revenue"}, {"column": "n"}],
        "stacked": True,
        "horizontal": True,
    }
    drawn = spec("bar", options, sales(6))
    assert drawn["encoding"]["y"]["field"] == "x"
    assert drawn["encoding"]["x"]["field"] == "value"
    assert drawn["encoding"]["x"]["stack"] == "zero"
    assert "yOffset" not in drawn["encoding"]
    assert "xOffset" not in drawn["encoding"]


def test_options_naming_a_column_the_result_lacks_are_refused() -> None:
    with pytest.raises(UndrawableResult, match="'month'"):
        spec("line", {"x": "month", "y": [{"column": "revenue"}]}, sales(3))


def test_a_dashboard_page_places_each_tile_by_the_grid_and_lists_the_filters() -> None:
    tiles = [
        PlacedTile(0, 0, 6, 4, svg='<svg width="10" height="10"></svg>'),
        PlacedTile(6, 0, 6, 4, message="No stored result <yet>"),
        PlacedTile(0, 4, 12, 2, text="# Notes & more\nA [link](https://example.com) and **bold**."),
    ]
    page = dashboard_page("Sales <Q4>", ["region: emea, apac"], tiles, 1200)
    assert page.startswith('<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="440"')
    assert page_height(tiles) == 440
    assert '<svg x="16.0" y="64.0" width="580.0" height="232.0"><svg width="10" height="10">' in page
    assert ">Sales &lt;Q4&gt;<" in page
    assert ">Filters: region: emea, apac<" in page
    assert ">No stored result &lt;yet&gt;<" in page
    assert ">Notes &amp; more<" in page
    assert ">A link and bold.<" in page
    assert tile_size(1200, tiles[0]) == (580, 232)
    assert plain_lines("word " * 30, 20)[0] == "word word word word"


def test_a_drawing_that_overruns_its_time_is_a_422(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "DRAW_SECONDS", 0.05)

    class Slow:
        @staticmethod
        def vegalite_to_svg(spec: dict[str, Any], allowed_base_urls: list[str]) -> str:
            time.sleep(0.5)
            return "<svg/>"

    monkeypatch.setattr(engine, "_vl_convert", lambda: Slow)
    with pytest.raises(engine.TooSlowToDraw, match=r"did not draw within 0\.05 s"):
        engine.to_svg({})


def test_characters_xml_cannot_hold_are_replaced_before_drawing() -> None:
    rows = [["2026-01-01", "a\x0bb\x1bc\ufffe", "1", 1]]
    drawn = spec("bar", {"x": "region", "y": [{"column": "revenue"}]}, rows)
    svg = engine.to_svg(drawn)
    assert "a\ufffdb\ufffdc\ufffd" in svg
    assert engine.clean({"t\x00": ["\x08ok\t\n"]}) == {"t\ufffd": ["\ufffdok\t\n"]}


def test_json_cells_group_by_their_json_text() -> None:
    rows = [["d", [1, 2], "3", 1], ["d", [1, 2], "4", 1], ["d", {"k": 1}, "5", 1]]
    drawn = spec("bar", {"x": "region", "y": [{"column": "revenue"}], "aggregation": "sum"}, rows)
    assert [(value["x"], value["value"]) for value in drawn["data"]["values"]] == [
        ("[1, 2]", 7),
        ('{"k": 1}', 5),
    ]


def test_the_point_bound_counts_every_series() -> None:
    many = [{"column": "revenue"}, {"column": "n", "label": "count"}]
    rows = [["d", "r", str(n), n] for n in range(12_000)]
    drawn = spec("line", {"x": "n", "y": many}, rows)
    assert len(drawn["data"]["values"]) <= sampling.MAX_POINTS
    assert {value["series"] for value in drawn["data"]["values"]} == {"revenue", "count"}

    by_x = [["d", "r", str(n), n % 600] for n in range(1200)]
    summed = spec("bar", {"x": "n", "y": many, "aggregation": "sum"}, by_x)
    values = summed["data"]["values"]
    assert {value["series"] for value in values} == {"revenue", "count"}
    assert len(values) <= sampling.MAX_BARS
    assert {value["x"] for value in values if value["series"] == "revenue"} == {
        value["x"] for value in values if value["series"] == "count"
    }
