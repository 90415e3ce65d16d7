"""What the SQS entry point reads from a record: the message, and the queue a hand-back goes to."""

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from loupe.entry.sqs import message_of, queue_url_of

RUNS = "http://sqs.local/000000000000/loupe-runs"
SCHEDULED = "http://sqs.local/000000000000/loupe-scheduled-runs"


def record(body: str, queue_name: str = "loupe-runs") -> SQSRecord:
    return SQSRecord({"body": body, "eventSourceARN": f"arn:aws:sqs:us-east-1:000000000000:{queue_name}"})


def test_a_handed_back_message_goes_to_the_queue_it_came_from() -> None:
    assert queue_url_of(record("{}", "loupe-scheduled-runs"), [RUNS, SCHEDULED]) == SCHEDULED
    assert queue_url_of(record("{}", "loupe-runs"), [RUNS, SCHEDULED]) == RUNS
    assert queue_url_of(record("{}", "another"), [RUNS, SCHEDULED]) == RUNS


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '"text"', ""])
def test_a_body_that_is_not_a_json_object_is_an_empty_message(body: str) -> None:
    assert message_of(record(body)) == {}


def test_a_message_is_its_json_body() -> None:
    assert message_of(record('{"run_id": "r", "correlation_id": "c"}')) == {
        "run_id": "r",
        "correlation_id": "c",
    }
