"""Writes a run's rows to S3 as gzip JSON Lines chunks plus a manifest, and reads pages back chunk by chunk.

Memory is bounded by one chunk whatever the row count: each chunk is uploaded as soon as it is full.
"""

from __future__ import annotations

import base64
import bisect
import functools
import json
import math
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from loupe.connectors import Column
from loupe.errors import NotFound, RowTooLarge
from loupe.results.page import (
    PAGE_MAX_BYTES,
    PageBound,
    ResultColumn,
    RunResults,
    body_text,
    proxy_bytes,
    take_within,
)

# 50,000 rows of a typical width are a few MB decoded: one chunk serves any page of up to 10,000 rows
# (two at a boundary) in tens of milliseconds, and 10,000,000 rows make only 200 objects.
CHUNK_ROWS = 50_000
# Wide rows close a chunk earlier, so the memory a chunk takes does not depend on the row width.
CHUNK_BYTES = 8 * 1024 * 1024
# Level 1 compresses five times faster than gzip's default 6 and stores about 1.15x what
# `\copy ... csv | gzip` does (JSON's quotes and brackets compress away almost entirely).
GZIP_LEVEL = 1
GZIP_WBITS = 31  # zlib's way of asking for the gzip container
MANIFEST_NAME = "manifest.json"
DELETE_BATCH = 1000
# Rows encoded in one pass: many enough that the pass's fixed cost vanishes, few enough that a piece of
# wide rows cannot push a chunk far past CHUNK_BYTES.
PIECE_ROWS = 1_000


@functools.cache
def s3_client() -> Any:
    """Created on first use (boto3 costs cold-start time); AWS_ENDPOINT_URL points it at moto locally."""
    import boto3
    from botocore.config import Config

    # Signature V4 for presigned URLs: V2 is refused by newer regions and by SSE-KMS objects.
    return boto3.client("s3", config=Config(signature_version="s3v4"))


class ResultTooLarge(RuntimeError):
    """The rows exceed the writer's `max_bytes`; the chunks already written have been deleted."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        super().__init__(f"The result exceeds {max_bytes} bytes")


class ResultUnavailable(NotFound):
    default_message = "The run's results are not available (never stored, or expired)"


@dataclass(frozen=True)
class Chunk:
    index: int
    key: str
    rows: int
    first_row: int
    compressed_bytes: int
    uncompressed_bytes: int


@dataclass(frozen=True)
class Manifest:
    organization_id: str
    run_id: str
    columns: list[Column]
    row_count: int
    chunk_rows: int
    chunks: list[Chunk]
    byte_size: int
    uncompressed_bytes: int
    truncated: bool
    created_at: str

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        data = json.loads(raw)
        data["columns"] = [Column(**column) for column in data["columns"]]
        data["chunks"] = [Chunk(**chunk) for chunk in data["chunks"]]
        return cls(**data)


def result_prefix(organization_id: UUID, run_id: UUID) -> str:
    return f"org/{organization_id}/runs/{run_id}"


def manifest_key(organization_id: UUID, run_id: UUID) -> str:
    return f"{result_prefix(organization_id, run_id)}/{MANIFEST_NAME}"


class DeleteFailed(RuntimeError):
    """S3 refused to delete some objects; they are still there."""


def delete_keys(bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), DELETE_BATCH):
        batch = keys[start : start + DELETE_BATCH]
        answer = s3_client().delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
        )
        if answer.get("Errors"):
            raise DeleteFailed(f"{len(answer['Errors'])} objects were not deleted")


def delete_run_objects(bucket: str, runs: list[tuple[UUID, UUID]]) -> int:
    """Delete everything stored for each (organization id, run id): chunks, manifest, exports. Deleting
    what is already gone is no error, so a repeated call is harmless. Returns the objects deleted."""
    paginator = s3_client().get_paginator("list_objects_v2")
    keys = [
        stored["Key"]
        for organization_id, run_id in runs
        for page in paginator.paginate(Bucket=bucket, Prefix=f"{result_prefix(organization_id, run_id)}/")
        for stored in page.get("Contents", [])
    ]
    delete_keys(bucket, keys)
    return len(keys)


def _iso_duration(value: timedelta) -> str:
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    seconds = f"{value.seconds}.{value.microseconds:06d}" if value.microseconds else str(value.seconds)
    return f"{sign}P{value.days}DT{seconds}S"


_TEXT_FORMS: dict[type, Callable[[Any], Any]] = {
    datetime: datetime.isoformat,
    date: date.isoformat,
    time: time.isoformat,
    Decimal: str,
    UUID: str,
    timedelta: _iso_duration,
}


def _json_default(value: Any) -> Any:
    """JSON has no type for these: each becomes the string a client parses back with the column type."""
    text_form = _TEXT_FORMS.get(type(value))
    if text_form is not None:
        return text_form(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, set | frozenset):
        return list(value)
    # Anything else a driver returns (subclasses of the above, ranges, network types, enums) is kept in
    # its text form.
    return value.isoformat() if isinstance(value, datetime | date | time) else str(value)


def _finite(value: Any) -> Any:
    """NaN and infinities are not JSON numbers; they are kept as the strings PostgreSQL prints for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value


