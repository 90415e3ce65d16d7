"""Fixtures shared by the tests of runs: SQS, S3 and KMS in moto, and a throwaway PostgreSQL database
for a datasource to point at."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws

from infra.local.events import LocalLambdaContext, sqs_event
from infra.local.template_routes import load_handler
from loupe import queue
from loupe.config import get_settings
from loupe.results import store
from loupe.security import crypto
from tests.integration.test_connectors import throwaway_postgres
from tests.read_only_logins import postgres_reader, postgres_reader_url

QUEUE_NAME = "loupe-runs"
BUCKET = "loupe-results-test"


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """KMS for the credentials, the runs queue and the results bucket, in moto; yields the queue URL."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("LOUPE_ALLOW_PRIVATE_DATASOURCE_HOSTS", "true")
    get_settings.cache_clear()
    clients = (crypto.kms_client, store.s3_client, queue.sqs_client)
    with mock_aws():
        for client in clients:
            client.cache_clear()
        monkeypatch.setenv("LOUPE_KMS_KEY_ID", boto3.client("kms").create_key()["KeyMetadata"]["KeyId"])
        get_settings.cache_clear()
        # No visibility timeout: a message received again is a duplicate delivery, as SQS may make.
        queue_url = boto3.client("sqs").create_queue(
            QueueName=QUEUE_NAME, Attributes={"VisibilityTimeout": "0"}
        )["QueueUrl"]
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        monkeypatch.setenv("LOUPE_RUNS_QUEUE_URL", queue_url)
        monkeypatch.setenv("LOUPE_RESULTS_BUCKET", BUCKET)
        get_settings.cache_clear()
        get_settings.cache_clear()
        yield queue_url
    for client in clients:
        client.cache_clear()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A throwaway database with the documented read-only login, which setup_org's datasource uses."""
    with throwaway_postgres() as name, postgres_reader(name):
        yield name


WIDGETS_SQL = "SELECT id, label FROM widgets WHERE id >= {{ minimum }} ORDER BY id"


def receive(queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = (
        boto3.client("sqs")
        .receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        )
        .get("Messages", [])
    )
    return messages


def queue_arn(queue_url: str) -> str:
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def run_runner(messages: list[dict[str, Any]], queue_url: str, seconds_left: int = 120) -> dict[str, Any]:
    result: dict[str, Any] = load_handler("RunnerFunction")(
        sqs_event(messages, queue_arn(queue_url)),
        LocalLambdaContext("RunnerFunction", timeout_seconds=seconds_left),
    )
    return result


def deliver(queue_url: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    messages = receive(queue_url)
    assert messages, "nothing was queued"
    return messages, run_runner(messages, queue_url)


def setup_org(api: Any, register: Any, database: str) -> tuple[Any, str, str]:
    """An admin, a datasource on the throwaway database, and a saved query with a number parameter."""
    admin = register()
    datasource = api.post(
        "/api/v1/datasources",
        json_body={
            "name": "widgets",
            "type": "postgres",
            "connection_string": postgres_reader_url(database),
        },
        token=admin.access_token,
    )
    assert datasource.status == 201, datasource.body
    query = api.post(
        "/api/v1/queries",
        json_body={
            "name": "widgets from",
            "datasource_id": datasource.json()["id"],
            "sql": WIDGETS_SQL,
            "parameters": [{"name": "minimum", "type": "number", "required": True}],
        },
        token=admin.access_token,
    )
    assert query.status == 201, query.body
    return admin, datasource.json()["id"], query.json()["id"]


def saved_query(api: Any, token: str, database: str, sql: str, parameters: list[dict[str, Any]]) -> Any:
    """A new datasource on the throwaway database (its read-only login), and the answer to creating a
    query of `sql` with `parameters` on it."""
    datasource = api.post(
        "/api/v1/datasources",
        json_body={
            "name": f"db {secrets.token_hex(4)}",
            "type": "postgres",
            "connection_string": postgres_reader_url(database),
        },
        token=token,
    )
    assert datasource.status == 201, datasource.body
    return api.post(
        "/api/v1/queries",
        json_body={
            "name": "q",
            "datasource_id": datasource.json()["id"],
            "sql": sql,
            "parameters": parameters,
        },
        token=token,
    )


def run_query(api: Any, token: str, query_id: str, **body: Any) -> Any:
    return api.post(f"/api/v1/queries/{query_id}/runs", json_body=body, token=token)


def run_row(database_url: str, run_id: str) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT status, attempts, error, row_count, lease_expires_at FROM runs WHERE id = %s", (run_id,)
        ).fetchone()
    assert row is not None
    return dict(zip(("status", "attempts", "error", "row_count", "lease_expires_at"), row, strict=True))


def drain_bodies(queue_url: str) -> list[str]:
    """The body of every message waiting in the queue, deleting each (as a consumer that handled it would)."""
    sqs = boto3.client("sqs")
    bodies: list[str] = []
    while messages := receive(queue_url):
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def drain(queue_url: str) -> list[str]:
    """Every run id waiting in the queue, deleting each message."""
    return [json.loads(body)["run_id"] for body in drain_bodies(queue_url)]


def add_orders(database: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
    """An `orders` table of `columns` (SQL) and `rows` in the throwaway database, readable by its login."""
    from tests.read_only_logins import reader_name

    placeholders = ", ".join(["%s"] * len(rows[0]))
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}", autocommit=True) as conn:
        conn.execute(f"CREATE TABLE orders ({columns})")
        with conn.cursor() as cursor:
            cursor.executemany(f"INSERT INTO orders VALUES ({placeholders})", rows)  # test data
        conn.execute(f'GRANT SELECT ON orders TO "{reader_name(database)}"')
