"""Parses `python -X importtime` output: self time per top-level package, cumulative time per module."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)$")


@dataclass(frozen=True)
class Entry:
    module: str
    depth: int
    self_ms: float
    cumulative_ms: float


def entries(stderr: str) -> list[Entry]:
    """The import lines in CPython's order (each module after the modules it imported)."""
    found = []
    for line in stderr.splitlines():
        match = _LINE.match(line)
        if match is not None:
            self_us, cumulative_us, indent, module = match.groups()
            found.append(Entry(module, len(indent) // 2, int(self_us) / 1000, int(cumulative_us) / 1000))
    return found


def self_time_by_package(stderr: str) -> dict[str, float]:
    """Milliseconds of import self time, summed per top-level package, largest first."""
    totals: dict[str, float] = defaultdict(float)
    for entry in entries(stderr):
        totals[entry.module.split(".")[0]] += entry.self_ms
    return dict(sorted(totals.items(), key=lambda item: item[1], reverse=True))


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def cumulative_by_module(stderr: str, packages: tuple[str, ...]) -> dict[str, float]:
    """Milliseconds spent importing each package (its outermost imports, with what they pulled in),
    largest first; packages never imported are left out."""
    totals: dict[str, float] = defaultdict(float)
    ancestors: list[str] = []
    for entry in reversed(entries(stderr)):  # reversed, each module comes before what it imported
        del ancestors[entry.depth :]
        for package in packages:
            if _within(entry.module, package) and not any(_within(outer, package) for outer in ancestors):
                totals[package] += entry.cumulative_ms
        ancestors.append(entry.module)
    return dict(sorted(totals.items(), key=lambda item: item[1], reverse=True))
