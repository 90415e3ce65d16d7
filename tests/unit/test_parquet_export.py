"""Parquet exports of stored results (S3 in moto): each engine's type names become Parquet types, values
that do not fit a decimal stay text, repeated names are made unique, rows keep their order across
chunks, and a value the type refuses fails the export instead of writing a wrong file."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import duckdb
import pytest

from loupe.connectors import Column
from loupe.results.exports import ExportFailed
from loupe.results.parquet import write_parquet
from loupe.results.store import ResultReader, ResultWriter
from tests.unit import test_results
from tests.unit.test_results import BUCKET, ORG, UNLIMITED

# pytest finds fixtures by the module's names: this makes the shared one this module's.
bucket = test_results.bucket


def parquet_of(
    rows: Sequence[Sequence[Any]], columns: list[Column], tmp_path: Path, **chunking: int
) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
    run_id = uuid4()
    writer = ResultWriter(BUCKET, ORG, run_id, columns, max_rows=UNLIMITED, max_bytes=UNLIMITED, **chunking)
    writer.add_rows(rows)
    writer.finish()
    out = tmp_path / "export.parquet"
    write_parquet(ResultReader.for_run(BUCKET, ORG, run_id), out)
    with duckdb.connect() as con:
        schema = [(row[0], row[1]) for row in con.execute(f"DESCRIBE SELECT * FROM '{out}'").fetchall()]
        return schema, con.execute(f"SELECT * FROM '{out}'").fetchall()


# MySQL's DATETIME has no time zone.
NAIVE = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).replace(tzinfo=None)


def test_mysql_and_duckdb_type_names_and_json_keep_their_types(bucket: str, tmp_path: Path) -> None:
    columns = [
        Column("n", "LONGLONG"),
        Column("amount", "DECIMAL(12,3)"),
        Column("at", "DATETIME"),
        Column("day", "DATE"),
        Column("doc", "jsonb"),
        Column("id", "uuid"),
    ]
    row = [7, Decimal("12.500"), NAIVE, date(2026, 1, 2), {"k": [1, "two"]}, ORG]
    schema, rows = parquet_of([row, [None] * 6], columns, tmp_path)
    assert schema == [
        ("n", "BIGINT"),
        ("amount", "DECIMAL(12,3)"),
        ("at", "TIMESTAMP"),
        ("day", "DATE"),
        ("doc", "JSON"),
        ("id", "UUID"),
    ]
    assert rows == [
        (7, Decimal("12.500"), NAIVE, date(2026, 1, 2), '{"k":[1,"two"]}', ORG),
        (None,) * 6,
    ]


def test_a_bare_numeric_is_as_wide_as_its_values_or_text(bucket: str, tmp_path: Path) -> None:
    columns = [Column("fits", "numeric"), Column("nan", "numeric"), Column("huge", "numeric")]
    rows = [
        [Decimal("-123.4"), Decimal("1"), Decimal("1" + "0" * 40)],
        [Decimal("0.00001"), Decimal("NaN"), Decimal("2")],
    ]
    schema, read = parquet_of(rows, columns, tmp_path)
    assert schema == [("fits", "DECIMAL(8,5)"), ("nan", "VARCHAR"), ("huge", "VARCHAR")]
    assert read == [(Decimal("-123.40000"), "1", "1" + "0" * 40), (Decimal("0.00001"), "NaN", "2")]


def test_repeated_names_are_made_unique_and_rows_keep_their_order_across_chunks(
    bucket: str, tmp_path: Path
) -> None:
    columns = [Column("a", "int4"), Column("a", "text"), Column("a_2", "timestamptz")]
    at = datetime(2026, 5, 1, tzinfo=UTC)
    rows = [[number, f"row {number}", at] for number in range(10)]
    schema, read = parquet_of(rows, columns, tmp_path, chunk_rows=3)
    assert [name for name, _ in schema] == ["a", "a_2", "a_2_2"]
    assert read == [(number, f"row {number}", at) for number in range(10)]


def test_an_empty_result_is_an_empty_file_with_its_columns(bucket: str, tmp_path: Path) -> None:
    schema, read = parquet_of([], [Column("id", "int8"), Column("label", "text")], tmp_path)
    assert schema == [("id", "BIGINT"), ("label", "VARCHAR")]
    assert read == []


def test_a_value_the_type_refuses_fails_the_export(bucket: str, tmp_path: Path) -> None:
    with pytest.raises(ExportFailed, match="Parquet"):
        parquet_of([["not a number"]], [Column("n", "int4")], tmp_path)
