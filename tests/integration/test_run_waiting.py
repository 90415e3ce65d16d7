"""Waiting for runs without polling: `GET /runs/{id}?wait=N` and `GET /runs?ids=...&wait=N` answer once a
run changes (or with a 304 when none did), hold no transaction while they wait, and stay within the
invocation's time; the batch answers many runs in the order asked, naming the ids it does not know."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from infra.local.events import LocalLambdaContext, rest_api_event
from infra.local.template_routes import load_handler
from loupe.models.runs import MAX_BATCH_IDS, MAX_WAIT_SECONDS
from tests.integration import runs_support
from tests.integration.runs_support import deliver, run_query, setup_org

aws = runs_support.aws
postgres_database = runs_support.postgres_database


def in_background(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Start `call` on a thread of its own; the list receives its result."""
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(call()), daemon=True)
    thread.start()
    return thread, outcome


def queued_run(api: Any, token: str, query_id: str) -> tuple[str, str]:
    """A new queued run of the query, and its ETag while queued."""
    run_id = run_query(api, token, query_id, parameters={"minimum": 1}).json()["id"]
    found = api.get(f"/api/v1/runs/{run_id}", token=token)
    assert found.json()["status"] == "queued"
    return run_id, found.header("ETag")


def long_transactions(database_url: str) -> list[Any]:
    """Sessions of the metadata database in a transaction for more than a moment."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT pid, state, query FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND xact_start < now() - interval '200 milliseconds'"
        ).fetchall()


def test_a_long_poll_answers_once_the_run_changes_and_holds_no_transaction_while_it_waits(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    run_id, queued_etag = queued_run(api, admin.access_token, query_id)
    started = time.monotonic()
    thread, outcome = in_background(
        lambda: api.get(
            f"/api/v1/runs/{run_id}",
            token=admin.access_token,
            query={"wait": str(MAX_WAIT_SECONDS)},
            headers={"If-None-Match": queued_etag},
        )
    )
    # While the request waits, the metadata database has no transaction open for it.
    for _ in range(5):
        time.sleep(0.2)
        assert long_transactions(clean_db) == []
    assert thread.is_alive(), "the long poll answered before the run changed"
    deliver(aws)
    thread.join(MAX_WAIT_SECONDS + 5)
    changed = outcome[0]
    assert changed.status == 200, changed.body
    assert changed.json()["status"] in ("running", "succeeded")
    assert changed.header("ETag") != queued_etag
    # It answered on the change, not at the end of its wait.
    assert time.monotonic() - started < MAX_WAIT_SECONDS


def test_a_long_poll_of_an_unchanged_run_waits_its_time_and_answers_304(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    run_id, queued_etag = queued_run(api, admin.access_token, query_id)
    path = f"/api/v1/runs/{run_id}"
    started = time.monotonic()
    unchanged = api.get(
        path, token=admin.access_token, query={"wait": "1"}, headers={"If-None-Match": queued_etag}
    )
    assert time.monotonic() - started >= 1
    assert (unchanged.status, unchanged.body, unchanged.header("ETag")) == (304, "", queued_etag)
    # Without If-None-Match the baseline is the run as it was when asked: after the wait, the same run.
    same = api.get(path, token=admin.access_token, query={"wait": "1"})
    assert (same.status, same.json()["status"], same.header("ETag")) == (200, "queued", queued_etag)
    # An ETag the run no longer has answers at once.
    stale = api.get(path, token=admin.access_token, query={"wait": "20"}, headers={"If-None-Match": '"old"'})
    assert (stale.status, stale.json()["status"]) == (200, "queued")


def test_a_finished_run_answers_at_once_whatever_the_wait(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    run_id, _ = queued_run(api, admin.access_token, query_id)
    deliver(aws)
    path = f"/api/v1/runs/{run_id}"
    started = time.monotonic()
    done = api.get(path, token=admin.access_token, query={"wait": str(MAX_WAIT_SECONDS)})
    assert (done.status, done.json()["status"]) == (200, "succeeded")
    known = api.get(
        path,
        token=admin.access_token,
        query={"wait": str(MAX_WAIT_SECONDS)},
        headers={"If-None-Match": done.header("ETag")},
    )
    assert known.status == 304
    batch = api.get(
        "/api/v1/runs",
        token=admin.access_token,
        query={"ids": [run_id], "wait": str(MAX_WAIT_SECONDS)},
    )
    assert [item["status"] for item in batch.json()["items"]] == ["succeeded"]
    assert time.monotonic() - started < MAX_WAIT_SECONDS


def test_waits_outside_the_bounds_and_unknown_runs_are_refused_at_once(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    run_id, _ = queued_run(api, admin.access_token, query_id)
    token = admin.access_token
    for wait in ("21", "-1", "soon", "1.5"):
        response = api.get(f"/api/v1/runs/{run_id}", token=token, query={"wait": wait})
        assert response.status == 422, (wait, response.body)
        assert response.json()["error"]["details"][0]["field"] == "query.wait"
    started = time.monotonic()
    unknown = api.get(f"/api/v1/runs/{uuid.uuid4()}", token=token, query={"wait": "20"})
    assert unknown.status == 404
    outsider = register().access_token
    assert api.get(f"/api/v1/runs/{run_id}", token=outsider, query={"wait": "20"}).status == 404
    assert time.monotonic() - started < MAX_WAIT_SECONDS


def test_a_long_poll_stops_waiting_before_the_function_runs_out_of_time(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    run_id, queued_etag = queued_run(api, admin.access_token, query_id)
    event = rest_api_event(
        "GET",
        f"/api/v1/runs/{run_id}",
        resource="/api/v1/runs/{run_id}",
        path_parameters={"run_id": run_id},
        headers={"Authorization": f"Bearer {admin.access_token}", "If-None-Match": queued_etag},
        query={"wait": ["20"]},
    )
    # A function with 5 seconds left may wait 2 of them, keeping 3 to answer.
    context = LocalLambdaContext("RunsFunction", timeout_seconds=5)
    result = load_handler("RunsFunction")(event, context)
    assert result["statusCode"] == 304
    assert context.get_remaining_time_in_millis() > 0


def test_many_runs_by_id_in_order_with_the_unknown_ones_named(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    token = admin.access_token
    first, _ = queued_run(api, token, query_id)
    deliver(aws)
    second, _ = queued_run(api, token, query_id)
    outsider = register()
    outsiders_admin, _, outsiders_query = setup_org(api, lambda: outsider, postgres_database)
    theirs, _ = queued_run(api, outsiders_admin.access_token, outsiders_query)
    unknown = str(uuid.uuid4())

    asked = [second, unknown, first, theirs, second]
    batch = api.get("/api/v1/runs", token=token, query={"ids": asked})
    assert batch.status == 200, batch.body
    body = batch.json()
    assert [item["id"] for item in body["items"]] == [second, first]
    assert [item["status"] for item in body["items"]] == ["queued", "succeeded"]
    assert body["missing"] == [unknown, theirs]
    assert (body["total"], body["limit"], body["offset"], body["next_offset"]) == (2, 4, 0, None)
    etag = batch.header("ETag")
    assert (
        api.get("/api/v1/runs", token=token, query={"ids": asked}, headers={"If-None-Match": etag}).status
        == 304
    )

    paged = api.get("/api/v1/runs", token=token, query={"ids": [second, first], "limit": "1", "offset": "1"})
    assert [item["id"] for item in paged.json()["items"]] == [first]
    assert paged.json()["total"] == 2

    # The batch's ETag changes when any of its runs does, and a long poll of it answers then.
    thread, outcome = in_background(
        lambda: api.get(
            "/api/v1/runs",
            token=token,
            query={"ids": asked, "wait": str(MAX_WAIT_SECONDS)},
            headers={"If-None-Match": etag},
        )
    )
    time.sleep(0.5)
    assert thread.is_alive(), "the batch answered before any run changed"
    deliver(aws)
    thread.join(MAX_WAIT_SECONDS + 5)
    changed = outcome[0]
    assert changed.status == 200, changed.body
    assert changed.json()["items"][0]["status"] in ("running", "succeeded")
    assert changed.header("ETag") != etag


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"ids": [str(uuid.uuid4()) for _ in range(MAX_BATCH_IDS + 1)]}, "query.ids"),
        ({"ids": ["not-a-uuid"]}, "query.ids.0"),
        ({"ids": [str(uuid.uuid4())], "status": "queued"}, "query.ids"),
        ({"ids": [str(uuid.uuid4())], "sort": "created_at"}, "query.ids"),
        ({"wait": "5"}, "query.wait"),
        ({"ids": [str(uuid.uuid4())], "wait": "21"}, "query.wait"),
    ],
)
def test_a_batch_asked_wrongly_is_a_422_naming_the_field(
    api: Any, register: Any, clean_db: str, query: dict[str, Any], field: str
) -> None:
    response = api.get("/api/v1/runs", token=register().access_token, query=query)
    assert response.status == 422, response.body
    details = response.json()["error"]["details"]
    assert details[0]["field"] == field, json.dumps(details)