# One encoder for every row: json.dumps builds one per call, which doubles the cost of a narrow row.
# Rows are never circular; allow_nan=False sends rows with NaN to the slower path below.
_ENCODER = json.JSONEncoder(
    separators=(",", ":"), default=_json_default, check_circular=False, allow_nan=False, ensure_ascii=False
)


def encode_rows(rows: Sequence[Sequence[Any]]) -> bytes:
    """Rows as JSON arrays, one per line, each line ending in a newline; string escapes guarantee that a
    line holds no other newline.

    The rows are encoded in one call (a call per row costs three times as much) and the text is cut at
    the `],[` between rows. A value whose text holds `],[` (a string, a nested array) makes more pieces
    than rows, and that batch is encoded row by row instead; so is a batch with NaN or infinities.
    """
    if not rows:
        return b""
    try:
        text = _ENCODER.encode(rows)
    except ValueError:
        return _encode_each(rows)
    # "[[a,b],[c,d]]" without its outer brackets, cut between rows.
    pieces = text[2:-2].split("],[")
    if len(pieces) != len(rows):
        return _encode_each(rows)
    return ("[" + "]\n[".join(pieces) + "]\n").encode()


def json_row(row: Sequence[Any]) -> list[Any]:
    """A row's values as the results API shows them (dates and numerics as text, NaN as a string)."""
    values: list[Any] = json.loads(encode_rows([row]))
    return values


def _encode_each(rows: Sequence[Sequence[Any]]) -> bytes:
    lines = []
    for row in rows:
        try:
            lines.append(_ENCODER.encode(row))
        except ValueError:
            lines.append(_ENCODER.encode(_finite(row)))
    return ("\n".join(lines) + "\n").encode()


