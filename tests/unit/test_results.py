"""Result storage in S3 (moto): lossless values, pages that download only their chunks, limits, exports
and memory that stays flat whatever the row count."""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
import tracemalloc
import zipfile
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4
from xml.etree import ElementTree  # our own output, not untrusted XML

import boto3
import pytest
from moto import mock_aws

from loupe.connectors import Column
from loupe.errors import InvalidListQuery, RowTooLarge
from loupe.results import exports, store
from loupe.results.store import ResultReader, ResultTooLarge, ResultUnavailable, ResultWriter

BUCKET = "loupe-results-test"
ORG = UUID("00000000-0000-4000-8000-000000000001")
UNLIMITED = 10**12


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A bucket in moto; the module's client is made inside the mock."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        store.s3_client.cache_clear()
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield BUCKET
    store.s3_client.cache_clear()


@pytest.fixture
def downloads(bucket: str) -> list[str]:
    """The keys of every GetObject the module's client makes, in order."""
    keys: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        keys.append(params["Key"])

    store.s3_client().meta.events.register("provide-client-params.s3.GetObject", record)
    return keys


def stored_keys(run_id: UUID) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=store.result_prefix(ORG, run_id))
    return sorted(item["Key"] for item in listed.get("Contents", []))


def write(
    rows: Sequence[Sequence[Any]],
    columns: list[Column],
    *,
    run_id: UUID | None = None,
    max_rows: int = UNLIMITED,
    max_bytes: int = UNLIMITED,
    **chunking: int,
) -> store.Manifest:
    writer = ResultWriter(
        BUCKET, ORG, run_id or uuid4(), columns, max_rows=max_rows, max_bytes=max_bytes, **chunking
    )
    writer.add_rows(rows)
    return writer.finish()


def reader_for(manifest: store.Manifest) -> ResultReader:
    return ResultReader.for_run(BUCKET, UUID(manifest.organization_id), UUID(manifest.run_id))


INT_COLUMNS = [Column("n", "int8"), Column("label", "text")]


def numbered(count: int) -> list[tuple[int, str]]:
    return [(n, f"row {n}") for n in range(count)]


