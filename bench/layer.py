"""What the deployed layer holds: the dependency closure of layers/loupe/requirements.txt.

The dev venv has more (moto pulls in cryptography, which PyJWT then imports); benchmarks block the rest.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

from infra.dependencies import REQUIREMENTS, closure

ENV_VAR = "BENCH_BLOCKED_MODULES"


def modules_outside(path: Path = REQUIREMENTS) -> list[str]:
    """Top-level modules installed here that only distributions outside the layer provide."""
    inside = closure(path)
    return sorted(
        module
        for module, distributions in metadata.packages_distributions().items()
        if module.isidentifier() and not any(canonicalize_name(name) in inside for name in distributions)
    )


def block(modules: list[str]) -> None:
    """Make later imports of these modules fail as they would in Lambda (already imported ones stay)."""
    for module in modules:
        if module not in sys.modules:
            sys.modules[module] = None  # type: ignore[assignment]
