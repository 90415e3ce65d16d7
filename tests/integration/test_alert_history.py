"""What alert users ask for beyond a value crossing a threshold: a rule on the run failing (resolved by
the next success), muting until a time (firings kept, notified nowhere), a history of firings and
resolutions, and delivery to the organization's destinations, signed like every webhook delivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from loupe.services import alerts
from tests.integration import runs_support
from tests.integration.runs_support import saved_query, setup_org
from tests.integration.test_alerts import Receiver, alerts_inbox, fire, firings, patch, published, receiver
from tests.integration.test_dashboards import assert_error
from tests.integration.test_destinations import verified
from tests.integration.test_scheduler import schedule

aws = runs_support.aws
postgres_database = runs_support.postgres_database
__all__ = ["alerts_inbox", "receiver"]

DIVIDE_SQL = "SELECT 10 / {{ d }} AS x"
FAILS = {"name": "refresh failed", "source": "run_failed"}


def divide_schedule(api: Any, token: str, database: str, **body: Any) -> str:
    query = saved_query(api, token, database, DIVIDE_SQL, [{"name": "d", "type": "number", "required": True}])
    assert query.status == 201, query.body
    return schedule(api, token, query.json()["id"], parameters={"d": 0}, **body)


def test_a_run_failed_rule_fires_once_per_failure_spell_and_resolves_at_the_next_success(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, alerts_inbox: str
) -> None:
    token = register().access_token
    hourly = divide_schedule(api, token, postgres_database, alert_rules=[FAILS])

    fire(clean_db, aws, hourly)
    fire(clean_db, aws, hourly)
    [fired] = firings(api, token, hourly)
    assert (fired["kind"], fired["muted"], fired["sns"]) == ("fired", False, "sent")
    assert "division by zero" in fired["value"]
    [message] = published(alerts_inbox)
    assert message["rule"]["source"] == "run_failed"
    shown = api.get(f"/api/v1/schedules/{hourly}", token=token).json()["alert_rules"]
    assert (shown[0]["triggered"], shown[0]["operator"]) == (True, None)

    patch(api, token, hourly, {"parameters": {"d": 2}})
    fire(clean_db, aws, hourly)
    [resolved] = firings(api, token, hourly, kind="resolved")
    assert (resolved["value"], resolved["sns"], resolved["delivered_at"] is not None) == (
        None,
        "skipped",
        True,
    )
    assert published(alerts_inbox) == []
    patch(api, token, hourly, {"parameters": {"d": 0}})
    fire(clean_db, aws, hourly)
    assert len(firings(api, token, hourly, kind="fired")) == 2


def test_a_muted_rule_keeps_its_firings_and_notifies_nowhere_until_the_time(
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
    until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    rule = {
        "name": "many",
        "source": "row_count",
        "operator": ">",
        "threshold": 3,
        "webhook_url": receiver.url,
    }
    hourly = schedule(api, token, query_id, alert_rules=[rule | {"muted_until": until}])

    fire(clean_db, aws, hourly)
    [fired] = firings(api, token, hourly)
    assert (fired["muted"], fired["sns"], fired["webhook"], fired["delivered_at"] is not None) == (
        True,
        "skipped",
        None,
        True,
    )
    assert published(alerts_inbox) == []
    assert receiver.requests == []
    shown = api.get(f"/api/v1/schedules/{hourly}", token=token).json()["alert_rules"][0]
    assert shown["triggered"] is True
    assert shown["muted_until"] is not None

    # Unmuting keeps the state: still true, so no new firing until it re-arms.
    rule_id = shown["id"]
    patch(api, token, hourly, {"alert_rules": [rule | {"id": rule_id}]})
    assert api.get(f"/api/v1/schedules/{hourly}", token=token).json()["alert_rules"][0]["triggered"] is True
    fire(clean_db, aws, hourly)
    assert len(firings(api, token, hourly)) == 1
    assert receiver.requests == []


def test_firings_go_to_the_rules_destinations_signed_and_a_deleted_one_is_gone(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, receiver: Receiver
) -> None:
    token = register().access_token
    hook = api.post(
        "/api/v1/destinations",
        json_body={"name": "Hook", "type": "webhook", "url": receiver.url},
        token=token,
    )
    assert hook.status == 201, hook.body
    chat = api.post(
        "/api/v1/destinations",
        json_body={"name": "Chat", "type": "slack", "url": receiver.url.replace("/hook", "/chat")},
        token=token,
    )
    rule = FAILS | {"destination_ids": [hook.json()["id"], chat.json()["id"]]}
    hourly = divide_schedule(api, token, postgres_database, alert_rules=[rule])
    assert api.get(f"/api/v1/schedules/{hourly}", token=token).json()["alert_rules"][0][
        "destination_ids"
    ] == [
        hook.json()["id"],
        chat.json()["id"],
    ]

    fire(clean_db, aws, hourly)
    [fired] = firings(api, token, hourly)
    assert fired["destinations"] == {hook.json()["id"]: "sent", chat.json()["id"]: "sent"}
    requests = dict(receiver.requests)
    event, text = requests["/hook?token=s3cret"], requests["/chat?token=s3cret"]
    assert text["text"].startswith("refresh failed fired on the schedule")
    assert (event["type"], event["data"]["rule"]["name"]) == ("alert", "refresh failed")
    headers, body = next(item for item in receiver.received if b'"type": "alert"' in item[1])
    assert verified(hook.json()["signing_secret"], headers, body)

    # A delivery that failed goes again under the same delivery id, so a receiver can refuse a replay.
    receiver.statuses = [500, 500]
    patch(api, token, hourly, {"parameters": {"d": 1}})
    fire(clean_db, aws, hourly)
    patch(api, token, hourly, {"parameters": {"d": 0}})
    fire(clean_db, aws, hourly)
    failed = firings(api, token, hourly, kind="fired", sort="-created_at")[0]
    assert failed["destinations"] == {hook.json()["id"]: "failed", chat.json()["id"]: "failed"}
    alerts.deliver_pending()
    retried = firings(api, token, hourly, kind="fired", sort="-created_at")[0]
    assert retried["destinations"][hook.json()["id"]] == "sent"
    first, second = [headers for headers, body in receiver.received if b'"type": "alert"' in body][-2:]
    assert first["Loupe-Delivery-Id"] == second["Loupe-Delivery-Id"]

    # A destination a rule names cannot be deleted. Once the rule stops naming it, it can, and a firing
    # still waiting to reach it finds it `gone` there; the others are still sent.
    chat_path = f"/api/v1/destinations/{chat.json()['id']}"
    refused = api.delete(
        chat_path, token=token, headers={"If-Match": api.get(chat_path, token=token).header("ETag")}
    )
    assert refused.status == 409, refused.body
    assert [(item["kind"], item["id"]) for item in refused.json()["error"]["dependents"]] == [
        ("schedule", hourly)
    ]
    receiver.statuses = [500, 500]
    patch(api, token, hourly, {"parameters": {"d": 1}})
    fire(clean_db, aws, hourly)
    patch(api, token, hourly, {"parameters": {"d": 0}})
    fire(clean_db, aws, hourly)
    waiting = firings(api, token, hourly, kind="fired", sort="-created_at")[0]
    assert waiting["destinations"] == {hook.json()["id"]: "failed", chat.json()["id"]: "failed"}
    patch(api, token, hourly, {"alert_rules": [FAILS | {"destination_ids": [hook.json()["id"]]}]})
    deleted = api.delete(
        chat_path, token=token, headers={"If-Match": api.get(chat_path, token=token).header("ETag")}
    )
    assert deleted.status == 204, deleted.body
    alerts.deliver_pending()
    latest = firings(api, token, hourly, kind="fired", sort="-created_at")[0]
    assert latest["destinations"] == {hook.json()["id"]: "sent", chat.json()["id"]: "gone"}


def test_a_rule_names_only_destinations_of_its_organization(
    api: Any, register: Any, postgres_database: str, aws: str
) -> None:
    other = register().access_token
    theirs = api.post(
        "/api/v1/destinations",
        json_body={"name": "x", "type": "slack", "url": "http://127.0.0.1:9/x"},
        token=other,
    )
    assert theirs.status == 201, theirs.body
    admin, _, query_id = setup_org(api, register, postgres_database)
    refused = api.post(
        "/api/v1/schedules",
        json_body={
            "name": "s",
            "query_id": query_id,
            "cron": "0 * * * *",
            "parameters": {"minimum": 1},
            "alert_rules": [FAILS | {"destination_ids": [theirs.json()["id"]]}],
        },
        token=admin.access_token,
    )
    assert_error(refused, 404, "not_found")
    assert refused.json()["error"]["details"][0]["field"] == "body.alert_rules[0].destination_ids[0]"
    bad = api.post(
        "/api/v1/schedules",
        json_body={
            "name": "s",
            "query_id": query_id,
            "cron": "0 * * * *",
            "alert_rules": [FAILS | {"operator": ">", "threshold": 1}],
        },
        token=admin.access_token,
    )
    assert_error(bad, 422, "validation_error")
