"""The local stack's exports queue (moto's server, as `make dev` runs it): created with its dead-letter
queue like the template's, and fed to the export function by the same poller as the runs queues."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local.devstack import (
    EXPORTS_DEAD_LETTER_QUEUE_VARIABLE,
    aws_client,
    create_runs_resources,
    moto_server,
)
from infra.local.invokers import InProcess
from infra.local.queue_poller import QueuePoller
from loupe import queue
from loupe.config import get_settings
from loupe.results import store


@pytest.fixture
def local_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    with moto_server(0) as endpoint:
        for name, value in {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        resources = create_runs_resources(endpoint)
        for name, value in resources.items():
            monkeypatch.setenv(name, value)
        for cached in (get_settings, queue.sqs_client, store.s3_client):
            cached.cache_clear()
        yield resources | {"endpoint": endpoint}
        for cached in (get_settings, queue.sqs_client, store.s3_client):
            cached.cache_clear()


def test_the_exports_queue_dead_letters_after_five_deliveries_and_is_polled_for_the_export_function(
    local_aws: dict[str, str], clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", clean_db)
    get_settings.cache_clear()
    sqs = aws_client("sqs", local_aws["endpoint"])
    exports_url = local_aws["LOUPE_EXPORTS_QUEUE_URL"]
    attributes = sqs.get_queue_attributes(QueueUrl=exports_url, AttributeNames=["RedrivePolicy"])[
        "Attributes"
    ]
    dead_letters = sqs.get_queue_attributes(
        QueueUrl=local_aws[EXPORTS_DEAD_LETTER_QUEUE_VARIABLE], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dead_letters,
        "maxReceiveCount": 5,
    }

    # An export the database does not hold (yet): the function hands the message back, and the poller
    # leaves it on the queue, as Lambda's event source does.
    sqs.send_message(
        QueueUrl=exports_url, MessageBody=json.dumps({"export_id": "6e8a0c2e-4f6b-4d8f-a0c2-e4f6a8b0c2d4"})
    )
    calls: list[dict[str, Any]] = []
    in_process = InProcess()

    def recorded(function: str, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = in_process.invoke(function, event)
        calls.append(result)
        return result

    poller = QueuePoller(sqs, exports_url, "ExportFunction", recorded)
    assert poller.poll_once() == 1
    assert len(calls[0]["batchItemFailures"]) == 1
    counts = sqs.get_queue_attributes(
        QueueUrl=exports_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    # Still on the queue (visible again or not yet, after the backoff): not deleted.
    assert (
        int(counts["ApproximateNumberOfMessages"]) + int(counts["ApproximateNumberOfMessagesNotVisible"]) == 1
    )