def test_every_value_type_round_trips_to_its_json_form(bucket: str) -> None:
    columns = [Column("value", "any")]
    values: list[tuple[Any, Any]] = [
        (None, None),
        (True, True),
        (-(2**63), -(2**63)),
        (0.1, 0.1),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        (Decimal("12345678901234567890.000000001"), "12345678901234567890.000000001"),
        ('line\nbreak \u2028 ünïcødé "quoted" ],[', 'line\nbreak \u2028 ünïcødé "quoted" ],['),
        (
            datetime(2026, 11, 26, 1, 2, 3, 456789, tzinfo=timezone(timedelta(hours=-5))),
            "2026-11-26T01:02:03.456789-05:00",
        ),
        (datetime(2026, 1, 1, 0, 0), "2026-01-01T00:00:00"),  # noqa: DTZ001 (naive timestamp columns exist)
        (date(2026, 2, 28), "2026-02-28"),
        (time(23, 59, 58, 1), "23:59:58.000001"),
        (timedelta(days=-1, seconds=3600), "-P0DT82800S"),
        (timedelta(days=3, seconds=5, microseconds=250), "P3DT5.000250S"),
        (UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
        (b"\x00\xffbytes", "AP9ieXRlcw=="),
        (memoryview(b"view"), "dmlldw=="),
        ({"a": [1, None, {"b": "c"}]}, {"a": [1, None, {"b": "c"}]}),
        ([1.5, float("nan")], [1.5, "NaN"]),
        (ipaddress.ip_address("10.0.0.1"), "10.0.0.1"),
    ]
    manifest = write([(value,) for value, _ in values], columns, chunk_rows=4)

    page = reader_for(manifest).page(0, 100)

    assert page.rows == [[expected] for _, expected in values]
    assert [(column.name, column.type) for column in page.columns] == [(c.name, c.type) for c in columns]
    assert (page.total_rows, page.offset, page.limit) == (len(values), 0, 100)


def test_the_manifest_describes_the_chunks_under_the_run_prefix(bucket: str) -> None:
    run_id = uuid4()
    manifest = write(numbered(10), INT_COLUMNS, run_id=run_id, chunk_rows=4)

    prefix = f"org/{ORG}/runs/{run_id}/"
    assert stored_keys(run_id) == [
        f"{prefix}chunk-000000.jsonl.gz",
        f"{prefix}chunk-000001.jsonl.gz",
        f"{prefix}chunk-000002.jsonl.gz",
        f"{prefix}manifest.json",
    ]
    assert [(chunk.index, chunk.first_row, chunk.rows) for chunk in manifest.chunks] == [
        (0, 0, 4),
        (1, 4, 4),
        (2, 8, 2),
    ]
    assert (manifest.row_count, manifest.chunk_rows, manifest.truncated) == (10, 4, False)
    assert manifest.byte_size == sum(chunk.compressed_bytes for chunk in manifest.chunks) > 0
    assert manifest.uncompressed_bytes == sum(chunk.uncompressed_bytes for chunk in manifest.chunks)
    assert datetime.fromisoformat(manifest.created_at).tzinfo is not None
    assert reader_for(manifest).manifest == manifest
    raw = boto3.client("s3").get_object(Bucket=BUCKET, Key=f"{prefix}manifest.json")["Body"].read()
    assert json.loads(raw)["columns"] == [{"name": "n", "type": "int8"}, {"name": "label", "type": "text"}]


def test_a_page_downloads_only_the_chunks_it_overlaps(bucket: str, downloads: list[str]) -> None:
    manifest = write(numbered(1000), INT_COLUMNS, chunk_rows=100)
    reader = reader_for(manifest)
    manifest_key = reader.manifest_key
    chunk_key = {chunk.index: chunk.key for chunk in manifest.chunks}

    inside = reader.page(250, 50)
    assert inside.rows == [[n, f"row {n}"] for n in range(250, 300)]
    assert downloads == [manifest_key, chunk_key[2]]

    downloads.clear()
    across = reader.page(180, 40)
    assert across.rows == [[n, f"row {n}"] for n in range(180, 220)]
    assert downloads == [chunk_key[1], chunk_key[2]]

    downloads.clear()
    exact = reader.page(300, 100)
    assert [row[0] for row in exact.rows] == list(range(300, 400))
    assert downloads == [chunk_key[3]]

    downloads.clear()
    tail = reader.page(990, 100)
    assert [row[0] for row in tail.rows] == list(range(990, 1000))
    assert (tail.total_rows, tail.offset, tail.limit) == (1000, 990, 100)
    assert downloads == [chunk_key[9]]

    downloads.clear()
    assert reader.page(1000, 10).rows == []
    assert downloads == []


def test_wide_rows_close_chunks_early_and_pages_still_find_them(bucket: str, downloads: list[str]) -> None:
    rows = [(n, "x" * (10 if n % 7 else 500)) for n in range(200)]
    manifest = write(rows, INT_COLUMNS, chunk_rows=50, chunk_bytes=2000)

    assert len({chunk.rows for chunk in manifest.chunks}) > 1
    assert all(chunk.uncompressed_bytes < 2000 + 520 for chunk in manifest.chunks)
    reader = reader_for(manifest)
    for offset, limit in [(0, 200), (13, 9), (77, 61), (199, 5)]:
        assert reader.page(offset, limit).rows == [list(row) for row in rows[offset : offset + limit]]
    downloads.clear()
    reader.page(120, 1)
    assert len(downloads) == 1


def test_a_page_ends_at_its_byte_budget_as_the_proxy_response_counts_it(bucket: str) -> None:
    rows = [(n, '"' * 10 if n % 2 else "ü" * 10) for n in range(10)]
    reader = reader_for(write(rows, INT_COLUMNS))
    columns = len(
        json.dumps(
            json.dumps(
                [{"name": "n", "type": "int8"}, {"name": "label", "type": "text"}], separators=(",", ":")
            )
        )
    )
    # In the proxy response each ü is \\u00fc (7 bytes), each quote \\\" (4); [n,\"...\"] and a comma: 9.
    sizes = [len(json.dumps(json.dumps([n, text], separators=(",", ":")))) - 2 + 1 for n, text in rows]
    assert sizes[:2] == [9 + 10 * 7, 9 + 10 * 4]
    budget = columns - 2 + sum(sizes[:3])

    page = reader.page(0, 100, max_bytes=budget)
    assert page.rows == [list(row) for row in rows[:3]]
    assert (page.next_offset, page.truncated_by) == (3, "bytes")
    assert reader.page(0, 100, max_bytes=budget - 1).next_offset == 2
    assert (reader.page(0, 2).next_offset, reader.page(0, 2).truncated_by) == (2, "rows")
    assert (reader.page(8, 2).next_offset, reader.page(8, 2).truncated_by) == (None, None)
    with pytest.raises(RowTooLarge) as refused:
        reader.page(5, 100, max_bytes=columns - 2 + sizes[5] - 1)
    assert refused.value.offset == 5


def test_rows_beyond_max_rows_only_mark_the_result_truncated(bucket: str) -> None:
    writer = ResultWriter(BUCKET, ORG, uuid4(), INT_COLUMNS, max_rows=5, max_bytes=UNLIMITED, chunk_rows=2)
    assert writer.add_rows(numbered(3)) is True
    assert writer.add_rows(numbered(6)[3:]) is False
    manifest = writer.finish()

    assert (manifest.row_count, manifest.truncated) == (5, True)
    assert [row[0] for row in reader_for(manifest).page(0, 10).rows] == [0, 1, 2, 3, 4]


def test_exactly_max_rows_is_not_truncated(bucket: str) -> None:
    writer = ResultWriter(BUCKET, ORG, uuid4(), INT_COLUMNS, max_rows=5, max_bytes=UNLIMITED)
    assert writer.add_rows(numbered(5)) is True
    manifest = writer.finish()
    assert (manifest.row_count, manifest.truncated) == (5, False)


def test_exceeding_max_bytes_raises_and_leaves_nothing_stored(bucket: str) -> None:
    run_id = uuid4()
    writer = ResultWriter(BUCKET, ORG, run_id, INT_COLUMNS, max_rows=UNLIMITED, max_bytes=1000, chunk_rows=5)
    with pytest.raises(ResultTooLarge) as raised:
        writer.add_rows(numbered(100))
    assert raised.value.max_bytes == 1000
    assert stored_keys(run_id) == []
    with pytest.raises(RuntimeError):
        writer.finish()


def test_a_row_of_the_wrong_width_is_refused(bucket: str) -> None:
    writer = ResultWriter(BUCKET, ORG, uuid4(), INT_COLUMNS, max_rows=10, max_bytes=UNLIMITED)
    with pytest.raises(ValueError, match="3 values for 2 columns"):
        writer.add_rows([(1, "a", "extra")])


def test_an_empty_result_has_a_manifest_and_no_chunks(bucket: str) -> None:
    run_id = uuid4()
    manifest = write([], INT_COLUMNS, run_id=run_id)

    assert (manifest.row_count, manifest.chunks, manifest.byte_size) == (0, [], 0)
    assert stored_keys(run_id) == [store.manifest_key(ORG, run_id)]
    reader = reader_for(manifest)
    assert reader.page(0, 10).rows == []
    assert b"".join(exports.stream_csv(reader)) == b"n,label\r\n"
    assert json.loads(b"".join(exports.stream_json(reader)))["rows"] == []


def test_a_result_never_stored_is_unavailable(bucket: str) -> None:
    with pytest.raises(ResultUnavailable):
        ResultReader.for_run(BUCKET, ORG, uuid4()).page(0, 10)


def test_a_bad_page_request_is_refused(bucket: str) -> None:
    reader = reader_for(write(numbered(3), INT_COLUMNS))
    with pytest.raises(ValueError, match="offset"):
        reader.page(-1, 10)
    with pytest.raises(ValueError, match="limit"):
        reader.page(0, 0)


EXPORT_COLUMNS = [
    Column("id", "int4"),
    Column("name", "text"),
    Column("amount", "numeric"),
    Column("active", "bool"),
    Column("at", "timestamptz"),
    Column("extra", "jsonb"),
]
EXPORT_ROWS = [
    (1, "plain", Decimal("10.50"), True, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), {"k": [1, 2]}),
    (2, 'comma, "quote"\nnewline', Decimal("-0.001"), False, None, None),
    (3, '=HYPERLINK("http://x")', None, None, datetime(2026, 6, 1, tzinfo=UTC), [True]),
    (2**60, "https://example.com", Decimal("1e3"), True, None, "text"),
]


