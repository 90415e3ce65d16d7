"""Exports of a stored result as CSV, JSON or XLSX, read chunk by chunk and never held whole in memory.

In AWS an export is streamed into S3 next to the result and handed out as a short-lived signed URL.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from loupe.errors import FieldIssue, RowsExceedFormat
from loupe.results.store import ResultReader, s3_client

ExportFormat = Literal["csv", "json", "xlsx", "parquet"]
# What GET /runs/{id}/export builds inside the request: Parquet needs the export function's own layer.
InstantExportFormat = Literal["csv", "json", "xlsx"]


class ExportFailed(RuntimeError):
    """The rows cannot be written in the format (a value the format's type refuses, a row too wide)."""


@dataclass(frozen=True)
class FormatInfo:
    media_type: str
    extension: str


FORMATS: dict[ExportFormat, FormatInfo] = {
    "csv": FormatInfo("text/csv; charset=utf-8", "csv"),
    "json": FormatInfo("application/json", "json"),
    "xlsx": FormatInfo("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "parquet": FormatInfo("application/vnd.apache.parquet", "parquet"),
}

# What one yield (and one multipart part) gathers: large enough that per-piece costs vanish.
STREAM_PIECE_BYTES = 64 * 1024
PART_BYTES = 8 * 1024 * 1024  # S3 wants at least 5 MiB for every part but the last
XLSX_MAX_ROWS = 1_048_576  # a worksheet's limit, the header row included
# Excel keeps 15 significant digits; integers beyond 2**53 stay exact only as text.
XLSX_EXACT_INTEGER = 2**53
# Exact decimals as PostgreSQL, MySQL (NEWDECIMAL) and DuckDB (DECIMAL(p,s)) name them: values arrive as text.
NUMERIC_TYPES = frozenset({"numeric", "decimal", "newdecimal", "money"})
SIGNED_URL_SECONDS = 300
# OWASP's CSV injection advice: a spreadsheet reads a cell starting with one of these as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# A number as a numeric column's text holds it (decimals and money arrive as strings): left as it is.
PLAIN_NUMBER = re.compile(r"[+-]?[$]?(?=[\d.])\d[\d,]*(?:\.\d*)?(?:[eE][+-]?\d+)?|[+-]?\.\d+")


def fits_xlsx(row_count: int) -> bool:
    """The rows and the header row fit one worksheet."""
    return row_count + 1 <= XLSX_MAX_ROWS


def is_numeric_type(type_name: str) -> bool:
    return type_name.split("(", 1)[0].strip().lower() in NUMERIC_TYPES


def neutralize_formula(text: str) -> str:
    """A leading quote makes a spreadsheet show the text instead of evaluating it."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def _csv_cell(value: Any, numeric_column: bool) -> Any:
    # The common kinds first, by exact type: this runs for every value of every export.
    kind = type(value)
    if kind is str:
        if not value.startswith(FORMULA_TRIGGERS) or (numeric_column and PLAIN_NUMBER.fullmatch(value)):
            return value
        return "'" + value
    if kind is int or kind is float:
        return value
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def stream_csv(reader: ResultReader) -> Iterator[bytes]:
    """RFC 4180 CSV with a header row, UTF-8; NULL is an empty field; text never starts a formula."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    columns = reader.manifest.columns
    writer.writerow([neutralize_formula(column.name) for column in columns])
    numeric = [is_numeric_type(column.type) for column in columns]
    for row in reader.iter_rows():
        writer.writerow([_csv_cell(value, numeric[col]) for col, value in enumerate(row)])
        if buffer.tell() >= STREAM_PIECE_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def stream_json(reader: ResultReader) -> Iterator[bytes]:
    """`{columns, total_rows, truncated, rows: [[...], ...]}`, the shape of a results page, whole."""
    manifest = reader.manifest
    head = {
        "columns": [{"name": column.name, "type": column.type} for column in manifest.columns],
        "total_rows": manifest.row_count,
        "truncated": manifest.truncated,
    }
    # The stored lines are already JSON arrays: they are copied, not decoded and encoded again, into
    # the head object reopened (its closing brace dropped) for the "rows" member.
    pieces = [json.dumps(head, ensure_ascii=False)[:-1].encode(), b',"rows":[']
    size = 0
    separator = b""
    for line in reader.iter_lines():
        pieces.append(separator + line)
        size += len(line) + 1
        separator = b","
        if size >= STREAM_PIECE_BYTES:
            yield b"".join(pieces)
            pieces = []
            size = 0
    pieces.append(b"]}")
    yield b"".join(pieces)


def _numeric_cell(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def write_xlsx(reader: ResultReader, file_obj: IO[bytes]) -> None:
    """One worksheet, header row in bold; xlsxwriter's constant-memory mode flushes each row to disk."""
    import xlsxwriter  # type: ignore[import-untyped]  # the package ships no type information

    manifest = reader.manifest
    if not fits_xlsx(manifest.row_count):
        raise RowsExceedFormat(
            "The result has too many rows for XLSX",
            issues=[FieldIssue("format", f"XLSX holds at most {XLSX_MAX_ROWS - 1} rows; use csv or json")],
        )
    numeric = [is_numeric_type(column.type) for column in manifest.columns]
    workbook = xlsxwriter.Workbook(file_obj, {"constant_memory": True})
    sheet = workbook.add_worksheet("Results")
    bold = workbook.add_format({"bold": True})
    for col, column in enumerate(manifest.columns):
        sheet.write_string(0, col, column.name, bold)
    # Explicit write_* calls: the generic write() would turn "=..." text into formulas and URLs into links.
    for row_number, row in enumerate(reader.iter_rows(), start=1):
        for col, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, bool):
                sheet.write_boolean(row_number, col, value)
            elif isinstance(value, float) or (isinstance(value, int) and abs(value) < XLSX_EXACT_INTEGER):
                sheet.write_number(row_number, col, value)
            elif isinstance(value, str) and numeric[col] and (number := _numeric_cell(value)) is not None:
                sheet.write_number(row_number, col, number)
            elif isinstance(value, dict | list):
                sheet.write_string(
                    row_number, col, json.dumps(value, ensure_ascii=False, separators=(",", ":"))
                )
            else:
                sheet.write_string(row_number, col, str(value))
    workbook.close()


def export_key(reader: ResultReader, fmt: ExportFormat) -> str:
    return f"{reader.manifest_key.rsplit('/', 1)[0]}/export.{FORMATS[fmt].extension}"


def _pieces_of_file(file_obj: IO[bytes]) -> Iterator[bytes]:
    while piece := file_obj.read(PART_BYTES):
        yield piece


def _upload_multipart(
    bucket: str, key: str, pieces: Iterator[bytes], fmt: ExportFormat, filename: str
) -> None:
    client = s3_client()
    upload_id = client.create_multipart_upload(
        Bucket=bucket,
        Key=key,
        ContentType=FORMATS[fmt].media_type,
        ContentDisposition=f'attachment; filename="{filename}"',
    )["UploadId"]
    parts: list[dict[str, Any]] = []

    def send(body: bytes) -> None:
        number = len(parts) + 1
        sent = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    try:
        buffer = bytearray()
        for piece in pieces:
            buffer += piece
            if len(buffer) >= PART_BYTES:
                send(bytes(buffer))
                buffer.clear()
        if buffer or not parts:
            send(bytes(buffer))
        client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise


def export_to_s3(reader: ResultReader, fmt: ExportFormat) -> str:
    """Stream the export into S3 beside the result (the bucket's lifecycle expires both); returns its key."""
    key = export_key(reader, fmt)
    filename = f"run-{reader.manifest.run_id}.{FORMATS[fmt].extension}"
    if fmt == "xlsx":
        # The XLSX zip is assembled at close, so it goes through a temporary file (Lambda's /tmp).
        with tempfile.TemporaryFile() as spool:
            write_xlsx(reader, spool)
            spool.seek(0)
            _upload_multipart(reader.bucket, key, _pieces_of_file(spool), fmt, filename)
    elif fmt == "parquet":
        # Parquet's footer comes last too; imported here, as only the export function's layer has DuckDB.
        from loupe.results.parquet import write_parquet

        with tempfile.TemporaryDirectory(prefix="loupe-export-") as folder:
            path = Path(folder, filename)
            write_parquet(reader, path)
            with path.open("rb") as written:
                _upload_multipart(reader.bucket, key, _pieces_of_file(written), fmt, filename)
    else:
        pieces = stream_csv(reader) if fmt == "csv" else stream_json(reader)
        _upload_multipart(reader.bucket, key, pieces, fmt, filename)
    return key


def signed_url(bucket: str, key: str, seconds: int = SIGNED_URL_SECONDS) -> str:
    url: str = s3_client().generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=seconds
    )
    return url
