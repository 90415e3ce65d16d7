"""Destinations through the API: admins write mail lists and webhooks, every role lists them; recipients
outside the organization only where its settings allow; a webhook's URL is write-only, its deliveries
are signed (HMAC-SHA256 over timestamp and body) and its secret rotates with an overlap."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import boto3
import pytest

from loupe import notify
from loupe.config import get_settings
from tests import factories
from tests.integration import runs_support
from tests.integration.test_alerts import Receiver, receiver
from tests.integration.test_dashboards import assert_error

aws = runs_support.aws
__all__ = ["receiver"]


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does (docs/deliveries.md): any v1 of the header is the HMAC of `<t>.<body>`."""
    parts = [part.split("=", 1) for part in headers["Loupe-Signature"].split(",")]
    timestamp = next(value for name, value in parts if name == "t")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, value) for name, value in parts if name == "v1")


@pytest.fixture
def mailbox() -> Any:
    notify.MEMORY.sent.clear()
    yield notify.MEMORY.sent
    notify.MEMORY.sent.clear()


def test_email_destinations_mail_members_and_allowed_outsiders_only(
    api: Any, register: Any, clean_db: str, aws: str, mailbox: list[notify.Mail]
) -> None:
    admin = register()
    token = admin.access_token
    own = api.post(
        "/api/v1/destinations",
        json_body={"name": "Me", "type": "email", "to": [admin.email.upper()]},
        token=token,
    )
    assert own.status == 201, own.body
    assert own.json()["to"] == [admin.email]
    assert own.json()["url"] is None
    assert own.header("Location") == f"/api/v1/destinations/{own.json()['id']}"

    outside = {"name": "Partner", "type": "email", "to": [admin.email, "cfo@partner.example"]}
    refused = api.post("/api/v1/destinations", json_body=outside, token=token)
    assert_error(refused, 422, "validation_error")
    assert [item["field"] for item in refused.json()["error"]["details"]] == ["body.to.1"]
    allowed = api.request(
        "PATCH",
        "/api/v1/organizations/current",
        json_body={"settings": {"delivery_allowed_recipients": ["@partner.example"]}},
        token=token,
    )
    assert allowed.status == 200, allowed.body
    assert api.post("/api/v1/destinations", json_body=outside, token=token).status == 201

    tested = api.post(f"/api/v1/destinations/{own.json()['id']}/test", token=token)
    assert tested.status == 200, tested.body
    assert tested.json() == {"delivered": True, "error": None}
    assert [(mail.to, mail.subject) for mail in mailbox] == [
        (admin.email, "Loupe: a test of this destination")
    ]

    # Every role lists them; only admins write or send.
    _, viewer = factories.member(api, clean_db, admin.organization_id, "viewer")
    listed = api.get("/api/v1/destinations", token=viewer["access_token"], query={"type": "email"})
    assert [item["name"] for item in listed.json()["items"]] == ["Me", "Partner"]
    _, editor = factories.member(api, clean_db, admin.organization_id, "editor")
    made = api.post("/api/v1/destinations", json_body={**outside, "name": "x"}, token=editor["access_token"])
    assert_error(made, 403, "forbidden")
    assert_error(
        api.post(f"/api/v1/destinations/{own.json()['id']}/test", token=editor["access_token"]),
        403,
        "forbidden",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "a", "type": "email"}, "body"),
        ({"name": "a", "type": "email", "to": []}, "body.to"),
        ({"name": "a", "type": "email", "to": ["x@example.com", "x@example.com"]}, "body.to"),
        ({"name": "a", "type": "webhook", "to": ["x@example.com"]}, "body"),
        ({"name": "a", "type": "slack", "url": "ftp://hooks.example.com/x"}, "body.url"),
        ({"name": "a", "type": "webhook", "url": "https://user:pw@hooks.example.com/x"}, "body.url"),
        ({"name": "a", "type": "sms", "url": "https://hooks.example.com/x"}, "body.type"),
    ],
)
def test_bad_destinations_are_refused_naming_the_field(
    api: Any, register: Any, aws: str, body: dict[str, Any], field: str
) -> None:
    refused = api.post("/api/v1/destinations", json_body=body, token=register().access_token)
    assert_error(refused, 422, "validation_error")
    assert {item["field"] for item in refused.json()["error"]["details"]} == {field}


