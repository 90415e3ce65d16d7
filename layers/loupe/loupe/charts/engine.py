"""vl-convert, the one engine that draws: Vega-Lite to SVG and PNG, an SVG page to PNG and PDF, no browser.

It ships in the render function's own layer (docs/adr/0019-charts-drawn-by-vl-convert.md) and is imported
on first use, so that nothing else loads it.
"""

from __future__ import annotations

import functools
from typing import Any

# A specification is drawn from its inline data only: nothing it names is fetched.
NO_URLS: list[str] = []


@functools.cache
def _vl_convert() -> Any:
    import vl_convert

    return vl_convert


def to_svg(spec: dict[str, Any]) -> str:
    svg: str = _vl_convert().vegalite_to_svg(spec, allowed_base_urls=NO_URLS)
    return svg


def to_png(spec: dict[str, Any], scale: float) -> bytes:
    png: bytes = _vl_convert().vegalite_to_png(spec, scale=scale, allowed_base_urls=NO_URLS)
    return png


def svg_to_png(svg: str, scale: float) -> bytes:
    png: bytes = _vl_convert().svg_to_png(svg, scale=scale)
    return png


def svg_to_pdf(svg: str) -> bytes:
    pdf: bytes = _vl_convert().svg_to_pdf(svg)
    return pdf
