"""Parquet exports of a stored result through DuckDB, with the columns' types: the stored gzip chunks are
read as they are, each line's JSON array cast to the column's type, and written in one streaming COPY.

DuckDB ships only in the export function's own layer (docs/adr/0011-exports-in-the-background.md).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from loupe.connectors import Column
from loupe.results.exports import NUMERIC_TYPES, ExportFailed
from loupe.results.store import ResultReader, s3_client

# The Parquet type of each engine's type name (PostgreSQL's, MySQL's FIELD_TYPE names, DuckDB's),
# lower-cased; any other type is kept as text.
INTEGER_TYPES = frozenset(
    {"int2", "int4", "int8", "smallint", "integer", "int", "bigint", "tinyint", "short", "long"}
    | {"longlong", "int24", "year", "usmallint", "utinyint", "uinteger"}
)
TYPES = {
    **dict.fromkeys(INTEGER_TYPES, "BIGINT"),
    **dict.fromkeys(("float4", "float8", "real", "double", "float", "double precision"), "DOUBLE"),
    **dict.fromkeys(("bool", "boolean"), "BOOLEAN"),
    **dict.fromkeys(("date", "newdate"), "DATE"),
    **dict.fromkeys(("timestamp", "datetime", "timestamp without time zone"), "TIMESTAMP"),
    **dict.fromkeys(("timestamptz", "timestamp with time zone"), "TIMESTAMPTZ"),
    **dict.fromkeys(("time", "time without time zone"), "TIME"),
    **dict.fromkeys(("json", "jsonb"), "JSON"),
    "uuid": "UUID",
}
# Parquet's and DuckDB's widest exact decimal.
MAX_DECIMAL_DIGITS = 38
DECLARED_DECIMAL = re.compile(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)")
# A line is one row; DuckDB refuses longer ones, and the export fails rather than cutting a value.
# Its read buffer must hold a line (by default it would be 16 lines, over the memory limit).
MAX_LINE_BYTES = 16 * 1024 * 1024
READ_BUFFER_BYTES = 2 * MAX_LINE_BYTES
# DuckDB spills to /tmp past this instead of growing with the result.
MEMORY_LIMIT = "512MB"
# No line of JSON holds a raw control character (they are escaped), so this never splits one.
LINE_DELIMITER = "\x01"
PLAIN_DECIMAL = r"[+-]?\d+(\.\d+)?"
# The SQL below is built from code (type names, column positions, quoted names and paths), never input.


def _base_type(type_name: str) -> str:
    return type_name.split("(", 1)[0].strip().lower()


def _declared_decimal(type_name: str) -> str | None:
    match = DECLARED_DECIMAL.search(type_name)
    if match is None or not 0 < int(match[1]) <= MAX_DECIMAL_DIGITS:
        return None
    return f"DECIMAL({match[1]},{match[2]})"


def _measured_decimals(con: Any, lines: str, columns: dict[int, Column]) -> dict[int, str]:
    """A DECIMAL wide enough for every value of each numeric column that declares no precision (what
    PostgreSQL's bare `numeric` is), or text when a value is not a plain decimal (NaN, Infinity, money)
    or needs more than 38 digits."""
    if not columns:
        return {}
    measures = []
    for index in columns:
        value = f"(j->>{index})"
        measures += [
            f"max(length(split_part(ltrim({value}, '+-'), '.', 1)))",
            f"max(length(split_part({value}, '.', 2)))",
            f"count(*) FILTER ({value} IS NOT NULL AND NOT regexp_full_match({value}, '{PLAIN_DECIMAL}'))",
        ]
    found = con.execute(f"SELECT {', '.join(measures)} FROM {lines}").fetchone()  # noqa: S608
    types = {}
    for position, index in enumerate(columns):
        whole, scale, odd = found[3 * position : 3 * position + 3]
        whole, scale = whole or 1, scale or 0
        fits = odd == 0 and whole + scale <= MAX_DECIMAL_DIGITS
        types[index] = f"DECIMAL({whole + scale},{scale})" if fits else "VARCHAR"
    return types


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _unique_names(columns: list[Column]) -> list[str]:
    """Column names as Parquet needs them, unique: a repeated name gets `_2`, `_3`..."""
    seen: set[str] = set()
    names = []
    for column in columns:
        name, number = column.name, 1
        while name in seen:
            number += 1
            name = f"{column.name}_{number}"
        seen.add(name)
        names.append(name)
    return names


def write_parquet(reader: ResultReader, out: Path) -> None:
    """The result as one Parquet file (zstd) at `out`, columns typed from the result's column types."""
    import duckdb

    manifest = reader.manifest
    with tempfile.TemporaryDirectory(prefix="loupe-parquet-") as folder:
        # The stored chunks are gzip JSON Lines already: downloaded as they are, never decoded in Python.
        paths = []
        for chunk in manifest.chunks:
            path = Path(folder, f"{chunk.index:06d}.jsonl.gz")
            s3_client().download_file(reader.bucket, chunk.key, str(path))
            paths.append(str(path))
        con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "temp_directory": folder})
        try:
            # Files in order, rows in order: insertion order is kept (DuckDB's default).
            files = "[" + ", ".join("'" + path.replace("'", "''") + "'" for path in paths) + "]"
            lines = (
                f"(SELECT line::JSON AS j FROM read_csv({files}, columns={{'line': 'VARCHAR'}},"  # noqa: S608
                f" delim='{LINE_DELIMITER}', quote='', escape='', header=false, auto_detect=false,"
                f" compression='gzip', max_line_size={MAX_LINE_BYTES}, buffer_size={READ_BUFFER_BYTES}))"
                if paths
                else "(SELECT NULL::JSON AS j WHERE false)"
            )
            types = {
                index: TYPES.get(_base_type(column.type), "VARCHAR")
                for index, column in enumerate(manifest.columns)
            }
            undeclared: dict[int, Column] = {}
            for index, column in enumerate(manifest.columns):
                if _base_type(column.type) in NUMERIC_TYPES - {"money"}:
                    declared = _declared_decimal(column.type)
                    if declared is None:
                        undeclared[index] = column
                    else:
                        types[index] = declared
            types.update(_measured_decimals(con, lines, undeclared))
            # JSON values keep their JSON text (->), a JSON null being NULL; every other value is cast
            # from its text (->>).
            select = ", ".join(
                f"CASE WHEN json_type(j->{index}) = 'NULL' THEN NULL ELSE j->{index} END AS {_quoted(name)}"
                if types[index] == "JSON"
                else f"CAST(j->>{index} AS {types[index]}) AS {_quoted(name)}"
                for index, name in enumerate(_unique_names(manifest.columns))
            )
            target = "'" + str(out).replace("'", "''") + "'"
            copy = f"COPY (SELECT {select} FROM {lines}) TO {target} (FORMAT parquet, COMPRESSION zstd)"  # noqa: S608
            con.execute(copy)
        except duckdb.Error as error:
            raise ExportFailed(f"Parquet: {error}") from None
        finally:
            con.close()