@pytest.fixture
def exported(bucket: str) -> ResultReader:
    return reader_for(write(EXPORT_ROWS, EXPORT_COLUMNS, chunk_rows=3))


def test_csv_export_matches_the_rows(exported: ResultReader) -> None:
    text = b"".join(exports.stream_csv(exported)).decode()

    assert list(csv.reader(io.StringIO(text))) == [
        ["id", "name", "amount", "active", "at", "extra"],
        ["1", "plain", "10.50", "true", "2026-01-02T03:04:05+00:00", '{"k":[1,2]}'],
        ["2", 'comma, "quote"\nnewline', "-0.001", "false", "", ""],
        ["3", '\'=HYPERLINK("http://x")', "", "", "2026-06-01T00:00:00+00:00", "[true]"],
        [str(2**60), "https://example.com", "1E+3", "true", "", "text"],
    ]


FORMULA_COLUMNS = [
    Column("=cmd|' /C calc'!A0", "text"),
    Column("amount", "numeric"),
    Column("price", "money"),
    Column("mysql_amount", "NEWDECIMAL"),
    Column("duck_amount", "DECIMAL(12,2)"),
    Column("n", "int4"),
    Column("doc", "jsonb"),
]
FORMULA_ROWS = [
    ("=1+1", "-1234.50", "-$1,234.50", "+3", "-0.5", -7, "=SUM(A1)"),
    ("+1", "1E+3", "$0.00", "-2", ".25", 0, {"k": "=x"}),
    ("-2", "-Infinity", "=1", "-", "@A1", 1, "plain"),
    ("@SUM(A1)", "NaN", None, "1e-3", "-1,000", 2, None),
    ("\tleading tab", None, None, None, None, None, None),
    ("\rleading return", None, None, None, None, None, None),
    ("a=b, not a formula", None, None, None, None, None, None),
]


