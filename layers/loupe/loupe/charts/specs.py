"""The Vega-Lite specification of each visualization type, from its options and a result's rows.

Data travels inline under fixed field names (a column named `a.b` would be a nested path to Vega-Lite),
and every spec fits the requested width and height exactly, padding included.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from loupe.charts.sampling import (
    MAX_BARS,
    MAX_POINTS,
    MAX_SLICES,
    OTHER,
    Groups,
    Notes,
    evenly,
    number,
    read_bounded,
    sampled,
)
from loupe.connectors import Column
from loupe.errors import Conflict
from loupe.models.visualizations import (
    OPTIONS_BY_TYPE,
    Axis,
    BarOptions,
    CartesianOptions,
    CounterOptions,
    Formatting,
    LineOptions,
    Options,
    PieOptions,
    PivotOptions,
    ScatterOptions,
    TableOptions,
    VisualizationType,
)

VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
# Vega's own category palette: a series without a colour of its own takes the next one.
PALETTE = ("#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d")
TEMPORAL_WORDS = ("timestamp", "date", "time")
NUMERIC_WORDS = ("int", "numeric", "decimal", "float", "double", "real", "money", "serial", "number")
TABLE_ROW_PIXELS = 20
TABLE_HEADER_PIXELS = 60
TABLE_MAX_COLUMNS = 20
PIVOT_MAX_ROWS = 50
PIVOT_MAX_COLUMNS = 20
TOTAL = "Total"
INTERPOLATION = {"linear": "linear", "step": "step-after", "smooth": "monotone"}


class UndrawableResult(Conflict):
    """The options name a column the result lacks."""


def field_kind(column_type: str) -> str:
    """Vega-Lite's measurement type of a column, from its engine's type name."""
    lowered = column_type.lower()
    if "interval" in lowered:
        return "nominal"
    if any(word in lowered for word in TEMPORAL_WORDS):
        return "temporal"
    if any(word in lowered for word in NUMERIC_WORDS):
        return "quantitative"
    return "nominal"


def d3_format(formatting: Formatting) -> str:
    separator = "," if formatting.thousands_separator else ""
    return f"{separator}.{formatting.decimals}f" if formatting.decimals is not None else f"{separator}~f"


def formatted(value: float | None, formatting: Formatting) -> str:
    """A number as the options show it (prefix, separator, decimals, suffix)."""
    if value is None:
        return "—"
    separator = "," if formatting.thousands_separator else ""
    if formatting.decimals is not None:
        text = format(value, f"{separator}.{formatting.decimals}f")
    elif value == int(value) and abs(value) < 1e15:
        text = format(int(value), separator)
    else:
        text = format(value, f"{separator}.6g" if not separator else ",.6g")
    return f"{formatting.prefix}{text}{formatting.suffix}"


def label_expression(formatting: Formatting) -> str:
    """An axis label in the options' number format; prefix and suffix are quoted as string literals."""
    return (
        f"{json.dumps(formatting.prefix)} + format(datum.value, {json.dumps(d3_format(formatting))})"
        f" + {json.dumps(formatting.suffix)}"
    )


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float | int) and not isinstance(value, bool):
        return formatted(float(value), Formatting())
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:59] + "…"


class Columns:
    """The result's columns by name, refusing any the options name that it lacks."""

    def __init__(self, columns: Sequence[Column], options: Options) -> None:
        self.columns = list(columns)
        self.index = {column.name: position for position, column in enumerate(columns)}
        missing = [name for name in dict.fromkeys(options.named_columns()) if name not in self.index]
        if missing:
            raise UndrawableResult(
                "The result has no column " + ", ".join(repr(name) for name in missing) + ", which the"
                " options name: change the options or the query"
            )

    def at(self, name: str) -> int:
        return self.index[name]

    def kind(self, name: str) -> str:
        return field_kind(self.columns[self.index[name]].type)


def _frame(title: str, notes: Notes, width: int, height: int) -> dict[str, Any]:
    heading: dict[str, Any] = {"text": title, "anchor": "start"}
    if notes.items:
        heading["subtitle"] = "; ".join(notes.items)
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "title": heading,
        "width": width,
        "height": height,
        "autosize": {"type": "fit", "contains": "padding"},
        "background": "white",
    }


