"""Alert rules on schedules against the real PostgreSQL, moto's SNS and SQS, and a local webhook
receiver: firing once, re-arming, `changed`, duplicate deliveries, retries, the webhook policy."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import psycopg
import pytest

from loupe.config import get_settings
from loupe.services import alerts
from loupe.services.scheduler import tick
from tests.integration import runs_support
from tests.integration.runs_support import receive, run_runner, setup_org
from tests.integration.test_scheduler import make_due, schedule

aws = runs_support.aws
postgres_database = runs_support.postgres_database

ROWS_ABOVE_3 = {"name": "many widgets", "source": "row_count", "operator": ">", "threshold": 3}
FIRST_ID_IS_1 = {"name": "starts at one", "column": "id", "operator": "==", "threshold": 1}


@pytest.fixture
def alerts_inbox(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The alerts topic in moto, with a queue subscribed to it; yields the queue's URL."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic_arn = sns.create_topic(Name="loupe-alerts")["TopicArn"]
    inbox = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=inbox_arn, Attributes={"RawMessageDelivery": "true"}
    )
    monkeypatch.setenv("LOUPE_ALERTS_TOPIC_ARN", topic_arn)
    get_settings.cache_clear()
    alerts.sns_client.cache_clear()
    yield inbox
    alerts.sns_client.cache_clear()


def published(inbox: str) -> list[dict[str, Any]]:
    """Every alert the topic has delivered so far, taken off the inbox."""
    return [json.loads(body) for body in runs_support.drain_bodies(inbox)]


class Receiver:
    """A webhook endpoint on loopback: records each POST, answers with the statuses it is given."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        # Each POST's headers and body as sent, for checking signatures.
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.trickle_seconds = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.path, json.loads(body)))
                receiver.received.append((dict(self.headers), body))
                if receiver.trickle_seconds:
                    # A byte every 0.2 s: no single read waits long enough to time out.
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    deadline = time.monotonic() + receiver.trickle_seconds
                    while time.monotonic() < deadline:
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.2)
                    return
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook?token=s3cret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
    receiver.thread.join(timeout=5)


def fire(database_url: str, queue_url: str, schedule_id: str) -> list[dict[str, Any]]:
    """The schedule fires now and its run executes; returns the messages the runner was given, deleted
    from the queue as the event source mapping does."""
    make_due(database_url, schedule_id)
    tick(datetime.now(UTC))
    messages = receive(queue_url)
    assert len(messages) == 1, messages
    run_runner(messages, queue_url)
    for message in messages:
        boto3.client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def firings(api: Any, token: str, schedule_id: str, **query: str) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/schedules/{schedule_id}/alerts", query=query, token=token)
    assert response.status == 200, response.body
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def patch(api: Any, token: str, schedule_id: str, body: dict[str, Any]) -> dict[str, Any]:
    current = api.get(f"/api/v1/schedules/{schedule_id}", token=token)
    response = api.request(
        "PATCH",
        f"/api/v1/schedules/{schedule_id}",
        json_body=body,
        token=token,
        headers={"If-Match": current.headers["ETag"]},
    )
    assert response.status == 200, response.body
    shown: dict[str, Any] = response.json()
    return shown