def test_csv_export_neutralizes_formulas_in_text_but_not_numbers(bucket: str) -> None:
    """OWASP's CSV injection advice: a text cell or header that a spreadsheet would evaluate starts with
    a quote; exact decimals, whatever engine names their type, stay numbers."""
    reader = reader_for(write(FORMULA_ROWS, FORMULA_COLUMNS))
    text = b"".join(exports.stream_csv(reader)).decode()

    assert list(csv.reader(io.StringIO(text))) == [
        ["'=cmd|' /C calc'!A0", "amount", "price", "mysql_amount", "duck_amount", "n", "doc"],
        ["'=1+1", "-1234.50", "-$1,234.50", "+3", "-0.5", "-7", "'=SUM(A1)"],
        ["'+1", "1E+3", "$0.00", "-2", ".25", "0", '{"k":"=x"}'],
        ["'-2", "'-Infinity", "'=1", "'-", "'@A1", "1", "plain"],
        ["'@SUM(A1)", "NaN", "", "1e-3", "-1,000", "2", ""],
        ["'\tleading tab", "", "", "", "", "", ""],
        ["'\rleading return", "", "", "", "", "", ""],
        ["a=b, not a formula", "", "", "", "", "", ""],
    ]


def test_xlsx_export_keeps_formula_text_as_text(bucket: str) -> None:
    """XLSX writes text as strings, never formulas: its values stay as the database returned them."""
    output = io.BytesIO()
    exports.write_xlsx(reader_for(write(FORMULA_ROWS[:1], FORMULA_COLUMNS)), output)
    sheet = read_sheet(output.getvalue())

    assert sheet[0][0] == "=cmd|' /C calc'!A0"
    assert sheet[1][:5] == ["=1+1", -1234.5, "-$1,234.50", 3.0, -0.5]


