"""The engine registry: every name has its module and spec, the schema's list of types is the registry's,
and an engine's module loads without its driver."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlglot

from loupe.connectors import ENGINE_NAMES, DatasourceType, engine
from loupe.models.datasources import DatasourceCreate, DatasourceListQuery, DatasourceOut

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "infra" / "migrations"
DATASOURCES_STATEMENT = re.compile(
    r"\b(?:CREATE|ALTER)\s+TABLE\s+datasources\b.*?;", re.IGNORECASE | re.DOTALL
)
TYPE_CHECK = re.compile(r"CHECK\s*\(\s*type\s+IN\s*\(([^)]*)\)\s*\)", re.IGNORECASE)
# Runs in a fresh interpreter where `import duckdb` fails, as in the Lambda layer (docs/adr/0009).
WITHOUT_DUCKDB = """
import sys
sys.modules["duckdb"] = None
from pathlib import Path
from loupe.connectors import engine
from loupe.security import sql_guard
from loupe.security.connection_policy import ConnectionPolicyError, PolicySettings, parse

from uuid import uuid4
root = Path(sys.argv[1])
organization_id = uuid4()
settings = PolicySettings(duckdb_root=root)
spec = parse("duckdb", "duckdb:shop.duckdb", settings, organization_id=organization_id)
assert spec.display() == f"duckdb://{root}/{organization_id}/shop.duckdb"
try:
    parse("duckdb", "duckdb:shop.duckdb", PolicySettings(), organization_id=organization_id)
except ConnectionPolicyError as error:
    assert "LOUPE_DUCKDB_ROOT" in str(error)
assert sql_guard.check("SELECT $a", "duckdb").parameters == ("a",)
assert engine("duckdb").placeholder("a") == "$a"
"""


def schema_types() -> list[str]:
    """The types the last migration to constrain `datasources.type` allows."""
    found: list[str] = []
    for migration in sorted(MIGRATIONS.glob("*.sql")):
        if migration.name.endswith(".rollback.sql"):
            continue
        for statement in DATASOURCES_STATEMENT.findall(migration.read_text()):
            for listed in TYPE_CHECK.findall(statement):
                found = re.findall(r"'([^']*)'", listed)
    return found


def test_the_schema_allows_exactly_the_registered_engines() -> None:
    assert sorted(schema_types()) == sorted(ENGINE_NAMES)


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_each_name_has_a_module_with_its_spec(name: DatasourceType) -> None:
    spec = engine(name)
    assert spec.name == name
    assert sqlglot.Dialect.get_or_raise(spec.dialect)
    assert spec.schemes
    assert spec.schemes == tuple(scheme.lower() for scheme in spec.schemes)
    assert spec.placeholder.pattern.fullmatch(spec.placeholder("a_1"))


def test_an_unknown_engine_is_not_imported() -> None:
    with pytest.raises(KeyError):
        engine("os")  # type: ignore[arg-type]


def test_the_api_shows_the_registered_engines_as_a_closed_enum() -> None:
    for model in (DatasourceCreate, DatasourceOut):
        assert model.model_json_schema()["properties"]["type"]["enum"] == list(ENGINE_NAMES)
    listed = DatasourceListQuery.model_json_schema()["properties"]["type"]["anyOf"]
    assert {"enum": list(ENGINE_NAMES), "type": "string"} in listed


def test_policy_and_guard_read_an_engine_without_its_driver(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(ROOT / "layers" / "loupe"), str(ROOT)))}
    subprocess.run([sys.executable, "-c", WITHOUT_DUCKDB, str(tmp_path)], env=env, check=True, timeout=60)
