"""The Lambda layer's dependencies: the distributions layers/loupe/requirements.txt pulls in, as
installed here (used by `make audit` and by the benchmarks, which block everything else)."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REQUIREMENTS = Path(__file__).resolve().parents[1] / "layers" / "loupe" / "requirements.txt"


def _requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def closure(path: Path = REQUIREMENTS) -> set[str]:
    """Canonical names of the distributions the requirements pull in, extras and markers applied."""
    found: set[str] = set()
    seen: set[tuple[str, str]] = set()
    pending = [
        (requirement, extra) for requirement in _requirements(path) for extra in {"", *requirement.extras}
    ]
    while pending:
        requirement, extra = pending.pop()
        name = canonicalize_name(requirement.name)
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            continue
        found.add(name)
        for spec in distribution.requires or []:
            child = Requirement(spec)
            if child.marker is None or child.marker.evaluate({"extra": extra}):
                pending.extend((child, child_extra) for child_extra in {"", *child.extras})
    return found