def test_json_export_matches_a_whole_page(exported: ResultReader) -> None:
    document = json.loads(b"".join(exports.stream_json(exported)))

    assert document == {
        "columns": [{"name": column.name, "type": column.type} for column in EXPORT_COLUMNS],
        "total_rows": 4,
        "truncated": False,
        "rows": exported.page(0, 10).rows,
    }


def test_streamed_exports_come_in_bounded_pieces(bucket: str) -> None:
    reader = reader_for(write(numbered(20_000), INT_COLUMNS, chunk_rows=3000))

    for stream in (exports.stream_csv(reader), exports.stream_json(reader)):
        pieces = list(stream)
        assert len(pieces) > 3
        assert max(len(piece) for piece in pieces) < 2 * exports.STREAM_PIECE_BYTES
    lines = b"".join(exports.stream_csv(reader)).split(b"\r\n")
    assert lines[1] == b"0,row 0"
    assert lines[20_000] == b"19999,row 19999"


SHEET_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def read_sheet(data: bytes) -> list[list[Any]]:
    """Just enough of SpreadsheetML to read back what write_xlsx writes: typed cells, in order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheet = ElementTree.fromstring(archive.read("xl/worksheets/sheet1.xml"))  # noqa: S314
        shared: list[str] = []
        if "xl/sharedStrings.xml" in archive.namelist():
            strings = ElementTree.fromstring(archive.read("xl/sharedStrings.xml"))  # noqa: S314
            shared = ["".join(t.text or "" for t in si.iter(f"{{{SHEET_NS['m']}}}t")) for si in strings]
    rows: list[list[Any]] = []
    for row in sheet.iterfind("m:sheetData/m:row", SHEET_NS):
        cells: list[Any] = []
        for cell in row.iterfind("m:c", SHEET_NS):
            column = re.sub(r"\d", "", cell.get("r", ""))
            position = ord(column) - ord("A")
            cells.extend([None] * (position - len(cells)))
            kind, value = cell.get("t"), cell.findtext("m:v", namespaces=SHEET_NS)
            assert cell.find("m:f", SHEET_NS) is None, "no cell may become a formula"
            if kind == "s":
                cells.append(shared[int(value or 0)])
            elif kind == "inlineStr":
                cells.append("".join(t.text or "" for t in cell.iter(f"{{{SHEET_NS['m']}}}t")))
            elif kind == "b":
                cells.append(value == "1")
            else:
                cells.append(float(value or 0))
        rows.append(cells)
    return rows


def test_xlsx_export_matches_the_rows(exported: ResultReader) -> None:
    output = io.BytesIO()
    exports.write_xlsx(exported, output)

    assert read_sheet(output.getvalue()) == [
        ["id", "name", "amount", "active", "at", "extra"],
        [1.0, "plain", 10.5, True, "2026-01-02T03:04:05+00:00", '{"k":[1,2]}'],
        [2.0, 'comma, "quote"\nnewline', -0.001, False],
        [3.0, '=HYPERLINK("http://x")', None, None, "2026-06-01T00:00:00+00:00", "[true]"],
        [str(2**60), "https://example.com", 1000.0, True, None, "text"],
    ]


def test_xlsx_refuses_more_rows_than_a_worksheet_holds(bucket: str) -> None:
    run_id = uuid4()
    too_many = store.Manifest(
        organization_id=str(ORG),
        run_id=str(run_id),
        columns=INT_COLUMNS,
        row_count=exports.XLSX_MAX_ROWS,
        chunk_rows=store.CHUNK_ROWS,
        chunks=[],
        byte_size=0,
        uncompressed_bytes=0,
        truncated=False,
        created_at=datetime.now(UTC).isoformat(),
    )
    boto3.client("s3").put_object(Bucket=BUCKET, Key=store.manifest_key(ORG, run_id), Body=too_many.to_json())

    with pytest.raises(InvalidListQuery) as raised:
        exports.write_xlsx(ResultReader.for_run(BUCKET, ORG, run_id), io.BytesIO())
    assert raised.value.issues[0].field == "format"


@pytest.mark.parametrize("fmt", ["csv", "json", "xlsx"])
def test_export_to_s3_stores_the_file_beside_the_result(
    exported: ResultReader, fmt: exports.ExportFormat
) -> None:
    key = exports.export_to_s3(exported, fmt)

    run_id = exported.manifest.run_id
    assert key == f"org/{ORG}/runs/{run_id}/export.{fmt}"
    stored = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)
    assert stored["ContentType"] == exports.FORMATS[fmt].media_type
    assert stored["ContentDisposition"] == f'attachment; filename="run-{run_id}.{fmt}"'
    body = stored["Body"].read()
    if fmt == "csv":
        assert body == b"".join(exports.stream_csv(exported))
    elif fmt == "json":
        assert body == b"".join(exports.stream_json(exported))
    else:
        assert read_sheet(body)[1][:2] == [1.0, "plain"]


def test_an_export_larger_than_a_part_is_uploaded_in_parts(
    bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = reader_for(write(numbered(120_000), INT_COLUMNS))
    parts: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        parts.append(params["PartNumber"])

    store.s3_client().meta.events.register("provide-client-params.s3.UploadPart", record)
    # Parts of 1 MiB keep the test small; moto is told to accept them as S3 accepts 5 MiB ones.
    monkeypatch.setattr(exports, "PART_BYTES", 1024 * 1024)
    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 1024 * 1024)

    key = exports.export_to_s3(reader, "csv")

    assert parts == [1, 2]
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert body == b"".join(exports.stream_csv(reader))


def test_signed_url_names_the_object_and_expires(bucket: str) -> None:
    url = exports.signed_url(BUCKET, "org/x/runs/y/export.csv", seconds=120)

    parts = urlsplit(url)
    assert parts.path.endswith("/org/x/runs/y/export.csv")
    assert BUCKET in parts.netloc + parts.path
    query = parse_qs(parts.query)
    assert query["X-Amz-Expires"] == ["120"]
    assert query["X-Amz-Signature"][0]


class DiscardingS3:
    """Stands in for S3 in the memory test only: moto keeps every object in memory, which is the store's
    cost, not the writer's."""

    def __init__(self) -> None:
        self.chunks = 0

    def put_object(self, **params: Any) -> None:
        self.chunks += 1


def writer_peak_bytes(row_count: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, DiscardingS3]:
    client = DiscardingS3()
    monkeypatch.setattr(store, "s3_client", lambda: client)
    columns = [Column(name, "int8") for name in "abcdef"]
    writer = ResultWriter("unused", ORG, uuid4(), columns, max_rows=UNLIMITED, max_bytes=UNLIMITED)
    # One batch of distinct rows, made before tracing and sent again and again: the peak is the writer's.
    batch = [(n, -n, n * 7, n % 13, n * 1_000_003, n // 3) for n in range(10_000)]
    tracemalloc.start()
    try:
        for _ in range(row_count // len(batch)):
            writer.add_rows(batch)
        writer.finish()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, client


def test_writer_memory_does_not_grow_with_the_row_count(monkeypatch: pytest.MonkeyPatch) -> None:
    small_peak, _ = writer_peak_bytes(200_000, monkeypatch)
    large_peak, client = writer_peak_bytes(1_000_000, monkeypatch)

    assert client.chunks == 1_000_000 // store.CHUNK_ROWS + 1  # the chunks and the manifest
    assert large_peak < 1.25 * small_peak
    assert large_peak < 32 * 1024 * 1024
