"""The run's types: its statuses match the schema's, its record the columns the API lists."""

import re
from dataclasses import fields
from pathlib import Path

from loupe.models.runs import RunStatus
from loupe.repositories.runs import RUNS, RunRecord

SCHEMA = Path(__file__).resolve().parents[2] / "infra" / "migrations" / "0002_schema.sql"


def test_the_statuses_are_the_ones_the_schema_allows() -> None:
    found = re.search(r"CHECK \(status IN \(([^)]*)\)\)", SCHEMA.read_text(encoding="utf-8"))
    assert found is not None
    assert [value.strip().strip("'") for value in found.group(1).split(",")] == [
        status.value for status in RunStatus
    ]


def test_a_run_record_holds_the_columns_the_api_lists() -> None:
    assert tuple(field.name for field in fields(RunRecord)) == RUNS.columns
