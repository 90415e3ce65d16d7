"""SECURITY.md stays true to the suite: every test it points at exists, and the OWASP table has a row
for each of the ten risks."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECURITY = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)((?:::\w+)*)`")


def test_every_referenced_test_exists() -> None:
    references = REFERENCE.findall(SECURITY)
    assert len(references) > 30
    for path, names in references:
        source = (ROOT / path).read_text(encoding="utf-8")
        for name in filter(None, names.split("::")):
            assert re.search(rf"^\s*(def|class) {name}\b", source, re.MULTILINE), f"{path}::{name}"


def test_the_owasp_table_covers_the_ten_risks() -> None:
    rows = re.findall(r"^\| API(\d+) [^|]+\|[^|]+\|([^|]+)\|", SECURITY, re.MULTILINE)
    assert sorted(int(number) for number, _ in rows) == list(range(1, 11))
    assert all("tests/" in tests for _, tests in rows)
