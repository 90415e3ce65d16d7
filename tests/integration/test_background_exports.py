"""Background exports through real API Gateway and SQS events (S3 and SQS in moto, the real PostgreSQL):
POST queues an export, the export function builds it from the stored result, GET hands out its file;
reuse, failure and retry, XLSX's sheet limit, expiry with the result, tenancy, Parquet's types."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import boto3
import duckdb
import psycopg
import pytest
import requests

from infra.local.events import LocalLambdaContext, sqs_event
from infra.local.template_routes import load_handler
from loupe.config import get_settings
from loupe.results import exports as files
from loupe.results.store import ResultReader
from loupe.services import janitor
from loupe.services import runs as runs_service
from tests.integration import runs_support
from tests.integration.runs_support import deliver, queue_arn, receive, run_query, setup_org
from tests.integration.test_run_exports import WIDGETS, succeeded_run
from tests.unit.test_results import read_sheet

# pytest finds fixtures by the module's names: these make the shared ones this module's.
aws = runs_support.aws
postgres_database = runs_support.postgres_database

TYPED_SQL = (
    "SELECT n::int8 AS id, (n * 1.25)::numeric(10, 2) AS price, (n / 3.0)::numeric AS ratio,"
    " (n * 0.5)::float8 AS half, timestamptz '2026-01-02 03:04:05.123456+00' + n * interval '1 hour' AS at,"
    " date '2026-01-01' + n AS day, n % 2 = 0 AS even, 'label ' || n AS label, NULL::text AS nothing"
    " FROM generate_series(1, 3) AS n ORDER BY n"
)


@pytest.fixture
def exports_queue(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The exports queue beside the runs queue; yields its URL."""
    url = boto3.client("sqs").create_queue(QueueName="loupe-exports", Attributes={"VisibilityTimeout": "0"})[
        "QueueUrl"
    ]
    monkeypatch.setenv("LOUPE_EXPORTS_QUEUE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def run_exporter(queue_url: str) -> dict[str, Any]:
    """Every waiting message in one SQS event to the export function; the handled ones are deleted, as
    the event source does."""
    messages = receive(queue_url)
    assert messages, "nothing was queued"
    result: dict[str, Any] = load_handler("ExportFunction")(
        sqs_event(messages, queue_arn(queue_url)), LocalLambdaContext("ExportFunction", timeout_seconds=900)
    )
    failed = {item["itemIdentifier"] for item in result["batchItemFailures"]}
    for message in messages:
        if message["MessageId"] not in failed:
            boto3.client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return result


def ask(api: Any, token: str, run_id: str, fmt: str) -> Any:
    return api.post(f"/api/v1/runs/{run_id}/exports", json_body={"format": fmt}, token=token)


def read(api: Any, token: str, run_id: str, export_id: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/runs/{run_id}/exports/{export_id}", token=token)
    assert response.status == 200, response.body
    found: dict[str, Any] = response.json()
    return found


def built(
    api: Any, token: str, run_id: str, fmt: files.ExportFormat, exports_queue: str
) -> tuple[dict[str, Any], bytes]:
    """Ask for an export, run the export function, and download the file."""
    asked = ask(api, token, run_id, fmt)
    assert asked.status == 202, asked.body
    assert run_exporter(exports_queue) == {"batchItemFailures": []}
    export = read(api, token, run_id, asked.json()["id"])
    assert export["status"] == "succeeded", export["error"]
    downloaded = requests.get(export["url"], timeout=10)
    assert downloaded.status_code == 200
    assert downloaded.headers["Content-Type"] == files.FORMATS[fmt].media_type
    assert export["bytes"] == len(downloaded.content)
    return export, downloaded.content


def parquet_rows(data: bytes, tmp_path: Path) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
    path = tmp_path / "export.parquet"
    path.write_bytes(data)
    with duckdb.connect() as con:
        schema = [(row[0], row[1]) for row in con.execute(f"DESCRIBE SELECT * FROM '{path}'").fetchall()]
        rows = con.execute(f"SELECT * FROM '{path}'").fetchall()
    return schema, rows


def test_each_format_is_built_in_the_background_and_handed_out_through_a_signed_url(
    api: Any,
    register: Any,
    clean_db: str,
    aws: str,
    exports_queue: str,
    postgres_database: str,
    tmp_path: Path,
) -> None:
    admin, run_id = succeeded_run(api, register, aws, postgres_database)
    token = admin.access_token

    asked = ask(api, token, run_id, "csv")
    assert asked.status == 202, asked.body
    queued = asked.json()
    assert asked.header("Location") == f"/api/v1/runs/{run_id}/exports/{queued['id']}"
    assert (queued["status"], queued["url"], queued["bytes"], queued["rows"]) == ("queued", None, None, None)
    assert read(api, token, run_id, queued["id"])["status"] == "queued"
    assert run_exporter(exports_queue) == {"batchItemFailures": []}
    export = read(api, token, run_id, queued["id"])
    assert (export["status"], export["rows"], export["error"]) == ("succeeded", 4, None)
    assert f"/runs/{run_id}/export.csv?" in export["url"]
    assert "X-Amz-Signature=" in export["url"]
    finished = datetime.fromisoformat(api.get(f"/api/v1/runs/{run_id}", token=token).json()["finished_at"])
    assert datetime.fromisoformat(export["expires_at"]) == finished + timedelta(days=30)
    downloaded = requests.get(export["url"], timeout=10)
    assert downloaded.content == b"id,label\r\n" + b"".join(
        f"{number},{label}\r\n".encode() for number, label in WIDGETS
    )

    json_export, json_file = built(api, token, run_id, "json", exports_queue)
    assert json.loads(json_file)["rows"] == WIDGETS
    _, xlsx_file = built(api, token, run_id, "xlsx", exports_queue)
    assert read_sheet(xlsx_file) == [["id", "label"], *([float(number), label] for number, label in WIDGETS)]
    _, parquet_file = built(api, token, run_id, "parquet", exports_queue)
    schema, rows = parquet_rows(parquet_file, tmp_path)
    assert schema == [("id", "BIGINT"), ("label", "VARCHAR")]
    assert rows == [tuple(widget) for widget in WIDGETS]

    listed = api.get(f"/api/v1/runs/{run_id}/exports", token=token)
    assert listed.status == 200
    assert [item["format"] for item in listed.json()["items"]] == ["csv", "json", "xlsx", "parquet"]
    assert all(item["url"] for item in listed.json()["items"])

    # Asked again: the same export, not a second file.
    again = ask(api, token, run_id, "json")
    assert again.status == 200, again.body
    assert again.json()["id"] == json_export["id"]
    assert again.json()["status"] == "succeeded"
    assert receive(exports_queue) == []


def test_parquet_keeps_integers_decimals_timestamps_dates_and_booleans(
    api: Any,
    register: Any,
    clean_db: str,
    aws: str,
    exports_queue: str,
    postgres_database: str,
    tmp_path: Path,
) -> None:
    admin, datasource_id, _ = setup_org(api, register, postgres_database)
    started = api.post(
        "/api/v1/runs", json_body={"datasource_id": datasource_id, "sql": TYPED_SQL}, token=admin.access_token
    )
    assert started.status == 202, started.body
    run_id = started.json()["id"]
    deliver(aws)

    _, data = built(api, admin.access_token, run_id, "parquet", exports_queue)
    schema, rows = parquet_rows(data, tmp_path)
    assert schema == [
        ("id", "BIGINT"),
        ("price", "DECIMAL(3,2)"),
        # PostgreSQL names both columns `numeric`: each gets the precision and scale its values need.
        ("ratio", "DECIMAL(21,20)"),
        ("half", "DOUBLE"),
        ("at", "TIMESTAMP WITH TIME ZONE"),
        ("day", "DATE"),
        ("even", "BOOLEAN"),
        ("label", "VARCHAR"),
        ("nothing", "VARCHAR"),
    ]
    first = rows[0]
    assert first[:4] == (1, Decimal("1.25"), Decimal("0.33333333333333333333"), 0.5)
    assert first[4] == datetime(2026, 1, 2, 4, 4, 5, 123456, tzinfo=UTC)
    assert first[5:] == (date(2026, 1, 2), False, "label 1", None)
    assert [row[0] for row in rows] == [1, 2, 3]


def test_a_failed_export_says_why_and_is_queued_again_when_asked(
    api: Any,
    register: Any,
    clean_db: str,
    aws: str,
    exports_queue: str,
    postgres_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin, run_id = succeeded_run(api, register, aws, postgres_database)
    token = admin.access_token
    asked = ask(api, token, run_id, "xlsx").json()
    # The sheet shrinks after the request was accepted: the export function refuses, never writes a
    # file that would be cut.
    monkeypatch.setattr(files, "XLSX_MAX_ROWS", 4)
    assert run_exporter(exports_queue) == {"batchItemFailures": []}
    failed = read(api, token, run_id, asked["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "xlsx_row_limit"
    assert failed["url"] is None

    monkeypatch.setattr(files, "XLSX_MAX_ROWS", 5)
    again = ask(api, token, run_id, "xlsx")
    assert again.status == 202, again.body
    assert again.json()["id"] == asked["id"]
    assert (again.json()["status"], again.json()["error"]) == ("queued", None)
    assert run_exporter(exports_queue) == {"batchItemFailures": []}
    assert read(api, token, run_id, asked["id"])["status"] == "succeeded"


def test_xlsx_beyond_a_sheet_is_refused_when_asked(
    api: Any,
    register: Any,
    clean_db: str,
    aws: str,
    exports_queue: str,
    postgres_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin, run_id = succeeded_run(api, register, aws, postgres_database)
    # Four rows and the header: one more than the sheet holds.
    monkeypatch.setattr(files, "XLSX_MAX_ROWS", 4)
    refused = ask(api, admin.access_token, run_id, "xlsx")
    assert refused.status == 422, refused.body
    assert refused.json()["error"]["details"] == [
        {"field": "body.format", "issue": "XLSX holds at most 3 rows; use csv or parquet"}
    ]
    assert receive(exports_queue) == []
    assert ask(api, admin.access_token, run_id, "csv").status == 202


def test_only_a_succeeded_run_of_the_callers_organization_exports(
    api: Any, register: Any, clean_db: str, aws: str, exports_queue: str, postgres_database: str
) -> None:
    admin, run_id = succeeded_run(api, register, aws, postgres_database)
    token = admin.access_token
    export_id = ask(api, token, run_id, "csv").json()["id"]

    outsider = register().access_token
    assert ask(api, outsider, run_id, "csv").status == 404
    assert api.get(f"/api/v1/runs/{run_id}/exports", token=outsider).status == 404
    assert api.get(f"/api/v1/runs/{run_id}/exports/{export_id}", token=outsider).status == 404
    other_admin, other_run = succeeded_run(api, register, aws, postgres_database)
    # An export is found under its own run only.
    assert (
        api.get(f"/api/v1/runs/{other_run}/exports/{export_id}", token=other_admin.access_token).status == 404
    )

    bad = ask(api, token, run_id, "pdf")
    assert bad.status == 422
    assert [detail["field"] for detail in bad.json()["error"]["details"]] == ["body.format"]

    query_id = api.get(f"/api/v1/runs/{run_id}", token=token).json()["query_id"]
    queued = run_query(api, token, query_id, parameters={"minimum": 4}).json()
    not_yet = ask(api, token, queued["id"], "csv")
    assert not_yet.status == 409
    assert not_yet.json()["error"]["code"] == "conflict"


def test_exports_expire_with_the_result(
    api: Any, register: Any, clean_db: str, aws: str, exports_queue: str, postgres_database: str
) -> None:
    admin, run_id = succeeded_run(api, register, aws, postgres_database)
    token = admin.access_token
    export, _ = built(api, token, run_id, "csv", exports_queue)
    reader = ResultReader.for_run(runs_support.BUCKET, UUID(admin.organization_id), UUID(run_id))
    key = files.export_key(reader, "csv")
    assert boto3.client("s3").head_object(Bucket=runs_support.BUCKET, Key=key)

    # A month and a day later, for the run (the sessions stay valid).
    age = timedelta(days=31)
    with psycopg.connect(clean_db) as conn:
        conn.execute(
            "UPDATE runs SET created_at = created_at - %s, started_at = started_at - %s,"
            " finished_at = finished_at - %s WHERE id = %s",
            (age, age, age, run_id),
        )
    counts = janitor.sweep(datetime.now(UTC))
    assert counts["results_expired"] == 1
    assert api.get(f"/api/v1/runs/{run_id}/exports/{export['id']}", token=token).status == 404
    assert api.get(f"/api/v1/runs/{run_id}/exports", token=token).json() == {"items": []}
    with pytest.raises(boto3.client("s3").exceptions.ClientError):
        boto3.client("s3").head_object(Bucket=runs_support.BUCKET, Key=key)
    expired = ask(api, token, run_id, "csv")
    assert expired.status == 410
    assert expired.json()["error"]["code"] == "result_expired"


def test_an_export_whose_result_expired_before_it_was_built_fails(
    api: Any, register: Any, clean_db: str, aws: str, exports_queue: str, postgres_database: str
) -> None:
    admin, run_id = succeeded_run(api, register, aws, postgres_database)
    export_id = ask(api, admin.access_token, run_id, "csv").json()["id"]
    with psycopg.connect(clean_db) as conn:
        conn.execute("UPDATE runs SET result_location = NULL WHERE id = %s", (run_id,))
    assert run_exporter(exports_queue) == {"batchItemFailures": []}
    failed = read(api, admin.access_token, run_id, export_id)
    assert (failed["status"], failed["error"]["code"]) == ("failed", "result_expired")


def test_a_dead_lettered_export_ends_failed(
    api: Any, register: Any, clean_db: str, aws: str, exports_queue: str, postgres_database: str
) -> None:
    admin, run_id = succeeded_run(api, register, aws, postgres_database)
    export_id = ask(api, admin.access_token, run_id, "csv").json()["id"]
    messages = receive(exports_queue)
    result = load_handler("DeadLetterFunction")(
        sqs_event(messages, queue_arn(exports_queue)), LocalLambdaContext("DeadLetterFunction")
    )
    assert result == {"batchItemFailures": []}
    failed = read(api, admin.access_token, run_id, export_id)
    assert (failed["status"], failed["error"]["code"]) == ("failed", "delivery_failed")


def test_the_instant_export_refuses_a_result_past_its_line(
    api: Any,
    register: Any,
    clean_db: str,
    aws: str,
    postgres_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin, run_id = succeeded_run(api, register, aws, postgres_database)
    path = f"/api/v1/runs/{run_id}/export"
    monkeypatch.setattr(runs_service, "INSTANT_EXPORT_MAX_ROWS", 4)
    assert api.get(path, token=admin.access_token, query={"format": "csv"}).status == 302
    monkeypatch.setattr(runs_service, "INSTANT_EXPORT_MAX_ROWS", 3)
    refused = api.get(path, token=admin.access_token, query={"format": "csv"})
    assert refused.status == 409
    assert refused.json()["error"]["code"] == "export_too_large"
    assert f"POST /runs/{run_id}/exports" in refused.json()["error"]["message"]
    monkeypatch.setattr(runs_service, "INSTANT_EXPORT_MAX_ROWS", 4)
    monkeypatch.setattr(runs_service, "INSTANT_EXPORT_MAX_BYTES", 10)
    assert api.get(path, token=admin.access_token, query={"format": "csv"}).status == 409
    # Parquet is built only in the background.
    assert api.get(path, token=admin.access_token, query={"format": "parquet"}).status == 422
