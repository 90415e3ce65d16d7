"""Benchmarks of chart rendering: each type drawn to PNG from 1,000 and 100,000 rows against vl-convert
drawing the same rows unbounded (the same run's baseline), and the render function's cold start against a
fresh process that only imports vl-convert and draws one chart. `python -m bench.render` runs this alone.
"""

from __future__ import annotations

import functools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import out
from loupe.models.visualizations import VisualizationType

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "render.json"
POINTS = (1_000, 100_000)
REPEATS = 3
COLD_RUNS = 3
WIDTH, HEIGHT = 800, 450
COLUMNS = (("day", "date"), ("region", "text"), ("revenue", "numeric"), ("cost", "int4"))
OPTIONS: dict[VisualizationType, dict[str, Any]] = {
    "table": {},
    "line": {"x": "day", "y": [{"column": "revenue"}], "group_by": "region"},
    "bar": {"x": "region", "y": [{"column": "revenue"}], "aggregation": "sum"},
    "area": {"x": "day", "y": [{"column": "revenue"}], "group_by": "region", "stacked": True},
    "pie": {"label": "region", "value": "revenue"},
    "scatter": {"x": "cost", "y": [{"column": "revenue"}]},
    "counter": {"value": "revenue", "aggregation": "sum"},
    "pivot": {"rows": ["region"], "columns": ["cost"], "values": ["revenue"]},
}
# A fresh process as the render function's first request meets it: its routes, then one chart.
COLD_CANDIDATE = """
import time; started = time.perf_counter()
import loupe.api.routes.rendering
from loupe.charts import engine
from loupe.charts.specs import vega_lite
from loupe.connectors import Column
rows = [[f"2026-01-{1 + n % 28:02d}", "emea", str(n), n] for n in range(1000)]
spec = vega_lite("line", {"x": "day", "y": [{"column": "revenue"}]}, [Column("day", "date"),
    Column("region", "text"), Column("revenue", "numeric"), Column("cost", "int4")], rows, 1000,
    title="cold", width=800, height=450)
engine.to_png(spec, 1.0)
print(time.perf_counter() - started)
"""
COLD_FLOOR = """
import time; started = time.perf_counter()
import vl_convert
values = [{"x": n, "y": n} for n in range(1000)]
vl_convert.vegalite_to_png({"data": {"values": values}, "mark": "line", "width": 800, "height": 450,
    "encoding": {"x": {"field": "x", "type": "quantitative"}, "y": {"field": "y", "type": "quantitative"}}})
print(time.perf_counter() - started)
"""


@dataclass(frozen=True)
class RenderFigure:
    kind: str
    points: int
    render_ms: float
    baseline_ms: float

    @property
    def ratio(self) -> float:
        return self.render_ms / self.baseline_ms


@dataclass(frozen=True)
class ColdFigure:
    candidate_ms: float
    floor_ms: float


def rows(count: int) -> list[list[Any]]:
    regions = ("emea", "amer", "apac")
    return [
        [f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}", regions[n % 3], str(n % 1000), n] for n in range(count)
    ]


def unbounded_spec(kind: str, data: list[list[Any]]) -> dict[str, Any]:
    """The baseline: every row handed to vl-convert as it comes, with the type's plainest mark."""
    values = [{"x": row[3], "y": float(row[2]), "c": row[1]} for row in data]
    # A table, counter or pivot drawn as one point per row: 100,000 text marks take minutes.
    mark = {"line": "line", "area": "area", "bar": "bar", "pie": "arc"}.get(kind, "point")
    encoding: dict[str, Any] = (
        {"theta": {"field": "y", "type": "quantitative"}, "color": {"field": "c", "type": "nominal"}}
        if mark == "arc"
        else {"x": {"field": "x", "type": "quantitative"}, "y": {"field": "y", "type": "quantitative"}}
    )
    return {"data": {"values": values}, "mark": mark, "encoding": encoding, "width": WIDTH, "height": HEIGHT}


def _median_ms(action: Callable[[], None], repeats: int = REPEATS) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _draw(kind: VisualizationType, options: dict[str, Any], data: list[list[Any]]) -> None:
    from loupe.charts import engine
    from loupe.charts.specs import vega_lite
    from loupe.connectors import Column

    columns = [Column(name, column_type) for name, column_type in COLUMNS]
    spec = vega_lite(kind, options, columns, iter(data), len(data), title=kind, width=WIDTH, height=HEIGHT)
    engine.to_png(spec, 1.0)


def _draw_unbounded(kind: VisualizationType, data: list[list[Any]]) -> None:
    from loupe.charts import engine

    engine.to_png(unbounded_spec(kind, data), 1.0)


def measure_types() -> list[RenderFigure]:
    _draw_unbounded("line", rows(10))  # the engine's first call compiles its scripts
    figures = []
    for points in POINTS:
        data = rows(points)
        for kind, options in OPTIONS.items():
            # The unbounded baseline takes up to half a minute at 100,000 rows: once is enough.
            figure = RenderFigure(
                kind,
                points,
                _median_ms(functools.partial(_draw, kind, options, data)),
                _median_ms(functools.partial(_draw_unbounded, kind, data), 1),
            )
            out(
                f"  {kind:8} {points:>7,} rows: {figure.render_ms:8.1f} ms"
                f" (vl-convert unbounded {figure.baseline_ms:8.1f} ms)"
            )
            figures.append(figure)
    return figures


def _fresh_seconds(script: str) -> float:
    completed = subprocess.run(  # noqa: S603  # this interpreter, a script of this module
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    return float(completed.stdout.strip().splitlines()[-1])


def measure_cold() -> ColdFigure:
    candidate = [_fresh_seconds(COLD_CANDIDATE) for _ in range(COLD_RUNS)]
    floor = [_fresh_seconds(COLD_FLOOR) for _ in range(COLD_RUNS)]
    return ColdFigure(statistics.median(candidate) * 1000, statistics.median(floor) * 1000)


@dataclass(frozen=True)
class RenderFigures:
    types: list[RenderFigure]
    cold: ColdFigure


def measure() -> RenderFigures:
    out("render: each type at " + ", ".join(f"{points:,}" for points in POINTS) + " rows")
    return RenderFigures(measure_types(), measure_cold())


def table(figures: RenderFigures, figure: Any) -> list[Any]:
    """`make bench`'s rows (bench.run.Figure): each type and size against vl-convert unbounded, and the
    cold start against a process that only imports vl-convert and draws."""
    rows = [
        figure(
            f"render {item.kind} to PNG, {item.points:,} rows", "ms", item.render_ms, item.baseline_ms, None
        )
        for item in figures.types
    ]
    rows.append(
        figure(
            "render cold start (routes + first PNG)",
            "ms",
            figures.cold.candidate_ms,
            figures.cold.floor_ms,
            None,
        )
    )
    return rows


def details(figures: list[RenderFigure], cold: ColdFigure) -> dict[str, Any]:
    return {
        "baseline": "vl-convert drawing every row unbounded with the type's plainest mark (a point for a"
        " table, counter or pivot), same process",
        "cold_floor": "a fresh process importing vl_convert and drawing one 1,000-point line",
        "types": [{**asdict(figure), "ratio": figure.ratio} for figure in figures],
        "cold": asdict(cold),
    }


def main() -> int:
    figures = measure()
    cold = figures.cold
    out(f"  cold start {cold.candidate_ms:.0f} ms (floor {cold.floor_ms:.0f} ms)")
    RESULTS.write_text(json.dumps(details(figures.types, cold), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
