"""docs/pictures/ shows what the code draws today: each picture drawn again matches the committed one
byte for byte (`make pictures` redraws them), and each is a PNG of the size it claims."""

from __future__ import annotations

import io

from PIL import Image

from infra import pictures


def test_the_pictures_in_the_docs_are_what_the_code_draws() -> None:
    drawn = pictures.pictures()
    committed = {path.name for path in pictures.PICTURES.glob("*.png")}
    assert committed == set(drawn), "run make pictures"
    for name, content in drawn.items():
        image = Image.open(io.BytesIO(content))
        expected = (1200, 800) if name == "dashboard.png" else (pictures.WIDTH, pictures.HEIGHT)
        assert image.size == expected, name
        assert (pictures.PICTURES / name).read_bytes() == content, f"{name} is stale: run make pictures"
