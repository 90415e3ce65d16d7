"""`make pictures`: every visualization type, and a dashboard page, drawn from one fixed sample result
into docs/pictures/ by the same code the render function runs (tests/unit/test_pictures.py keeps them
current)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from loupe.charts import engine
from loupe.charts.page import PlacedTile, dashboard_page, tile_size
from loupe.charts.specs import vega_lite
from loupe.connectors import Column
from loupe.models.visualizations import VisualizationType

ROOT = Path(__file__).resolve().parents[1]
PICTURES = ROOT / "docs" / "pictures"
WIDTH, HEIGHT = 640, 360
COLUMNS = [
    Column("month", "date"),
    Column("region", "text"),
    Column("revenue", "numeric"),
    Column("orders", "int4"),
]
REGIONS = ("emea", "amer", "apac")
# What each type shows of the sample, and a title saying so.
SHOWN: dict[VisualizationType, tuple[str, dict[str, Any]]] = {
    "line": (
        "Revenue by month and region",
        {
            "x": "month",
            "y": [{"column": "revenue", "label": "Revenue"}],
            "group_by": "region",
            "show_points": True,
        },
    ),
    "bar": (
        "Revenue and orders by region",
        {
            "x": "region",
            "y": [
                {"column": "revenue", "label": "Revenue"},
                {"column": "orders", "label": "Orders", "axis": "right"},
            ],
            "aggregation": "sum",
        },
    ),
    "area": (
        "Revenue by month, stacked by region",
        {"x": "month", "y": [{"column": "revenue"}], "group_by": "region", "stacked": True},
    ),
    "scatter": (
        "Orders against revenue",
        {"x": "orders", "y": [{"column": "revenue"}], "group_by": "region", "point_size": 6},
    ),
    "pie": ("Share of revenue by region", {"label": "region", "value": "revenue", "donut": True}),
    "counter": (
        "Revenue this year",
        {
            "value": "revenue",
            "aggregation": "sum",
            "target": "orders",
            "title": "Revenue against orders",
            "formatting": {"prefix": "€", "decimals": 0},
        },
    ),
    "table": (
        "Monthly figures",
        {"columns": [{"column": "revenue", "label": "Revenue (€)", "formatting": {"decimals": 2}}]},
    ),
    "pivot": (
        "Revenue by region and quarter month",
        {"rows": ["region"], "columns": ["month"], "values": ["revenue"]},
    ),
}


def sample_rows() -> list[list[Any]]:
    """Twelve months of three regions, with a fixed seasonal shape."""
    rows = []
    for month in range(1, 13):
        for index, region in enumerate(REGIONS):
            revenue = 1000 + 150 * index + 80 * month + (month % 4) * 60 * (index + 1)
            rows.append([f"2026-{month:02d}-01", region, f"{revenue}.50", 20 + month * (index + 2)])
    return rows


def chart_spec(kind: VisualizationType, width: int, height: int) -> dict[str, Any]:
    title, options = SHOWN[kind]
    rows = sample_rows()
    if kind == "pivot":
        rows = [row for row in rows if row[0] <= "2026-04-01"]
    return vega_lite(kind, options, COLUMNS, iter(rows), len(rows), title=title, width=width, height=height)


def dashboard_picture() -> bytes:
    placed = [PlacedTile(0, 0, 8, 5), PlacedTile(8, 0, 4, 5), PlacedTile(0, 5, 6, 5), PlacedTile(6, 5, 6, 5)]
    kinds: list[VisualizationType] = ["line", "counter", "bar", "pie"]
    tiles = []
    for tile, kind in zip(placed, kinds, strict=True):
        width, height = tile_size(1200, tile)
        tiles.append(
            PlacedTile(tile.x, tile.y, tile.w, tile.h, svg=engine.to_svg(chart_spec(kind, width, height)))
        )
    tiles.append(
        PlacedTile(0, 10, 12, 2, text="## Notes\nRevenue is **net of refunds**; orders count paid orders.")
    )
    page = dashboard_page("Sales overview", ["region: emea, amer, apac", "period: this_year"], tiles, 1200)
    return engine.svg_to_png(page, 1.0)


def pictures() -> dict[str, bytes]:
    """Each picture's file name and bytes."""
    drawn = {f"{kind}.png": engine.to_png(chart_spec(kind, WIDTH, HEIGHT), 1.0) for kind in SHOWN}
    drawn["dashboard.png"] = dashboard_picture()
    return drawn


def main() -> int:
    PICTURES.mkdir(parents=True, exist_ok=True)
    for name, content in pictures().items():
        (PICTURES / name).write_bytes(content)
        sys.stdout.write(f"wrote {(PICTURES / name).relative_to(ROOT)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