class ResultWriter:
    """Streams rows (batches from a cursor's fetchmany) into chunks; `finish()` writes the manifest.

    Feed it at most `max_rows + 1` rows: the extra row only marks the result as truncated.
    `max_bytes` bounds the decoded JSON size (what a page or an export handles), not the stored size.
    A run that fails or is cancelled after the first rows calls `abort()` so no partial result stays.
    """

    def __init__(
        self,
        bucket: str,
        organization_id: UUID,
        run_id: UUID,
        columns: list[Column],
        *,
        max_rows: int,
        max_bytes: int,
        chunk_rows: int = CHUNK_ROWS,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        if chunk_rows < 1 or chunk_bytes < 1 or max_rows < 0 or max_bytes < 0:
            raise ValueError("chunk sizes must be positive and limits not negative")
        self._bucket = bucket
        self._organization_id = organization_id
        self._run_id = run_id
        self._prefix = result_prefix(organization_id, run_id)
        self._columns = list(columns)
        self._max_rows = max_rows
        self._max_bytes = max_bytes
        self._chunk_rows = chunk_rows
        self._chunk_bytes = chunk_bytes
        self._chunks: list[Chunk] = []
        self._row_count = 0
        self._uncompressed_total = 0
        self._truncated = False
        self._finished = False
        self._uploader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="result-upload")
        self._upload: Future[Any] | None = None
        self._start_chunk()

    def _wait_for_upload(self) -> None:
        """Raise the previous chunk's upload error, if it failed."""
        if self._upload is not None:
            upload, self._upload = self._upload, None
            upload.result()

    def _start_chunk(self) -> None:
        self._compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, GZIP_WBITS)
        self._compressed: list[bytes] = []
        self._chunk_first_row = self._row_count
        self._chunk_row_count = 0
        self._chunk_raw_bytes = 0

    def _upload_chunk(self) -> None:
        self._compressed.append(self._compressor.flush())
        body = b"".join(self._compressed)
        self._compressed = []
        index = len(self._chunks)
        key = f"{self._prefix}/chunk-{index:06d}.jsonl.gz"
        # One upload at a time runs beside the fetching and encoding of the next chunk.
        self._wait_for_upload()
        self._upload = self._uploader.submit(
            s3_client().put_object, Bucket=self._bucket, Key=key, Body=body, ContentType="application/gzip"
        )
        self._chunks.append(
            Chunk(
                index=index,
                key=key,
                rows=self._chunk_row_count,
                first_row=self._chunk_first_row,
                compressed_bytes=len(body),
                uncompressed_bytes=self._chunk_raw_bytes,
            )
        )
        self._start_chunk()

    def add_rows(self, rows: Sequence[Sequence[Any]]) -> bool:
        """Add a batch; returns False once the result is full (the caller stops fetching)."""
        if self._finished:
            raise RuntimeError("the result is already finished")
        width = len(self._columns)
        start = 0
        while start < len(rows):
            if self._row_count >= self._max_rows:
                self._truncated = True
                break
            room = min(self._chunk_rows - self._chunk_row_count, self._max_rows - self._row_count, PIECE_ROWS)
            piece = rows[start : start + room]
            start += len(piece)
            wrong = next((row for row in piece if len(row) != width), None)
            if wrong is not None:
                raise ValueError(f"a row has {len(wrong)} values for {width} columns")
            data = encode_rows(piece)
            if len(piece) > 1 and self._chunk_raw_bytes + len(data) > self._chunk_bytes:
                # The piece crosses the chunk's byte size: row by row, so the chunk closes at the row
                # that fills it (once per chunk, so the second encoding costs little).
                for row in piece:
                    self._add_encoded(1, encode_rows([row]))
            else:
                self._add_encoded(len(piece), data)
        return not self._truncated

    def _add_encoded(self, rows: int, data: bytes) -> None:
        self._uncompressed_total += len(data)
        if self._uncompressed_total > self._max_bytes:
            self.abort()
            raise ResultTooLarge(self._max_bytes)
        self._compressed.append(self._compressor.compress(data))
        self._row_count += rows
        self._chunk_row_count += rows
        self._chunk_raw_bytes += len(data)
        if self._chunk_row_count >= self._chunk_rows or self._chunk_raw_bytes >= self._chunk_bytes:
            self._upload_chunk()

    def finish(self) -> Manifest:
        """Upload the last chunk and the manifest; the manifest's key is `manifest_key(org, run)`."""
        if self._finished:
            raise RuntimeError("the result is already finished")
        if self._chunk_row_count:
            self._upload_chunk()
        self._finished = True
        try:
            self._wait_for_upload()
        finally:
            self._uploader.shutdown()
        manifest = Manifest(
            organization_id=str(self._organization_id),
            run_id=str(self._run_id),
            columns=self._columns,
            row_count=self._row_count,
            chunk_rows=self._chunk_rows,
            chunks=self._chunks,
            byte_size=sum(chunk.compressed_bytes for chunk in self._chunks),
            uncompressed_bytes=self._uncompressed_total,
            truncated=self._truncated,
            created_at=datetime.now(UTC).isoformat(),
        )
        s3_client().put_object(
            Bucket=self._bucket,
            Key=manifest_key(self._organization_id, self._run_id),
            Body=manifest.to_json(),
            ContentType="application/json",
        )
        return manifest

    def abort(self) -> None:
        """Delete the chunks uploaded so far (a failed or cancelled run keeps nothing)."""
        self._finished = True
        with suppress(Exception):
            # A failed upload left nothing to delete; the others must land before they are deleted.
            self._wait_for_upload()
        self._uploader.shutdown()
        with suppress(DeleteFailed):
            # Left over, they go when the janitor deletes the run (it deletes by the run's prefix).
            delete_keys(self._bucket, [chunk.key for chunk in self._chunks])
        self._chunks = []