def test_a_webhook_is_signed_its_url_write_only_and_its_secret_rotates_with_an_overlap(
    api: Any, register: Any, aws: str, receiver: Receiver
) -> None:
    token = register().access_token
    made = api.post(
        "/api/v1/destinations",
        json_body={"name": "Hook", "type": "webhook", "url": receiver.url},
        token=token,
    )
    assert made.status == 201, made.body
    secret = made.json()["signing_secret"]
    assert secret.startswith("lwhs_")
    assert made.json()["url"] == receiver.url.split("/hook")[0]
    path = f"/api/v1/destinations/{made.json()['id']}"
    shown = api.get(path, token=token)
    assert shown.json()["signing_secret"] is None
    assert "token=s3cret" not in shown.body
    assert secret not in shown.body

    assert api.post(f"{path}/test", token=token).json() == {"delivered": True, "error": None}
    headers, body = receiver.received[-1]
    event = json.loads(body)
    assert (event["type"], event["data"]) == ("test", {"destination_id": made.json()["id"]})
    assert headers["Loupe-Delivery-Id"] == event["id"]
    assert verified(secret, headers, body)
    assert not verified("lwhs_other", headers, body)
    assert not verified(secret, headers, body + b" ")

    rotated = api.post(f"{path}/rotate-secret", token=token, headers={"If-Match": shown.header("ETag")})
    assert rotated.status == 200, rotated.body
    fresh = rotated.json()["signing_secret"]
    assert fresh != secret
    assert api.get(path, token=token).json()["previous_secret_until"] is not None
    api.post(f"{path}/test", token=token)
    headers, body = receiver.received[-1]
    # Both secrets sign while receivers switch.
    assert verified(fresh, headers, body)
    assert verified(secret, headers, body)
    assert headers["Loupe-Signature"].count("v1=") == 2
    stale = api.post(f"{path}/rotate-secret", token=token, headers={"If-Match": shown.header("ETag")})
    assert_error(stale, 412, "precondition_failed")
    # A second rotation within the overlap keeps every secret still signing.
    again = api.post(
        f"{path}/rotate-secret", token=token, headers={"If-Match": api.get(path, token=token).header("ETag")}
    )
    newest = again.json()["signing_secret"]
    api.post(f"{path}/test", token=token)
    headers, body = receiver.received[-1]
    assert all(verified(key, headers, body) for key in (newest, fresh, secret))
    fresh = newest

    # A new URL keeps the secrets; a failing receiver is reported without the URL's path or query.
    moved = api.request(
        "PATCH", path, json_body={"url": receiver.url.replace("/hook", "/moved")}, token=token
    )
    assert moved.status == 200, moved.body
    receiver.statuses = [500]
    failed = api.post(f"{path}/test", token=token).json()
    assert failed["delivered"] is False
    assert "HTTP 500" in failed["error"]
    assert "moved" not in failed["error"]
    assert "s3cret" not in failed["error"]
    assert receiver.paths()[-1] == "/moved?token=s3cret"
    assert verified(fresh, *receiver.received[-1])
    assert_error(
        api.request("PATCH", path, json_body={"to": ["a@example.com"]}, token=token), 422, "validation_error"
    )


def test_a_slack_destination_gets_a_message_text_and_no_secret(
    api: Any, register: Any, aws: str, receiver: Receiver
) -> None:
    token = register().access_token
    made = api.post(
        "/api/v1/destinations", json_body={"name": "Chat", "type": "slack", "url": receiver.url}, token=token
    )
    assert made.status == 201, made.body
    assert made.json()["signing_secret"] is None
    path = f"/api/v1/destinations/{made.json()['id']}"
    assert api.post(f"{path}/test", token=token).json()["delivered"] is True
    assert receiver.requests[-1][1] == {
        "text": "A test message to the destination 'Chat', sent from Loupe by an admin."
    }
    shown = api.get(path, token=token)
    refused = api.post(f"{path}/rotate-secret", token=token, headers={"If-Match": shown.header("ETag")})
    assert_error(refused, 409, "conflict")


def test_an_s3_destination_writes_each_message_under_its_prefix_of_the_delivery_bucket(
    api: Any, register: Any, aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = register().access_token
    body = {"name": "Archive", "type": "s3", "prefix": "reports/finance/"}
    # A deployment without a delivery bucket has no S3 destinations.
    refused = api.post("/api/v1/destinations", json_body=body, token=token)
    assert_error(refused, 422, "validation_error")
    assert [item["field"] for item in refused.json()["error"]["details"]] == ["body.prefix"]

    boto3.client("s3").create_bucket(Bucket="loupe-deliveries-test")
    monkeypatch.setenv("LOUPE_DELIVERY_BUCKET", "loupe-deliveries-test")
    get_settings.cache_clear()
    made = api.post("/api/v1/destinations", json_body=body, token=token)
    assert made.status == 201, made.body
    assert (made.json()["prefix"], made.json()["url"], made.json()["to"]) == ("reports/finance/", None, [])
    path = f"/api/v1/destinations/{made.json()['id']}"
    assert api.post(f"{path}/test", token=token).json() == {"delivered": True, "error": None}
    [listed] = boto3.client("s3").list_objects_v2(Bucket="loupe-deliveries-test")["Contents"]
    assert listed["Key"].startswith("reports/finance/test/")
    assert listed["Key"].endswith(".json")
    stored = json.loads(
        boto3.client("s3").get_object(Bucket="loupe-deliveries-test", Key=listed["Key"])["Body"].read()
    )
    assert (stored["type"], stored["data"]) == ("test", {"destination_id": made.json()["id"]})
    for bad in ("/abs/", "a/../b/", "no-slash"):
        assert_error(
            api.post("/api/v1/destinations", json_body={**body, "prefix": bad}, token=token),
            422,
            "validation_error",
        )
    moved = api.request("PATCH", path, json_body={"prefix": "reports/all/"}, token=token)
    assert moved.json()["prefix"] == "reports/all/"
    assert_error(
        api.request("PATCH", path, json_body={"url": "http://127.0.0.1:9/x"}, token=token),
        422,
        "validation_error",
    )
