"""vl-convert, the one engine that draws: Vega-Lite to SVG and PNG, an SVG page to PNG and PDF, no browser.

It ships in the render function's own layer (docs/adr/0019-charts-drawn-by-vl-convert.md) and is imported
on first use, so that nothing else loads it. Every drawing is bounded in time.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar

from loupe.deadline import Overran, call_within
from loupe.errors import FieldIssue, InvalidListQuery

# A specification is drawn from its inline data only: nothing it names is fetched.
NO_URLS: list[str] = []
# A drawing that takes longer is given up, well within an API request's 29 seconds.
DRAW_SECONDS = 15.0

DrawnT = TypeVar("DrawnT")
# Characters XML cannot hold: vl-convert's text layout aborts the process on some (\x0b, \x1b, \ufffe),
# and an SVG page holding one does not parse. Each becomes U+FFFD.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class TooSlowToDraw(InvalidListQuery):
    """The drawing did not finish in DRAW_SECONDS."""


@functools.cache
def _vl_convert() -> Any:
    import vl_convert

    return vl_convert


def clean(value: Any) -> Any:
    """The value with every string in it free of characters XML cannot hold."""
    if isinstance(value, str):
        return NOT_XML.sub("\ufffd", value)
    if isinstance(value, dict):
        return {clean(key): clean(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clean(item) for item in value]
    return value


def _bounded(draw: Callable[[], DrawnT]) -> DrawnT:
    try:
        return call_within(DRAW_SECONDS, draw, "draw")
    except Overran:
        raise TooSlowToDraw(
            f"The picture did not draw within {DRAW_SECONDS:g} s: ask for a smaller size",
            issues=[FieldIssue("width", "too slow to draw at this size")],
        ) from None


def to_svg(spec: dict[str, Any]) -> str:
    drawn = clean(spec)
    svg: str = _bounded(lambda: _vl_convert().vegalite_to_svg(drawn, allowed_base_urls=NO_URLS))
    return svg


def to_png(spec: dict[str, Any], scale: float) -> bytes:
    drawn = clean(spec)
    png: bytes = _bounded(
        lambda: _vl_convert().vegalite_to_png(drawn, scale=scale, allowed_base_urls=NO_URLS)
    )
    return png


def svg_to_png(svg: str, scale: float) -> bytes:
    page = clean(svg)
    png: bytes = _bounded(lambda: _vl_convert().svg_to_png(page, scale=scale))
    return png


def svg_to_pdf(svg: str) -> bytes:
    page = clean(svg)
    pdf: bytes = _bounded(lambda: _vl_convert().svg_to_pdf(page))
    return pdf