@dataclass
class ResultReader:
    """Reads a stored result; every method downloads only the chunks it needs, one at a time."""

    bucket: str
    manifest_key: str
    _manifest: Manifest | None = field(default=None, init=False, repr=False)

    @classmethod
    def for_run(cls, bucket: str, organization_id: UUID, run_id: UUID) -> ResultReader:
        return cls(bucket, manifest_key(organization_id, run_id))

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            client = s3_client()
            try:
                body = client.get_object(Bucket=self.bucket, Key=self.manifest_key)["Body"]
            except client.exceptions.NoSuchKey:
                raise ResultUnavailable() from None
            self._manifest = Manifest.from_json(body.read())
        return self._manifest

    def _chunk_lines(self, chunk: Chunk, stop: int) -> list[bytes]:
        """The chunk's first `stop` lines. A chunk is decompressed whole (it is bounded by CHUNK_BYTES):
        twice as fast as reading lines from a stream, which a page at the end of a chunk notices."""
        body = s3_client().get_object(Bucket=self.bucket, Key=chunk.key)["Body"]
        with closing(body):
            data = zlib.decompress(body.read(), GZIP_WBITS)
        return data.split(b"\n", stop)[:stop]

    def page(self, offset: int, limit: int, max_bytes: int = PAGE_MAX_BYTES) -> RunResults:
        """Rows from `offset`: at most `limit` of them, and no more than fit in `max_bytes` once
        serialized (the columns count too). A row that alone is over the budget is RowTooLarge."""
        if offset < 0 or limit < 1:
            raise ValueError("offset must be >= 0 and limit >= 1")
        manifest = self.manifest
        columns = [ResultColumn(name=column.name, type=column.type) for column in manifest.columns]
        budget = max_bytes - proxy_bytes(body_text([column.model_dump() for column in columns]))
        end = min(offset + limit, manifest.row_count)
        rows, overflow = take_within((self._sized_row(line) for line in self._lines(offset, end)), budget)
        if overflow is not None and not rows:
            raise RowTooLarge(offset, overflow, max_bytes)
        bound: PageBound | None = (
            "bytes" if overflow is not None else ("rows" if end < manifest.row_count else None)
        )
        next_offset = offset + len(rows) if bound else None
        return RunResults(
            columns=columns,
            rows=rows,
            total_rows=manifest.row_count,
            offset=offset,
            limit=limit,
            next_offset=next_offset,
            truncated_by=bound,
        )

    @staticmethod
    def _sized_row(line: bytes) -> tuple[list[Any], int]:
        """A stored line decoded, and the bytes it takes in the response with the comma after it."""
        row: list[Any] = json.loads(line)
        # Stored lines are compact JSON, so an ASCII line is already the text the body will hold.
        text = line.decode() if line.isascii() else body_text(row)
        return row, proxy_bytes(text) + 1

    def _lines(self, offset: int, end: int) -> Iterator[bytes]:
        """The stored lines of rows `offset` to `end` (excluded), downloading a chunk only when reached."""
        manifest = self.manifest
        first_rows = [chunk.first_row for chunk in manifest.chunks]
        # Past the last row there is nothing to download.
        index = bisect.bisect_right(first_rows, offset) - 1 if offset < end else len(manifest.chunks)
        for chunk in manifest.chunks[index:]:
            if chunk.first_row >= end:
                break
            start = max(offset, chunk.first_row) - chunk.first_row
            stop = min(end, chunk.first_row + chunk.rows) - chunk.first_row
            yield from self._chunk_lines(chunk, stop)[start:]

    def iter_lines(self) -> Iterator[bytes]:
        """Every row as its stored JSON array (no trailing newline), in order."""
        for chunk in self.manifest.chunks:
            yield from self._chunk_lines(chunk, chunk.rows)

    def iter_rows(self) -> Iterator[list[Any]]:
        """Every row decoded to JSON-ready values, in order. PIECE_ROWS lines are decoded in one call:
        a call per line costs twice as much."""
        for chunk in self.manifest.chunks:
            lines = self._chunk_lines(chunk, chunk.rows)
            for start in range(0, len(lines), PIECE_ROWS):
                yield from json.loads(b"[" + b",".join(lines[start : start + PIECE_ROWS]) + b"]")
