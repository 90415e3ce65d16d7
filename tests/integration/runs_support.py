"""Fixtures shared by the tests of runs: SQS, S3 and KMS in moto, and a throwaway PostgreSQL database
for a datasource to point at."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from loupe import queue
from loupe.config import get_settings
from loupe.results import store
from loupe.security import crypto
from tests.integration.test_connectors import throwaway_postgres

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
    with throwaway_postgres() as name:
        yield name