def _scale(axis: Axis) -> dict[str, Any]:
    scale: dict[str, Any] = {"type": axis.scale}
    if axis.min is not None:
        scale["domainMin"] = axis.min
    if axis.max is not None:
        scale["domainMax"] = axis.max
    if axis.min is not None or axis.max is not None:
        scale["clamp"] = True
    return scale


def _series_colors(options: CartesianOptions, labels: list[str]) -> dict[str, Any] | None:
    """A colour scale when a series has a colour of its own (the others keep the palette's)."""
    if options.group_by is not None or all(series.color is None for series in options.y):
        return None
    colors = [series.color or PALETTE[index % len(PALETTE)] for index, series in enumerate(options.y)]
    return {"domain": labels, "range": colors}


def _cartesian_records(
    options: CartesianOptions,
    columns: Columns,
    rows: Iterable[Sequence[Any]],
    total_rows: int,
    limit: int,
    notes: Notes,
) -> list[dict[str, Any]]:
    """One record per drawn point: x, the series (with its group), the value and its axis."""
    x_at = columns.at(options.x)
    group_at = columns.at(options.group_by) if options.group_by else None
    drawn = [(series.label or series.column, columns.at(series.column), series.axis) for series in options.y]

    def series_name(label: str, group: Any) -> str:
        if group_at is None:
            return label
        return cell_text(group) if len(drawn) == 1 else f"{label} · {cell_text(group)}"

    records: list[dict[str, Any]] = []
    if options.aggregation == "none":
        # The bound counts points: each row draws one per series.
        for row in sampled(rows, total_rows, max(1, limit // len(drawn)), notes):
            group = row[group_at] if group_at is not None else None
            for label, at, axis in drawn:
                records.append(
                    {
                        "x": row[x_at],
                        "series": series_name(label, group),
                        "value": number(row[at]),
                        "axis": axis,
                    }
                )
        return records
    groups = Groups(notes)
    for row in rows:
        group = row[group_at] if group_at is not None else None
        for position, (_, at, _) in enumerate(drawn):
            groups.add((row[x_at], group, position), row[at])
    # Thinned by x, every series kept at each x drawn, so that no series is sampled away.
    lines = len({(group, position) for _, group, position in groups.folds}) or 1
    xs = evenly(list(dict.fromkeys(x for x, _, _ in groups.folds)), max(1, limit // lines), notes, "x values")
    kept = set(xs)
    for (x, group, position), fold in groups.folds.items():
        if x not in kept:
            continue
        label, _, axis = drawn[position]
        value = fold.value(options.aggregation)
        records.append({"x": x, "series": series_name(label, group), "value": value, "axis": axis})
    return records


def _cartesian_layer(
    options: CartesianOptions, columns: Columns, x_kind: str, labels: list[str], side: str, sides: int
) -> dict[str, Any]:
    kind = x_kind
    x_title = options.x_axis.title or options.x
    one = [series for series in options.y if series.axis == side]
    y_title = options.y_axis.title or (one[0].label or one[0].column if len(one) == 1 else None)
    x: dict[str, Any] = {"field": "x", "type": kind, "title": x_title, "scale": _scale(options.x_axis)}
    if isinstance(options, BarOptions):
        # Bars stand on bands: dates as days in order (on a time scale a bar is a sliver), anything else
        # in the result's order.
        x = {"field": "x", "type": "ordinal", "title": x_title, "sort": None}
        if kind == "temporal":
            x.update(timeUnit="yearmonthdate", sort="ascending")
    y: dict[str, Any] = {
        "field": "value",
        "type": "quantitative",
        "title": y_title,
        "scale": _scale(options.y_axis),
        "axis": {"labelExpr": label_expression(options.formatting), "orient": side},
    }
    color: dict[str, Any] = {"field": "series", "type": "nominal", "title": None, "sort": labels}
    custom = _series_colors(options, labels)
    if custom is not None:
        color["scale"] = custom
    if not options.legend or len(labels) < 2:
        # One series needs no key: the y axis names it.
        color["legend"] = None
    encoding: dict[str, Any] = {"x": x, "y": y, "color": color}
    mark: dict[str, Any]
    if isinstance(options, LineOptions):
        mark = {
            "type": "line",
            "interpolate": INTERPOLATION[options.interpolation],
            "point": options.show_points,
        }
    elif isinstance(options, ScatterOptions):
        mark = {"type": "point", "filled": True, "size": options.point_size**2}
    elif isinstance(options, BarOptions):
        mark = {"type": "bar"}
        y["stack"] = "zero" if options.stacked else None
        if not options.stacked:
            encoding["xOffset"] = {"field": "series", "sort": labels}
        if options.horizontal:
            encoding["x"], encoding["y"] = y, x
            encoding["y"]["axis"] = {"orient": "left"}
            encoding["x"]["axis"] = {"labelExpr": label_expression(options.formatting)}
            if "xOffset" in encoding:
                encoding["yOffset"] = encoding.pop("xOffset")
    else:
        stacked = bool(getattr(options, "stacked", False))
        mark = {"type": "area", "opacity": 0.85 if stacked else 0.5, "line": True}
        y["stack"] = "zero" if stacked else None
    layer: dict[str, Any] = {"mark": {**mark, "tooltip": True}, "encoding": encoding}
    if sides > 1:
        layer["transform"] = [{"filter": {"field": "axis", "equal": side}}]
    return layer


def _cartesian(
    options: CartesianOptions, columns: Columns, rows: Iterable[Sequence[Any]], total_rows: int, notes: Notes
) -> dict[str, Any]:
    limit = MAX_BARS if isinstance(options, BarOptions) else MAX_POINTS
    records = _cartesian_records(options, columns, rows, total_rows, limit, notes)
    labels = list(dict.fromkeys(record["series"] for record in records))
    sides = [side for side in ("left", "right") if any(series.axis == side for series in options.y)]
    x_kind = columns.kind(options.x)
    layers = [_cartesian_layer(options, columns, x_kind, labels, side, len(sides)) for side in sides]
    body: dict[str, Any] = {"data": {"values": records}}
    if len(layers) == 1:
        body.update(layers[0])
    else:
        body["layer"] = layers
        body["resolve"] = {"scale": {"y": "independent"}}
    return body


def _pie(
    options: PieOptions,
    columns: Columns,
    rows: Iterable[Sequence[Any]],
    notes: Notes,
    width: int,
    height: int,
) -> dict[str, Any]:
    label_at, value_at = columns.at(options.label), columns.at(options.value)
    groups = Groups(notes)
    for row in rows:
        groups.add((row[label_at],), row[value_at])
    aggregation = "sum" if options.aggregation == "none" else options.aggregation
    slices = [
        (cell_text(key[0]), value)
        for key, fold in groups.folds.items()
        if (value := fold.value(aggregation)) is not None and value > 0
    ]
    slices.sort(key=lambda item: item[1], reverse=True)
    if len(slices) > MAX_SLICES:
        rest = slices[MAX_SLICES - 1 :]
        slices = slices[: MAX_SLICES - 1]
        if aggregation in ("sum", "count"):
            slices.append((OTHER, sum(value for _, value in rest)))
            notes.add(f"{len(rest):,} smaller slices summed as {OTHER}")
        else:
            notes.add(f"{len(rest):,} smaller slices left out")
    total = sum(value for _, value in slices) or 1.0
    records = [
        {"label": label, "value": value, "text": formatted(value, options.formatting), "share": value / total}
        for label, value in slices
    ]
    radius = max(20, min(width, height) // 2 - 50)
    arc: dict[str, Any] = {"type": "arc", "outerRadius": radius, "tooltip": True}
    if options.donut:
        arc["innerRadius"] = radius // 2
    encoding = {
        "theta": {"field": "value", "type": "quantitative", "stack": True},
        "color": {"field": "label", "type": "nominal", "title": options.label, "sort": None},
        "order": {"field": "value", "type": "quantitative", "sort": "descending"},
    }
    layers: list[dict[str, Any]] = [{"mark": arc}]
    if options.show_percent:
        layers.append(
            {
                "mark": {
                    "type": "text",
                    "radius": radius * (0.75 if options.donut else 0.65),
                    "fill": "white",
                },
                "encoding": {"text": {"field": "share", "type": "quantitative", "format": ".0%"}},
            }
        )
    return {"data": {"values": records}, "encoding": encoding, "layer": layers}


def _counted(
    options: CounterOptions, columns: Columns, rows: Iterable[Sequence[Any]], notes: Notes
) -> tuple[float | None, float | None]:
    """The value and the target, from the first row or folded over every row, in one pass."""
    value_at = columns.at(options.value)
    target_at = columns.at(options.target) if options.target else None
    if options.aggregation == "none":
        for row in rows:
            return number(row[value_at]), number(row[target_at]) if target_at is not None else None
        return None, None
    groups = Groups(notes)
    groups.add(("value",), None)
    groups.add(("target",), None)
    for row in rows:
        groups.add(("value",), row[value_at])
        if target_at is not None:
            groups.add(("target",), row[target_at])
    return groups.folds[("value",)].value(options.aggregation), groups.folds[("target",)].value(
        options.aggregation
    )


def _counter(
    options: CounterOptions,
    columns: Columns,
    rows: Iterable[Sequence[Any]],
    notes: Notes,
    width: int,
    height: int,
) -> dict[str, Any]:
    value, target = _counted(options, columns, rows, notes)
    lines = [
        {
            "text": formatted(value, options.formatting),
            "size": max(16, min(width // 5, height // 3)),
            "y": 0.5,
        }
    ]
    if options.title:
        lines.insert(0, {"text": options.title, "size": max(12, height // 12), "y": 0.15})
    if options.target:
        versus = f"target {formatted(target, options.formatting)}"
        if target and value is not None:
            versus += f" ({(value - target) / abs(target):+.1%})"
        lines.append({"text": versus, "size": max(12, height // 12), "y": 0.82})
    return {
        "config": {"view": {"stroke": None}},
        "data": {"values": lines},
        "mark": {"type": "text", "fontWeight": "bold", "align": "center", "baseline": "middle"},
        "encoding": {
            "text": {"field": "text"},
            "size": {"field": "size", "type": "quantitative", "scale": None, "legend": None},
            "x": {"value": width / 2},
            "y": {
                "field": "y",
                "type": "quantitative",
                "scale": {"domain": [0, 1], "reverse": True},
                "axis": None,
            },
        },
    }


def _table(
    options: TableOptions,
    columns: Columns,
    rows: Iterable[Sequence[Any]],
    total_rows: int,
    notes: Notes,
    height: int,
) -> dict[str, Any]:
    configured = {item.column: item for item in options.columns}
    shown = [
        (column.name, configured.get(column.name))
        for column in columns.columns
        if column.name not in configured or configured[column.name].visible
    ]
    if len(shown) > TABLE_MAX_COLUMNS:
        notes.add(f"the first {TABLE_MAX_COLUMNS} of {len(shown)} columns shown")
        shown = shown[:TABLE_MAX_COLUMNS]
    fits = max(1, (height - TABLE_HEADER_PIXELS) // TABLE_ROW_PIXELS)
    limit = min(options.page_size, fits)
    headers = [(setting.label if setting and setting.label else name) for name, setting in shown]
    records: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        if index >= limit:
            break
        for (name, setting), header in zip(shown, headers, strict=True):
            value = row[columns.at(name)]
            measured = number(value) if columns.kind(name) == "quantitative" else None
            text = (
                formatted(measured, setting.formatting)
                if setting and measured is not None
                else cell_text(value)
            )
            records.append({"row": index, "column": header, "text": text})
    if total_rows > limit:
        notes.add(f"the first {min(limit, total_rows):,} of {total_rows:,} rows shown")
    return {
        "config": {"view": {"stroke": None}},
        "data": {"values": records},
        "mark": {"type": "text", "align": "left", "dx": -40, "limit": 160},
        "encoding": {
            "x": {
                "field": "column",
                "type": "ordinal",
                "sort": headers,
                "title": None,
                "axis": {
                    "orient": "top",
                    "labelAngle": 0,
                    "domain": False,
                    "ticks": False,
                    "labelFontWeight": "bold",
                },
            },
            "y": {"field": "row", "type": "ordinal", "axis": None},
            "text": {"field": "text"},
        },
    }


def _totals_last(keys: Iterable[str]) -> list[str]:
    ordered = list(dict.fromkeys(keys))
    totals = [key for key in ordered if key == TOTAL or key.startswith(f"{TOTAL} · ")]
    return [key for key in ordered if key not in totals] + totals


def _pivot(
    options: PivotOptions, columns: Columns, rows: Iterable[Sequence[Any]], notes: Notes
) -> dict[str, Any]:
    row_at = [columns.at(name) for name in options.rows]
    column_at = [columns.at(name) for name in options.columns]
    values = (
        options.values
        or [
            column.name for column in columns.columns if column.name not in {*options.rows, *options.columns}
        ][:1]
    )
    value_at = [(name, columns.at(name)) for name in values]
    groups = Groups(notes)
    for row in rows:
        row_key = " / ".join(cell_text(row[at]) for at in row_at) or TOTAL
        column_key = " / ".join(cell_text(row[at]) for at in column_at)
        for name, at in value_at:
            column_name = (
                f"{column_key} · {name}" if column_key and len(value_at) > 1 else (column_key or name)
            )
            groups.add((row_key, column_name), row[at])
            if options.totals and options.rows:
                groups.add((TOTAL, column_name), row[at])
            if options.totals and options.columns:
                total_column = f"{TOTAL} · {name}" if len(value_at) > 1 else TOTAL
                groups.add((row_key, total_column), row[at])
                if options.rows:
                    groups.add((TOTAL, total_column), row[at])
    # Totals come last, whenever their first row came.
    row_keys = _totals_last(key[0] for key in groups.folds)
    column_keys = _totals_last(key[1] for key in groups.folds)
    for keys, bound, what in (
        (row_keys, PIVOT_MAX_ROWS, "rows"),
        (column_keys, PIVOT_MAX_COLUMNS, "columns"),
    ):
        if len(keys) > bound:
            notes.add(f"the first {bound} of {len(keys):,} {what} shown")
    kept_rows, kept_columns = set(row_keys[:PIVOT_MAX_ROWS]), set(column_keys[:PIVOT_MAX_COLUMNS])
    aggregation = "sum" if options.aggregation == "none" else options.aggregation
    records = [
        {
            "row": row_key,
            "column": column_key,
            # Totals are not shaded: they would pale every other cell.
            "shade": None if TOTAL in (row_key, column_key.split(" · ")[0]) else value,
            "text": formatted(value, options.formatting),
        }
        for (row_key, column_key), fold in groups.folds.items()
        if row_key in kept_rows and column_key in kept_columns
        for value in [fold.value(aggregation)]
    ]
    angle = 0 if len(kept_columns) <= 6 else -40
    axis = {"orient": "top", "labelAngle": angle, "title": None, "domain": False, "ticks": False}
    encoding = {
        "x": {
            "field": "column",
            "type": "ordinal",
            "sort": [key for key in column_keys if key in kept_columns],
            "axis": axis,
        },
        "y": {
            "field": "row",
            "type": "ordinal",
            "sort": [key for key in row_keys if key in kept_rows],
            "title": None,
        },
    }
    return {
        "data": {"values": records},
        "encoding": encoding,
        "layer": [
            {
                "mark": {"type": "rect", "tooltip": True},
                "encoding": {
                    "color": {"field": "shade", "type": "quantitative", "scheme": "blues", "legend": None}
                },
            },
            {"mark": {"type": "text"}, "encoding": {"text": {"field": "text"}}},
        ],
    }


def vega_lite(
    visualization_type: VisualizationType,
    options: dict[str, Any],
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]],
    total_rows: int,
    *,
    title: str,
    width: int,
    height: int,
) -> dict[str, Any]:
    """The chart as a Vega-Lite specification with its data inline, bounded by the rule in sampling."""
    model = OPTIONS_BY_TYPE[visualization_type].model_validate(options)
    found = Columns(columns, model)
    notes = Notes()
    read = read_bounded(rows, total_rows, notes)
    body: dict[str, Any]
    if isinstance(model, CartesianOptions):
        body = _cartesian(model, found, read, total_rows, notes)
    elif isinstance(model, PieOptions):
        body = _pie(model, found, read, notes, width, height)
    elif isinstance(model, CounterOptions):
        body = _counter(model, found, read, notes, width, height)
    elif isinstance(model, TableOptions):
        body = _table(model, found, read, total_rows, notes, height)
    else:
        assert isinstance(model, PivotOptions)
        body = _pivot(model, found, read, notes)
    # The frame last: the notes are complete only once the rows are read.
    return {**_frame(title, notes, width, height), **body}
