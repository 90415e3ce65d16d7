"""What the import contracts (pyproject.toml) cannot say: Powertools is one package to them, and the
services may use its metrics but none of its HTTP or event handling."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import loupe

SERVICES = Path(loupe.__file__).parent / "services"
LAMBDA_ONLY = (
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.data_classes",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.typing",
)


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", sorted(SERVICES.glob("*.py")), ids=lambda path: path.stem)
def test_services_use_no_http_or_event_handling(module: Path) -> None:
    offending = {name for name in imported_modules(module) if name.startswith(LAMBDA_ONLY)}
    assert not offending, f"{module.name} imports {sorted(offending)}"
