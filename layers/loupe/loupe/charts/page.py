"""A dashboard on one SVG page, laid out by its grid: its name, the filter values it was drawn with, and
each tile's chart, text or reason for having none, at the tile's place and size."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from loupe.models.dashboards import GRID_COLUMNS

ROW_PIXELS = 60
MARGIN = 16
GAP = 8
HEADER_PIXELS = 64
TEXT_LINE_PIXELS = 18
# An average glyph of 13 px Liberation Sans, for wrapping a text tile's lines.
CHARACTER_PIXELS = 7
FONT = "Liberation Sans, Arial, sans-serif"
MARKDOWN_MARKS = re.compile(r"(^#{1,6}\s*|[*_`>]+)")
MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


@dataclass(frozen=True)
class PlacedTile:
    """A tile's grid place and what it shows: a chart's SVG, a text, or why it shows nothing."""

    x: int
    y: int
    w: int
    h: int
    svg: str | None = None
    text: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Layout:
    width: int
    column_pixels: float

    def box(self, tile: PlacedTile) -> tuple[float, float, float, float]:
        """The tile's x, y, width and height in pixels."""
        return (
            MARGIN + tile.x * self.column_pixels,
            HEADER_PIXELS + tile.y * ROW_PIXELS,
            tile.w * self.column_pixels - GAP,
            tile.h * ROW_PIXELS - GAP,
        )


def layout(width: int) -> Layout:
    return Layout(width, (width - 2 * MARGIN + GAP) / GRID_COLUMNS)


def tile_size(width: int, tile: PlacedTile) -> tuple[int, int]:
    """The pixels a tile's chart is drawn at on a page `width` wide."""
    _, _, tile_width, tile_height = layout(width).box(tile)
    return int(tile_width), int(tile_height)


def plain_lines(markdown: str, columns: int) -> list[str]:
    """A text tile's Markdown as plain lines wrapped at `columns` characters."""
    lines: list[str] = []
    for line in markdown.splitlines():
        plain = MARKDOWN_MARKS.sub("", MARKDOWN_LINK.sub(r"\1", line)).strip()
        lines.extend(textwrap.wrap(plain, max(8, columns)) or [""])
    return lines


def _text(x: float, y: float, content: str, size: int, weight: str = "normal", fill: str = "#222") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-family={quoteattr(FONT)} font-size="{size}"'
        f' font-weight="{weight}" fill="{fill}">{escape(content)}</text>'
    )


def _tile(layout_: Layout, tile: PlacedTile) -> str:
    x, y, width, height = layout_.box(tile)
    frame = (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" fill="white"'
        ' stroke="#d9d9d9" rx="4"/>'
    )
    if tile.svg is not None:
        return (
            f'{frame}<svg x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}">{tile.svg}</svg>'
        )
    if tile.text is not None:
        room = int((height - 16) // TEXT_LINE_PIXELS)
        lines = plain_lines(tile.text, int((width - 16) // CHARACTER_PIXELS))[: max(0, room)]
        return frame + "".join(
            _text(x + 8, y + 8 + TEXT_LINE_PIXELS * (index + 1) - 4, line, 13)
            for index, line in enumerate(lines)
        )
    message = tile.message or "No data"
    return frame + _text(x + 12, y + height / 2, message, 13, fill="#888")


def page_height(tiles: Sequence[PlacedTile]) -> int:
    """The pixels a page is tall: down to its lowest tile."""
    return HEADER_PIXELS + max((tile.y + tile.h for tile in tiles), default=1) * ROW_PIXELS + MARGIN


def dashboard_page(title: str, filters: Sequence[str], tiles: Sequence[PlacedTile], width: int) -> str:
    """The page as one SVG document, `width` pixels wide and as tall as its lowest tile."""
    layout_ = layout(width)
    height = page_height(tiles)
    header = _text(MARGIN, 30, title, 22, "bold") + _text(
        MARGIN, 52, "Filters: " + ("; ".join(filters) if filters else "none"), 13, fill="#555"
    )
    body = "".join(_tile(layout_, tile) for tile in tiles)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}"><rect width="100%" height="100%" fill="#f5f5f5"/>'
        f"{header}{body}</svg>"
    )
