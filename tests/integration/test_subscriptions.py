"""Subscriptions: a dashboard, visualization or query on a cron, delivered as its owner through the
scheduler's tick (runs started and waited for, pictures drawn, rows attached) to destinations, retried
with a backoff and then reported failed on the subscription."""

from __future__ import annotations

import io
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import psycopg
import pytest
from PIL import Image

from loupe import db, next_tick
from loupe.config import get_settings
from loupe.services import subscriptions
from loupe.services.scheduler import tick
from tests import factories
from tests.integration import runs_support
from tests.integration.runs_support import deliver, receive, run_query, saved_query
from tests.integration.test_alerts import Receiver, receiver
from tests.integration.test_dashboards import assert_error
from tests.integration.test_destinations import mailbox, verified
from tests.integration.test_rendering import BAR_COLOR, bar_heights
from tests.read_only_logins import POSTGRES_ADMIN

aws = runs_support.aws
postgres_database = runs_support.postgres_database
__all__ = ["mailbox", "receiver"]

AMOUNTS_SQL = "SELECT label, amount FROM (VALUES ('a', 10), ('b', 20), ('c', 40)) AS t(label, amount)"


def report_setup(api: Any, token: str, database: str, sql: str = AMOUNTS_SQL) -> dict[str, str]:
    """A query of `sql` (a label and an amount), its bar chart, and a dashboard of that chart."""
    query = saved_query(api, token, database, sql, [])
    assert query.status == 201, query.body
    bar = api.post(
        "/api/v1/visualizations",
        json_body={
            "name": "Amounts",
            "query_id": query.json()["id"],
            "type": "bar",
            "options": {"x": "label", "y": [{"column": "amount"}]},
        },
        token=token,
    )
    dashboard = api.post(
        "/api/v1/dashboards",
        json_body={
            "name": "Amounts board",
            "tiles": [{"visualization_id": bar.json()["id"], "x": 0, "y": 0, "w": 12, "h": 5}],
        },
        token=token,
    )
    assert dashboard.status == 201, dashboard.body
    return {"query": query.json()["id"], "dashboard": dashboard.json()["id"]}


def mailed(api: Any, admin: Any, resource: dict[str, str], name: str, formats: list[str]) -> dict[str, Any]:
    """A daily subscription of `resource` as `formats`, mailed to the admin."""
    token = admin.access_token
    mail = api.post(
        "/api/v1/destinations", json_body={"name": "Me", "type": "email", "to": [admin.email]}, token=token
    )
    body = {
        "name": name,
        "resource": resource,
        "cron": "0 8 * * *",
        "formats": formats,
        "destination_ids": [mail.json()["id"]],
    }
    made = api.post("/api/v1/subscriptions", json_body=body, token=token)
    assert made.status == 201, made.body
    return dict(made.json())


def due_now(database_url: str, subscription_id: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE subscriptions SET next_run_at = now() - interval '1 minute' WHERE id = %s",
            (subscription_id,),
        )
    next_tick.poke()


