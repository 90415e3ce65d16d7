"""vl-convert, the one engine that draws: Vega-Lite to SVG and PNG, an SVG page to PNG and PDF, no browser.

It ships in the render function's own layer (docs/adr/0019-charts-drawn-by-vl-convert.md) and is imported
on first use, so that nothing else loads it. Every drawing is bounded in time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from loupe.deadline import Overran, call_within
from loupe.errors import FieldIssue, InvalidListQuery

# A specification is drawn from its inline data only: nothing it names is fetched.
NO_URLS: list[str] = []
# A drawing that takes longer is given up, well within an API request's 29 seconds.
DRAW_SECONDS = 15.0

DrawnT = TypeVar("DrawnT")


class TooSlowToDraw(InvalidListQuery):
    """The drawing did not finish in DRAW_SECONDS."""


@functools.cache
def _vl_convert() -> Any:
    import vl_convert

    return vl_convert


def _bounded(draw: Callable[[], DrawnT]) -> DrawnT:
    try:
        return call_within(DRAW_SECONDS, draw, "draw")
    except Overran:
        raise TooSlowToDraw(
            f"The picture did not draw within {DRAW_SECONDS:g} s: ask for a smaller size",
            issues=[FieldIssue("width", "too slow to draw at this size")],
        ) from None


def to_svg(spec: dict[str, Any]) -> str:
    svg: str = _bounded(lambda: _vl_convert().vegalite_to_svg(spec, allowed_base_urls=NO_URLS))
    return svg


def to_png(spec: dict[str, Any], scale: float) -> bytes:
    png: bytes = _bounded(lambda: _vl_convert().vegalite_to_png(spec, scale=scale, allowed_base_urls=NO_URLS))
    return png


def svg_to_png(svg: str, scale: float) -> bytes:
    png: bytes = _bounded(lambda: _vl_convert().svg_to_png(svg, scale=scale))
    return png


def svg_to_pdf(svg: str) -> bytes:
    pdf: bytes = _bounded(lambda: _vl_convert().svg_to_pdf(svg))
    return pdf
