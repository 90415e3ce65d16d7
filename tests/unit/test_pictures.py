"""docs/pictures/ shows what the code draws today: each picture drawn again matches the committed one
(`make pictures` redraws them), and each is a PNG of the size it claims.

Not byte for byte: resvg's anti-aliasing differs in the last bits from one CPU to another, moving a
few hundred edge pixels by a few levels. A picture is stale when more than STALE_SHARE of its pixels
differ by more than STALE_LEVELS, which any change of a mark, colour, label or layout does."""

from __future__ import annotations

import io

from PIL import Image, ImageChops

from infra import pictures

STALE_LEVELS = 64
STALE_SHARE = 0.001


def changed_share(drawn: Image.Image, committed: Image.Image) -> float:
    difference = ImageChops.difference(drawn.convert("RGB"), committed.convert("RGB")).convert("L")
    histogram = difference.histogram()
    return sum(histogram[STALE_LEVELS + 1 :]) / (drawn.width * drawn.height)


def test_the_pictures_in_the_docs_are_what_the_code_draws() -> None:
    drawn = pictures.pictures()
    committed = {path.name for path in pictures.PICTURES.glob("*.png")}
    assert committed == set(drawn), "run make pictures"
    for name, content in drawn.items():
        image = Image.open(io.BytesIO(content))
        expected = (1200, 800) if name == "dashboard.png" else (pictures.WIDTH, pictures.HEIGHT)
        assert image.size == expected, name
        committed_image = Image.open(pictures.PICTURES / name)
        assert committed_image.size == image.size, f"{name} is stale: run make pictures"
        assert changed_share(image, committed_image) <= STALE_SHARE, f"{name} is stale: run make pictures"


def test_a_changed_picture_counts_as_stale() -> None:
    drawn = pictures.pictures()
    line = Image.open(io.BytesIO(drawn["line.png"]))
    bar = Image.open(io.BytesIO(drawn["bar.png"]))
    assert changed_share(line, line) == 0
    assert changed_share(line, bar) > STALE_SHARE