def retry_now(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE subscription_deliveries SET next_attempt_at = now() WHERE status = 'pending'")
    next_tick.poke()


def short_tick() -> Any:
    now = datetime.now(UTC)
    return tick(now, now + timedelta(seconds=1))


def test_a_subscription_mails_the_dashboard_drawn_and_its_rows_and_signs_its_webhook(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, mailbox: Any, receiver: Receiver
) -> None:
    admin = register()
    token = admin.access_token
    made = report_setup(api, token, postgres_database)
    mail = api.post(
        "/api/v1/destinations", json_body={"name": "Me", "type": "email", "to": [admin.email]}, token=token
    )
    hook = api.post(
        "/api/v1/destinations",
        json_body={"name": "Hook", "type": "webhook", "url": receiver.url},
        token=token,
    )
    body = {
        "name": "Amounts weekly",
        "resource": {"type": "dashboard", "id": made["dashboard"]},
        "cron": "0 8 * * 1",
        "timezone": "Europe/Berlin",
        "formats": ["png", "csv"],
        "destination_ids": [mail.json()["id"], hook.json()["id"]],
    }
    subscription = api.post("/api/v1/subscriptions", json_body=body, token=token)
    assert subscription.status == 201, subscription.body
    shown = subscription.json()
    assert (shown["owner_id"], shown["last_status"]) == (admin.user_id, None)
    assert datetime.fromisoformat(shown["next_run_at"]) > datetime.now(UTC)

    due_now(clean_db, shown["id"])
    fired = short_tick()
    assert fired.reports_fired == 1
    path = f"/api/v1/subscriptions/{shown['id']}"
    [pending] = api.get(f"{path}/deliveries", token=token).json()["items"]
    assert pending["status"] == "pending"
    assert len(pending["run_ids"]) == 1
    run = api.get(f"/api/v1/runs/{pending['run_ids'][0]}", token=token).json()
    assert (run["origin"], run["created_by"]) == ("subscription", admin.user_id)
    assert mailbox == []

    deliver(aws)
    short_tick()
    [done] = api.get(f"{path}/deliveries", token=token).json()["items"]
    assert done["status"] == "delivered", done
    assert done["destinations"] == {mail.json()["id"]: "sent", hook.json()["id"]: "sent"}
    assert api.get(path, token=token).json()["last_status"] == "delivered"

    [sent] = mailbox
    assert sent.subject == "Loupe report: Amounts weekly"
    picture, rows = sent.attachments
    assert (picture.filename, picture.content_type) == ("Amounts-weekly.png", "image/png")
    assert Image.open(io.BytesIO(picture.content)).size[0] == 1200
    assert (rows.filename, rows.content_type) == ("Amounts-weekly-1.csv", "text/csv")
    assert rows.content.decode().splitlines() == ["label,amount", "a,10", "b,20", "c,40"]

    headers, raw = receiver.received[-1]
    event = json.loads(raw)
    assert event["type"] == "report"
    assert headers["Loupe-Delivery-Id"] == done["id"]
    assert [item["filename"] for item in event["data"]["files"]] == [
        "Amounts-weekly.png",
        "Amounts-weekly-1.csv",
    ]
    assert verified(hook.json()["signing_secret"], headers, raw)


def test_a_failing_destination_is_retried_with_a_backoff_then_the_subscription_says_it_failed(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, receiver: Receiver
) -> None:
    token = register().access_token
    made = report_setup(api, token, postgres_database)
    hook = api.post(
        "/api/v1/destinations", json_body={"name": "Hook", "type": "slack", "url": receiver.url}, token=token
    )
    body = {
        "name": "Rows",
        "resource": {"type": "query", "id": made["query"]},
        "cron": "0 * * * *",
        "formats": ["xlsx"],
        "destination_ids": [hook.json()["id"]],
    }
    subscription = api.post("/api/v1/subscriptions", json_body=body, token=token).json()
    receiver.statuses = [500] * 5
    due_now(clean_db, subscription["id"])
    short_tick()
    deliver(aws)
    short_tick()
    path = f"/api/v1/subscriptions/{subscription['id']}/deliveries"
    [first] = api.get(path, token=token).json()["items"]
    assert (first["status"], first["attempts"]) == ("pending", 1)
    assert "HTTP 500" in first["error"]
    for _ in range(4):
        retry_now(clean_db)
        short_tick()
    [last] = api.get(path, token=token).json()["items"]
    assert (last["status"], last["attempts"], last["destinations"]) == (
        "failed",
        5,
        {hook.json()["id"]: "failed"},
    )
    shown = api.get(f"/api/v1/subscriptions/{subscription['id']}", token=token).json()
    assert shown["last_status"] == "failed"
    assert "HTTP 500" in shown["last_error"]
    # The Slack message carried the summary; no link to a file (a revocable share link only, when allowed).
    assert receiver.requests[-1][1]["text"].startswith("The report 'Rows'")
    assert "Rows-1.xlsx" not in receiver.requests[-1][1]["text"]


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"formats": []}, 422, "body.formats"),
        ({"formats": ["csv", "csv"]}, 422, "body.formats"),
        ({"cron": "every day"}, 422, "body.cron"),
        ({"filters": {"nope": 1}}, 422, "body.filters.nope"),
        ({"destination_ids": ["00000000-0000-4000-8000-000000000000"]}, 404, "body.destination_ids.0"),
        ({"resource": {"type": "dashboard", "id": "00000000-0000-4000-8000-000000000000"}}, 404, None),
    ],
)
def test_bad_subscriptions_are_refused_naming_the_field(
    api: Any,
    register: Any,
    aws: str,
    postgres_database: str,
    change: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    admin = register()
    token = admin.access_token
    made = report_setup(api, token, postgres_database)
    mail = api.post(
        "/api/v1/destinations", json_body={"name": "Me", "type": "email", "to": [admin.email]}, token=token
    )
    body: dict[str, Any] = {
        "name": "s",
        "resource": {"type": "dashboard", "id": made["dashboard"]},
        "cron": "0 8 * * *",
        "formats": ["pdf"],
        "destination_ids": [mail.json()["id"]],
    }
    if "resource" in change and "id" not in change["resource"]:
        change = {**change, "resource": {**change["resource"], "id": made["query"]}}
    refused = api.post("/api/v1/subscriptions", json_body=body | change, token=token)
    assert refused.status == status, refused.body
    if field is not None:
        assert field in {item["field"] for item in refused.json()["error"].get("details", [])}, refused.body


def test_only_the_owner_or_an_admin_changes_a_subscription_that_runs_as_its_owner(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin = register()
    token = admin.access_token
    made = report_setup(api, token, postgres_database)
    _, editor = factories.member(api, clean_db, admin.organization_id, "editor")
    mail = api.post(
        "/api/v1/destinations", json_body={"name": "Me", "type": "email", "to": [admin.email]}, token=token
    )
    body = {
        "name": "Editor's",
        "resource": {"type": "dashboard", "id": made["dashboard"]},
        "cron": "0 8 * * *",
        "formats": ["pdf"],
        "destination_ids": [mail.json()["id"]],
    }
    owned = api.post("/api/v1/subscriptions", json_body=body, token=editor["access_token"]).json()
    path = f"/api/v1/subscriptions/{owned['id']}"
    _, other = factories.member(api, clean_db, admin.organization_id, "editor")
    etag = api.get(path, token=token).header("ETag")
    refused = api.request(
        "PATCH", path, json_body={"formats": ["csv"]}, token=other["access_token"], headers={"If-Match": etag}
    )
    assert_error(refused, 403, "forbidden")
    changed = api.request(
        "PATCH", path, json_body={"formats": ["csv"]}, token=token, headers={"If-Match": etag}
    )
    assert changed.status == 200, changed.body
    assert changed.json()["owner_id"] == owned["owner_id"]


def test_a_page_without_queries_is_delivered_and_a_report_with_no_destination_left_fails(
    api: Any, register: Any, clean_db: str, aws: str, mailbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = register()
    token = admin.access_token
    notes = api.post(
        "/api/v1/dashboards",
        json_body={"name": "Notes", "tiles": [{"text": "Nothing to run", "x": 0, "y": 0, "w": 12, "h": 2}]},
        token=token,
    )
    made = mailed(api, admin, {"type": "dashboard", "id": notes.json()["id"]}, "Notes", ["png"])
    due_now(clean_db, made["id"])
    short_tick()
    [done] = api.get(f"/api/v1/subscriptions/{made['id']}/deliveries", token=token).json()["items"]
    assert (done["status"], done["run_ids"]) == ("delivered", [])
    assert [item.filename for item in mailbox[0].attachments] == ["Notes.png"]

    # Whatever breaks while preparing one report is an attempt of that report, retried later.
    monkeypatch.setattr(subscriptions, "_files", lambda *args: (_ for _ in ()).throw(RuntimeError("boom")))
    due_now(clean_db, made["id"])
    short_tick()
    broken = api.get(
        f"/api/v1/subscriptions/{made['id']}/deliveries", token=token, query={"status": "pending"}
    )
    [pending] = broken.json()["items"]
    assert (pending["attempts"], pending["error"]) == (1, "RuntimeError while preparing the report")
    monkeypatch.undo()

    # A destination a subscription names cannot be deleted; once the subscription sends elsewhere it can,
    # and the delivery that was made for it finds it gone.
    mail_path = f"/api/v1/destinations/{made['destination_ids'][0]}"
    refused = api.delete(
        mail_path, token=token, headers={"If-Match": api.get(mail_path, token=token).header("ETag")}
    )
    assert refused.status == 409, refused.body
    assert [(item["kind"], item["id"]) for item in refused.json()["error"]["dependents"]] == [
        ("subscription", made["id"])
    ]
    other = api.post(
        "/api/v1/destinations", json_body={"name": "Other", "type": "email", "to": [admin.email]}, token=token
    )
    moved = api.request(
        "PATCH",
        f"/api/v1/subscriptions/{made['id']}",
        json_body={"destination_ids": [other.json()["id"]]},
        token=token,
        headers={"If-Match": api.get(f"/api/v1/subscriptions/{made['id']}", token=token).header("ETag")},
    )
    assert moved.status == 200, moved.body
    deleted = api.delete(
        mail_path, token=token, headers={"If-Match": api.get(mail_path, token=token).header("ETag")}
    )
    assert deleted.status == 204, deleted.body
    retry_now(clean_db)
    short_tick()
    [gone] = api.get(
        f"/api/v1/subscriptions/{made['id']}/deliveries", token=token, query={"status": "failed"}
    ).json()["items"]
    assert gone["destinations"] == {made["destination_ids"][0]: "gone"}
    assert api.get(f"/api/v1/subscriptions/{made['id']}", token=token).json()["last_error"] == (
        "Every destination of the subscription is gone"
    )


def test_a_reports_runs_go_to_the_scheduled_runs_queue_not_the_one_people_wait_on(
    api: Any,
    register: Any,
    clean_db: str,
    aws: str,
    postgres_database: str,
    mailbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scheduled = boto3.client("sqs").create_queue(QueueName="loupe-scheduled-runs-reports")["QueueUrl"]
    monkeypatch.setenv("LOUPE_SCHEDULED_RUNS_QUEUE_URL", scheduled)
    get_settings.cache_clear()
    admin = register()
    made = report_setup(api, admin.access_token, postgres_database)
    mail = api.post(
        "/api/v1/destinations",
        json_body={"name": "Me", "type": "email", "to": [admin.email]},
        token=admin.access_token,
    )
    body = {
        "name": "Amounts",
        "resource": {"type": "query", "id": made["query"]},
        "cron": "0 8 * * 1",
        "timezone": "UTC",
        "formats": ["csv"],
        "destination_ids": [mail.json()["id"]],
    }
    subscription = api.post("/api/v1/subscriptions", json_body=body, token=admin.access_token)
    assert subscription.status == 201, subscription.body
    due_now(clean_db, subscription.json()["id"])
    assert short_tick().reports_fired == 1
    [delivery] = api.get(
        f"/api/v1/subscriptions/{subscription.json()['id']}/deliveries", token=admin.access_token
    ).json()["items"]
    assert [json.loads(message["Body"])["run_id"] for message in receive(scheduled)] == delivery["run_ids"]
    assert receive(aws) == []


def test_a_chat_message_links_to_the_report_through_a_share_link_that_can_be_revoked(
    api: Any,
    register: Any,
    clean_db: str,
    aws: str,
    postgres_database: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOUPE_SHARE_URL", "https://app.example.com/shared#token={token}")
    get_settings.cache_clear()
    admin = register()
    token = admin.access_token
    made = report_setup(api, token, postgres_database)
    chat = api.post(
        "/api/v1/destinations",
        json_body={"name": "Chat", "type": "slack", "url": receiver.url.replace("/hook", "/chat")},
        token=token,
    )
    body = {
        "name": "Amounts daily",
        "resource": {"type": "dashboard", "id": made["dashboard"]},
        "cron": "0 8 * * *",
        "formats": ["png", "csv"],
        "destination_ids": [chat.json()["id"]],
    }
    subscription = api.post("/api/v1/subscriptions", json_body=body, token=token).json()
    path = f"/api/v1/subscriptions/{subscription['id']}"
    shares_path = f"/api/v1/dashboards/{made['dashboard']}/shares"

    def delivered_text() -> str:
        due_now(clean_db, subscription["id"])
        short_tick()
        if api.get(f"{path}/deliveries", token=token, query={"status": "pending"}).json()["items"]:
            deliver(aws)
            short_tick()
        [done] = api.get(f"{path}/deliveries", token=token, query={"limit": "1"}).json()["items"]
        assert done["status"] == "delivered", done
        texts = [sent["text"] for where, sent in receiver.requests if where.startswith("/chat")]
        return texts[-1]

    def guest_render(secret: str) -> Any:
        return api.get(
            "/api/v1/embed/render", headers={"Authorization": f"Bearer {secret}", "Accept": "image/png"}
        )

    # Where the organization has share links off, the message is the summary alone: no file, no link.
    text = delivered_text()
    assert text.startswith("The report 'Amounts daily', as of")
    assert "(No link: share links are not available to this report.)" in text
    assert "https://" not in text
    assert api.get(path, token=token).json()["share_id"] is None

    sharing = api.request(
        "PATCH",
        "/api/v1/organizations/current",
        json_body={"settings": {"share_links_enabled": True}},
        token=token,
    )
    assert sharing.status == 200, sharing.body
    text = delivered_text()
    [secret] = re.findall(r"See it: https://app\.example\.com/shared#token=(\S+)", text)
    share_id = api.get(path, token=token).json()["share_id"]
    [listed] = api.get(shares_path, token=token).json()["items"]
    assert (listed["id"], listed["locked"], listed["created_by"]) == (share_id, {}, admin.user_id)
    drawn = guest_render(secret)
    assert drawn.status == 200, drawn.body
    assert Image.open(io.BytesIO(drawn.content)).size[0] == 1200
    # Every message carries the same link, until it is revoked; the next then carries a new one.
    assert secret in delivered_text()
    assert api.delete(f"{shares_path}/{share_id}", token=token).status == 204
    assert guest_render(secret).status == 401
    [renewed] = re.findall(r"#token=(\S+)", delivered_text())

    def share_id_of(secret: str) -> str:
        assert guest_render(secret).status == 200
        return str(api.get(path, token=token).json()["share_id"])

    assert renewed != secret
    assert guest_render(renewed).status == 200

    # The same filter values sent again keep the link; new ones end the link that locked the old values.
    def patch_filters() -> Any:
        etag = api.get(path, token=token).header("ETag")
        return api.request("PATCH", path, json_body={"filters": {}}, token=token, headers={"If-Match": etag})

    assert patch_filters().json()["share_id"] == share_id_of(renewed)
    with psycopg.connect(clean_db) as conn:
        conn.execute(
            "UPDATE subscriptions SET filters = '{\"stale\": 1}' WHERE id = %s", (subscription["id"],)
        )
    changed = patch_filters()
    assert (changed.status, changed.json()["share_id"]) == (200, None)
    assert guest_render(renewed).status == 401
    [latest] = re.findall(r"#token=(\S+)", delivered_text())
    assert guest_render(latest).status == 200
    # Deleting the subscription revokes its link.
    assert api.delete(path, token=token).status == 204
    assert guest_render(latest).status == 401


def ran_report(
    api: Any, admin: Any, clean_db: str, aws: str, database: str, name: str, sql: str
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """A report of report_setup's dashboard as a PNG mailed to the admin, fired and its run run, not yet
    drawn: the admin's token, report_setup's ids, the subscription."""
    token = admin.access_token
    made = report_setup(api, token, database, sql)
    subscription = mailed(api, admin, {"type": "dashboard", "id": made["dashboard"]}, name, ["png"])
    due_now(clean_db, subscription["id"])
    short_tick()
    deliver(aws)
    return token, made, subscription


def test_a_reports_picture_is_drawn_from_its_own_runs_not_a_newer_result(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, mailbox: Any
) -> None:
    token, made, _ = ran_report(
        api,
        register(),
        clean_db,
        aws,
        postgres_database,
        "Widgets",
        "SELECT label, id AS amount FROM widgets",
    )
    # Between the report's run and its drawing, the data changes and a newer run stores one row.
    with psycopg.connect(POSTGRES_ADMIN.format(database=postgres_database), autocommit=True) as conn:
        conn.execute("DELETE FROM widgets WHERE id > 1")
    assert run_query(api, token, made["query"]).status == 202
    deliver(aws)
    short_tick()

    [sent] = mailbox
    [picture] = sent.attachments
    image = Image.open(io.BytesIO(picture.content)).convert("RGB")
    assert len(bar_heights(image, BAR_COLOR)) == 5


def test_drawing_and_sending_hold_no_transaction_open_so_a_slow_page_is_still_delivered(
    api: Any,
    register: Any,
    clean_db: str,
    aws: str,
    postgres_database: str,
    mailbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token, _, subscription = ran_report(
        api, register(), clean_db, aws, postgres_database, "Slow", AMOUNTS_SQL
    )

    # The server ends a session left idle in a transaction for a second; the page takes longer to draw.
    # Meanwhile the delivery is claimed: another tick would not take it.
    drawn = subscriptions.rendering.render_board
    taken_meanwhile: list[Any] = []

    def slow_board(*args: Any) -> Any:
        picture = drawn(*args)
        time.sleep(1.5)
        with db.transaction():
            taken_meanwhile.append(subscriptions.repository.next_pending(datetime.now(UTC), []))
        return picture

    monkeypatch.setattr(subscriptions.rendering, "render_board", slow_board)
    monkeypatch.setenv("LOUPE_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", "1000")
    get_settings.cache_clear()
    db.close()
    try:
        short_tick()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        db.close()
    [done] = api.get(f"/api/v1/subscriptions/{subscription['id']}/deliveries", token=token).json()["items"]
    assert (done["status"], done["error"]) == ("delivered", None)
    assert [item.filename for item in mailbox[0].attachments] == ["Slow.png"]
    assert taken_meanwhile == [None]


FLOOR_SQL = (
    "SELECT label, amount, {{ period.to }} AS until FROM (VALUES ('a', 10), ('b', 20), ('c', 40))"
    " AS t(label, amount) WHERE amount > {{ minimum }}"
)


def test_a_report_resolves_its_ranges_when_it_fired_and_runs_again_for_changed_filter_defaults(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, mailbox: Any
) -> None:
    admin = register()
    token = admin.access_token
    query = saved_query(
        api,
        token,
        postgres_database,
        FLOOR_SQL,
        [
            {"name": "minimum", "type": "number", "required": True},
            {"name": "period", "type": "datetime_range"},
        ],
    )
    assert query.status == 201, query.body
    table = api.post(
        "/api/v1/visualizations",
        json_body={"name": "Rows", "query_id": query.json()["id"], "type": "table", "options": {}},
        token=token,
    )
    filters = [
        {"name": "floor", "type": "number", "default": 0},
        {"name": "period", "type": "datetime_range", "default": {"preset": "last_1h"}},
    ]
    dashboard = api.post(
        "/api/v1/dashboards",
        json_body={
            "name": "Floor",
            "filters": filters,
            "tiles": [
                {
                    "visualization_id": table.json()["id"],
                    "x": 0,
                    "y": 0,
                    "w": 12,
                    "h": 5,
                    "param_mappings": {"minimum": "floor", "period": "period"},
                }
            ],
        },
        token=token,
    )
    assert dashboard.status == 201, dashboard.body
    subscription = mailed(api, admin, {"type": "dashboard", "id": dashboard.json()["id"]}, "Floor", ["csv"])
    due_now(clean_db, subscription["id"])
    with db.transaction():
        assert subscriptions.fire_due(datetime.now(UTC)) == 1
    # The report fired 30 seconds into a minute gone (its tick was late): its last hour ends as that
    # minute began.
    with psycopg.connect(clean_db) as conn:
        fired_minute = conn.execute(
            "UPDATE subscription_deliveries"
            " SET created_at = date_trunc('minute', now() - interval '1 minute') + interval '30 seconds'"
            " RETURNING date_trunc('minute', created_at)"
        ).fetchone()[0]
    path = f"/api/v1/subscriptions/{subscription['id']}/deliveries"

    def runs_of_delivery() -> list[dict[str, Any]]:
        [delivery] = api.get(path, token=token).json()["items"]
        return [api.get(f"/api/v1/runs/{run_id}", token=token).json() for run_id in delivery["run_ids"]]

    short_tick()
    [first] = runs_of_delivery()
    assert first["parameters"]["minimum"] == 0
    assert datetime.fromisoformat(first["parameters"]["period"]["to"]) == fired_minute
    # Its ranges resolved when it fired, its plan stays the same however late its run ends.
    deliver(aws)
    # Meanwhile the dashboard's floor goes up: the report's run is of the old value, and runs again.
    changed = api.request(
        "PATCH",
        f"/api/v1/dashboards/{dashboard.json()['id']}",
        json_body={"filters": [{**filters[0], "default": 15}, filters[1]]},
        token=token,
    )
    assert changed.status == 200, changed.body
    short_tick()
    [again] = runs_of_delivery()
    assert again["id"] != first["id"]
    assert (again["parameters"]["minimum"], again["parameters"]["period"]) == (
        15,
        first["parameters"]["period"],
    )
    assert mailbox == []
    deliver(aws)
    short_tick()
    assert runs_of_delivery() == [api.get(f"/api/v1/runs/{again['id']}", token=token).json()]
    [sent] = mailbox
    [rows] = sent.attachments
    assert [line.split(",")[:2] for line in rows.content.decode().splitlines()] == [
        ["label", "amount"],
        ["b", "20"],
        ["c", "40"],
    ]


class Stopped(BaseException):
    """What Lambda does to a tick out of time or memory: nothing after it runs, no handler sees it."""


def mailed_and_hooked(
    api: Any, admin: Any, clean_db: str, aws: str, database: str, receiver: Receiver, name: str
) -> tuple[str, str, str, str]:
    """ran_report's report, its delivery also due to a webhook: the token, the deliveries' path, the mail's
    and the webhook's destination ids."""
    token, _, subscription = ran_report(api, admin, clean_db, aws, database, name, AMOUNTS_SQL)
    [mail_id] = subscription["destination_ids"]
    hook = api.post(
        "/api/v1/destinations",
        json_body={"name": "Hook", "type": "webhook", "url": receiver.url},
        token=token,
    ).json()
    with psycopg.connect(clean_db) as conn:
        conn.execute(
            "UPDATE subscription_deliveries SET destinations = %s",
            (json.dumps({mail_id: "pending", hook["id"]: "pending"}),),
        )
    return token, f"/api/v1/subscriptions/{subscription['id']}/deliveries", mail_id, hook["id"]


def tick_stopped_at(monkeypatch: pytest.MonkeyPatch, destination_id: str) -> None:
    """A tick that stops as it sends to the destination."""
    delivered = subscriptions.destinations.deliver

    def stopped_there(organization_id: Any, row: Any, message: Any) -> None:
        if str(row["id"]) == destination_id:
            raise Stopped
        delivered(organization_id, row, message)

    with monkeypatch.context() as patched:
        patched.setattr(subscriptions.destinations, "deliver", stopped_there)
        with pytest.raises(Stopped):
            short_tick()
    db.close()


@pytest.mark.parametrize("stops", [1, subscriptions.MAX_ATTEMPTS])
def test_a_tick_stopped_while_sending_neither_sends_twice_nor_retries_without_end(
    api: Any,
    register: Any,
    clean_db: str,
    aws: str,
    postgres_database: str,
    mailbox: Any,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    stops: int,
) -> None:
    admin = register()
    token, path, mail_id, hook_id = mailed_and_hooked(
        api, admin, clean_db, aws, postgres_database, receiver, "Stopped"
    )
    # Destinations are sent to in the order of their ids: the tick stops at the second.
    sent_first, stopped_at = sorted([mail_id, hook_id])

    def sends() -> int:
        return len(mailbox) + len(receiver.received)

    for attempt in range(1, stops + 1):
        retry_now(clean_db)
        tick_stopped_at(monkeypatch, stopped_at)
        [delivery] = api.get(path, token=token).json()["items"]
        # The first went once, on the first attempt, and is not sent again; the stop is counted and said.
        assert (delivery["status"], delivery["attempts"]) == ("pending", attempt)
        assert delivery["destinations"] == {sent_first: "sent", stopped_at: "pending"}
        assert delivery["error"] == subscriptions.STOPPED
        assert sends() == 1
    # A stopped attempt holds the delivery off as any claim does: the next tick does not take it yet.
    assert short_tick().report_attempts == 0

    # Taken again once its claim is over: sent to the second alone, or failed after its last attempt.
    retry_now(clean_db)
    short_tick()
    [last] = api.get(path, token=token).json()["items"]
    subscription = api.get(path.removesuffix("/deliveries"), token=token).json()
    if stops < subscriptions.MAX_ATTEMPTS:
        assert (last["status"], last["attempts"], last["error"]) == ("delivered", stops + 1, None)
        assert last["destinations"] == {sent_first: "sent", stopped_at: "sent"}
        assert (len(mailbox), len(receiver.received)) == (1, 1)
    else:
        assert (last["status"], last["attempts"], last["error"]) == ("failed", stops, subscriptions.STOPPED)
        assert (subscription["last_status"], subscription["last_error"]) == ("failed", subscriptions.STOPPED)
        assert sends() == 1


def test_a_querys_report_draws_its_result_as_a_table(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, mailbox: Any
) -> None:
    admin = register()
    token = admin.access_token
    made = report_setup(api, token, postgres_database)
    subscription = mailed(api, admin, {"type": "query", "id": made["query"]}, "Table", ["png"])
    due_now(clean_db, subscription["id"])
    short_tick()
    deliver(aws)
    short_tick()
    [sent] = mailbox
    [picture] = sent.attachments
    drawn = Image.open(io.BytesIO(picture.content)).convert("RGB")
    # The same page a guest of the query sees once the query's run is its newest result.
    guest = api.post(
        "/api/v1/embed-tokens", json_body={"resource": {"type": "query", "id": made["query"]}}, token=token
    ).json()["token"]
    shown = api.get(
        "/api/v1/embed/render",
        query={"width": "1200"},
        headers={"Authorization": f"Bearer {guest}", "Accept": "image/png"},
    )
    assert shown.status == 200, shown.body
    assert drawn.tobytes() == Image.open(io.BytesIO(shown.content)).convert("RGB").tobytes()
    assert len(drawn.getcolors(maxcolors=1 << 16) or []) > 10