def test_a_rule_notifies_once_while_true_and_again_after_re_arming(
    api: Any,
    register: Any,
    clean_db: str,
    aws: str,
    postgres_database: str,
    alerts_inbox: str,
    receiver: Receiver,
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    token = admin.access_token
    hourly = schedule(
        api, token, query_id, alert_rules=[ROWS_ABOVE_3 | {"webhook_url": receiver.url}, FIRST_ID_IS_1]
    )

    fire(clean_db, aws, hourly)
    first = firings(api, token, hourly)
    assert sorted((item["rule"]["name"], item["value"]) for item in first) == [
        ("many widgets", 5),
        ("starts at one", 1),
    ]
    assert all(item["sns"] == "sent" and item["delivered_at"] for item in first)
    assert sorted(item["webhook"] or "" for item in first) == ["", "sent"]
    messages = published(alerts_inbox)
    assert sorted(message["rule"]["name"] for message in messages) == ["many widgets", "starts at one"]
    assert {message["schedule_id"] for message in messages} == {hourly}
    [(path, body)] = receiver.requests
    assert path == "/hook?token=s3cret"
    assert (body["rule"]["name"], body["value"], body["schedule_name"]) == ("many widgets", 5, "hourly")

    # Still true: no second notification.
    fire(clean_db, aws, hourly)
    assert len(firings(api, token, hourly)) == 2
    assert published(alerts_inbox) == []
    assert len(receiver.requests) == 1
    shown = api.get(f"/api/v1/schedules/{hourly}", token=token).json()["alert_rules"]
    assert [(rule["triggered"], rule["last_value"]) for rule in shown] == [(True, 5), (True, 1)]
    assert shown[0]["webhook"] == f"http://127.0.0.1:{receiver.server.server_port}"
    assert "s3cret" not in json.dumps(shown) + json.dumps(first)

    # False (2 rows, first id 4): re-armed, nothing sent.
    patch(api, token, hourly, {"parameters": {"minimum": 4}})
    fire(clean_db, aws, hourly)
    shown = api.get(f"/api/v1/schedules/{hourly}", token=token).json()["alert_rules"]
    assert [(rule["triggered"], rule["last_value"]) for rule in shown] == [(False, 2), (False, 4)]
    assert published(alerts_inbox) == []
    # The history lists each resolution where the firings are; a resolution is notified nowhere.
    resolved = firings(api, token, hourly, kind="resolved")
    assert sorted((item["rule"]["name"], item["value"]) for item in resolved) == [
        ("many widgets", 2),
        ("starts at one", 4),
    ]
    assert all(
        (item["sns"], item["webhook"], item["destinations"]) == ("skipped", None, {}) for item in resolved
    )
    assert all(item["delivered_at"] for item in resolved)

    # True again: notified again.
    patch(api, token, hourly, {"parameters": {"minimum": 1}})
    fire(clean_db, aws, hourly)
    assert len(firings(api, token, hourly, kind="fired")) == 4
    assert [item["kind"] for item in firings(api, token, hourly, sort="created_at")].count("resolved") == 2
    assert len(published(alerts_inbox)) == 2
    assert len(receiver.requests) == 2


def test_changed_fires_on_each_change_but_not_on_the_first_run(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, alerts_inbox: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    token = admin.access_token
    rule = {"name": "label moved", "column": "label", "operator": "changed"}
    hourly = schedule(api, token, query_id, alert_rules=[rule])

    fire(clean_db, aws, hourly)
    fire(clean_db, aws, hourly)
    assert firings(api, token, hourly) == []
    for minimum in (2, 3):
        patch(api, token, hourly, {"parameters": {"minimum": minimum}})
        fire(clean_db, aws, hourly)
    assert [item["value"] for item in firings(api, token, hourly)] == ["widget 3", "widget 2"]
    assert [message["value"] for message in published(alerts_inbox)] == ["widget 2", "widget 3"]


def test_a_run_delivered_twice_notifies_once(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, alerts_inbox: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    hourly = schedule(api, admin.access_token, query_id, alert_rules=[ROWS_ABOVE_3])
    messages = fire(clean_db, aws, hourly)

    run_runner(messages, aws)

    assert len(firings(api, admin.access_token, hourly)) == 1
    assert len(published(alerts_inbox)) == 1


def test_kept_rules_keep_their_state_and_changed_rules_re_arm(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, alerts_inbox: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    token = admin.access_token
    hourly = schedule(api, token, query_id, alert_rules=[ROWS_ABOVE_3])
    fire(clean_db, aws, hourly)
    [stored] = api.get(f"/api/v1/schedules/{hourly}", token=token).json()["alert_rules"]

    same = patch(api, token, hourly, {"alert_rules": [ROWS_ABOVE_3 | {"id": stored["id"]}]})
    assert same["alert_rules"][0]["triggered"] is True
    fire(clean_db, aws, hourly)
    assert len(firings(api, token, hourly)) == 1

    changed = patch(
        api, token, hourly, {"alert_rules": [ROWS_ABOVE_3 | {"id": stored["id"], "threshold": 4}]}
    )
    assert changed["alert_rules"][0]["triggered"] is False
    fire(clean_db, aws, hourly)
    assert len(firings(api, token, hourly, rule_id=stored["id"])) == 2
    assert len(published(alerts_inbox)) == 2


def test_a_rule_without_a_value_records_why_and_does_not_fire(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, alerts_inbox: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    token = admin.access_token
    rules = [
        {"column": "no_such_column", "operator": "!=", "threshold": None},
        {"column": "id", "operator": ">", "threshold": 0},
    ]
    hourly = schedule(api, token, query_id, alert_rules=rules, parameters={"minimum": 10})

    fire(clean_db, aws, hourly)

    shown = api.get(f"/api/v1/schedules/{hourly}", token=token).json()["alert_rules"]
    assert [rule["last_error"] for rule in shown] == [
        "the result has no column named 'no_such_column'",
        "the result has no rows",
    ]
    assert firings(api, token, hourly) == []
    assert published(alerts_inbox) == []


def test_failed_notifications_are_retried_by_the_tick_without_sending_twice(
    api: Any,
    register: Any,
    clean_db: str,
    aws: str,
    postgres_database: str,
    alerts_inbox: str,
    receiver: Receiver,
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    token = admin.access_token
    receiver.statuses = [500]
    hourly = schedule(api, token, query_id, alert_rules=[ROWS_ABOVE_3 | {"webhook_url": receiver.url}])

    fire(clean_db, aws, hourly)
    [failed] = firings(api, token, hourly)
    assert (failed["sns"], failed["webhook"], failed["delivery_attempts"]) == ("sent", "failed", 1)
    assert failed["delivered_at"] is None
    assert "HTTP 500" in failed["delivery_error"]
    assert "s3cret" not in failed["delivery_error"]

    assert tick(datetime.now(UTC)).alerts_delivered == 1
    [retried] = firings(api, token, hourly)
    assert (retried["sns"], retried["webhook"], retried["delivery_attempts"]) == ("sent", "sent", 2)
    assert retried["delivered_at"] is not None
    assert retried["delivery_error"] is None
    assert len(published(alerts_inbox)) == 1, "SNS already had it: not published again"
    assert len(receiver.requests) == 2
    assert tick(datetime.now(UTC)).alerts_delivered == 0


def test_delivery_gives_up_after_the_last_attempt(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, receiver: Receiver
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    receiver.statuses = [503] * 10
    hourly = schedule(
        api, admin.access_token, query_id, alert_rules=[ROWS_ABOVE_3 | {"webhook_url": receiver.url}]
    )
    fire(clean_db, aws, hourly)
    for _ in range(alerts.MAX_DELIVERY_ATTEMPTS + 2):
        tick(datetime.now(UTC))

    [given_up] = firings(api, admin.access_token, hourly)
    assert (given_up["webhook"], given_up["delivery_attempts"]) == ("failed", alerts.MAX_DELIVERY_ATTEMPTS)
    assert given_up["sns"] == "skipped", "no topic configured in this test"
    assert len(receiver.requests) == alerts.MAX_DELIVERY_ATTEMPTS


def test_redirects_are_not_followed(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, receiver: Receiver
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    receiver.statuses = [302]
    hourly = schedule(
        api, admin.access_token, query_id, alert_rules=[ROWS_ABOVE_3 | {"webhook_url": receiver.url}]
    )
    fire(clean_db, aws, hourly)

    [firing] = firings(api, admin.access_token, hourly)
    assert firing["webhook"] == "failed"
    assert "redirects are not followed" in firing["delivery_error"]
    assert receiver.paths() == ["/hook?token=s3cret"]


def test_the_policy_is_checked_again_when_the_webhook_is_called(
    api: Any,
    register: Any,
    clean_db: str,
    aws: str,
    postgres_database: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    receiver.statuses = [500]
    hourly = schedule(
        api, admin.access_token, query_id, alert_rules=[ROWS_ABOVE_3 | {"webhook_url": receiver.url}]
    )
    fire(clean_db, aws, hourly)
    assert len(receiver.requests) == 1
    # The deployment no longer allows private addresses: the retry refuses the saved loopback URL.
    monkeypatch.setenv("LOUPE_ALLOW_PRIVATE_DATASOURCE_HOSTS", "false")
    get_settings.cache_clear()
    tick(datetime.now(UTC))

    [firing] = firings(api, admin.access_token, hourly)
    assert (firing["webhook"], firing["delivery_attempts"]) == ("failed", 2)
    assert "refused by the network policy" in firing["delivery_error"]
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    ("url", "issue"),
    [
        ("http://93.184.215.14/hook", "starts with https://"),
        ("https://127.0.0.1/hook", "loopback or private"),
        ("https://10.1.2.3/hook", "loopback or private"),
        ("https://[::ffff:192.168.0.1]/hook", "loopback or private"),
        ("https://169.254.169.254/latest/meta-data", "link-local, metadata"),
        ("https://metadata.google.internal/", "metadata"),
        ("https://user:pw@93.184.215.14/hook", "credentials"),
        ("https://93.184.215.14/hook#part", "fragment"),
        ("https://93.184.215.14:0/hook", "port"),
        ("ftp://93.184.215.14/hook", "starts with https://"),
        ("https:///hook", "must name a host"),
        ("https://exa mple.com/", "spaces"),
        ("https://93.184.215.14/h\u00f6\u00f6ks", "ASCII"),
    ],
)
def test_webhook_urls_must_pass_the_network_policy(
    api: Any,
    register: Any,
    clean_db: str,
    aws: str,
    postgres_database: str,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    issue: str,
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    monkeypatch.setenv("LOUPE_ALLOW_PRIVATE_DATASOURCE_HOSTS", "false")
    get_settings.cache_clear()
    body = {"name": "h", "query_id": query_id, "cron": "0 * * * *", "parameters": {"minimum": 1}}

    refused = api.post(
        "/api/v1/schedules",
        json_body=body | {"alert_rules": [FIRST_ID_IS_1, ROWS_ABOVE_3 | {"webhook_url": url}]},
        token=admin.access_token,
    )

    assert refused.status == 422, refused.body
    [detail] = refused.json()["error"]["details"]
    assert detail["field"] == "body.alert_rules[1].webhook_url"
    assert issue in detail["issue"]
    accepted = api.post(
        "/api/v1/schedules",
        json_body=body | {"alert_rules": [ROWS_ABOVE_3 | {"webhook_url": "https://93.184.215.14/hook?k=v"}]},
        token=admin.access_token,
    )
    assert accepted.status == 201, accepted.body
    assert accepted.json()["alert_rules"][0]["webhook"] == "https://93.184.215.14"


@pytest.mark.parametrize(
    "rules",
    [
        [{"operator": ">", "threshold": 1}],
        [{"source": "row_count", "column": "id", "operator": ">", "threshold": 1}],
        [{"column": "id", "operator": "changed", "threshold": 1}],
        [{"column": "id", "operator": ">"}],
        [{"column": "id", "operator": ">", "threshold": True}],
        [{"column": "id", "operator": ">=", "threshold": None}],
        [{"source": "row_count", "operator": ">", "threshold": "10"}],
        [{"column": "id", "operator": "~", "threshold": 1}],
        [{"column": "id", "operator": "==", "threshold": [1]}],
        [{"column": "id", "operator": "==", "threshold": {"a": 1}}],
        [{"column": "", "operator": "==", "threshold": 1}],
        [{"column": "id", "operator": "==", "threshold": "x" * 201}],
        [{"column": "id", "operator": "==", "threshold": 1, "extra": True}],
        [{"column": "id", "operator": "==", "threshold": 1, "id": "not-a-uuid"}],
        [{"column": "id", "operator": "==", "threshold": 1, "webhook_url": ""}],
        [FIRST_ID_IS_1] * 21,
        [FIRST_ID_IS_1 | {"id": "9a1c3e5f-7b9d-4f1b-8d3f-5a7c9e1b3d5f"}] * 2,
        "not a list",
        [None],
    ],
)
def test_bad_alert_rules_are_a_422(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, rules: Any
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    body = {"name": "h", "query_id": query_id, "cron": "0 * * * *", "parameters": {"minimum": 1}}

    created = api.post("/api/v1/schedules", json_body=body | {"alert_rules": rules}, token=admin.access_token)

    assert created.status == 422, created.body
    assert created.json()["error"]["code"] == "validation_error"
    assert all(
        detail["field"].startswith("body.alert_rules") for detail in created.json()["error"]["details"]
    )


def test_a_non_finite_threshold_is_a_422(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    raw = json.dumps(
        {"name": "h", "query_id": query_id, "cron": "0 * * * *", "parameters": {"minimum": 1}}
    ).replace("}}", '}, "alert_rules": [{"column": "id", "operator": ">", "threshold": NaN}]}')
    created = api.post(
        "/api/v1/schedules",
        raw_body=raw,
        headers={"Content-Type": "application/json"},
        token=admin.access_token,
    )
    assert created.status in (400, 422), created.body
    assert created.status != 500


def test_alert_history_follows_the_schedules_access_rules(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    hourly = schedule(api, admin.access_token, query_id, alert_rules=[ROWS_ABOVE_3])
    fire(clean_db, aws, hourly)
    stranger = register()

    hidden = api.get(f"/api/v1/schedules/{hourly}/alerts", token=stranger.access_token)
    assert hidden.status == 404
    searched = api.get(f"/api/v1/schedules/{hourly}/alerts", query={"q": "x"}, token=admin.access_token)
    assert searched.status == 422
    bad_filter = api.get(
        f"/api/v1/schedules/{hourly}/alerts", query={"rule_id": "x"}, token=admin.access_token
    )
    assert bad_filter.status == 422
    with psycopg.connect(clean_db) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM alert_firings WHERE schedule_id = %s", (hourly,)
        ).fetchone() or (0,)
    assert count == 1
    deleted = api.delete(
        f"/api/v1/schedules/{hourly}",
        token=admin.access_token,
        headers={
            "If-Match": api.get(f"/api/v1/schedules/{hourly}", token=admin.access_token).headers["ETag"]
        },
    )
    assert deleted.status == 204
    with psycopg.connect(clean_db) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM alert_firings WHERE schedule_id = %s", (hourly,)
        ).fetchone() or (0,)
    assert count == 0, "a schedule's firings go with it"


def test_a_webhook_that_never_answers_is_cut_off_and_counted(
    api: Any,
    register: Any,
    clean_db: str,
    aws: str,
    postgres_database: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOUPE_WEBHOOK_TIMEOUT_SECONDS", "0.5")
    get_settings.cache_clear()
    receiver.trickle_seconds = 4.0
    admin, _, query_id = setup_org(api, register, postgres_database)
    hourly = schedule(
        api, admin.access_token, query_id, alert_rules=[ROWS_ABOVE_3 | {"webhook_url": receiver.url}]
    )
    started = time.monotonic()
    fire(clean_db, aws, hourly)

    assert time.monotonic() - started < 3.5, "the runner waited for the trickling webhook"
    [firing] = firings(api, admin.access_token, hourly)
    assert (firing["webhook"], firing["delivery_attempts"]) == ("failed", 1)
    assert "did not answer within 1 s" in firing["delivery_error"]


def test_long_values_are_kept_short(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, datasource_id, _ = setup_org(api, register, postgres_database)
    wide = api.post(
        "/api/v1/queries",
        json_body={
            "name": "wide",
            "datasource_id": datasource_id,
            "sql": "SELECT repeat('x', 100000) AS blob",
        },
        token=admin.access_token,
    ).json()["id"]
    rule = {"column": "blob", "operator": "!=", "threshold": ""}
    hourly = schedule(api, admin.access_token, wide, parameters={}, alert_rules=[rule])
    fire(clean_db, aws, hourly)

    [firing] = firings(api, admin.access_token, hourly)
    assert len(firing["value"]) == alerts.MAX_VALUE_CHARACTERS + 1
    assert firing["value"].endswith("…")
