"""Runs end to end through real API Gateway events and real SQS events (SQS, S3 and KMS in moto): a
saved query queued, executed by the runner against a real PostgreSQL, its rows paged back; values
bound, never formatted in; duplicate deliveries; guard refusals; the cache; the per-user limit;
transient failures back to the queue; tenancy."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import boto3
import psycopg
import pytest

from infra.local.events import LocalLambdaContext, sqs_event
from infra.local.template_routes import load_handler
from loupe.config import get_settings
from loupe.repositories import runs as runs_repository
from tests import factories
from tests.integration import runs_support
from tests.integration.runs_support import (
    BUCKET,
    WIDGETS_SQL,
    deliver,
    queue_arn,
    receive,
    run_query,
    run_row,
    run_runner,
    setup_org,
)

# pytest finds fixtures by the module's names: these make the shared ones this module's.
aws = runs_support.aws
postgres_database = runs_support.postgres_database


def test_a_saved_query_is_queued_executed_and_paged(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, datasource_id, query_id = setup_org(api, register, postgres_database)
    response = run_query(api, admin.access_token, query_id, parameters={"minimum": 2})
    assert response.status == 202, response.body
    run = response.json()
    assert run["status"] == "queued"
    assert run["query_id"] == query_id
    assert run["datasource_id"] == datasource_id
    assert run["created_by"] == admin.user_id
    assert response.header("Location") == f"/api/v1/runs/{run['id']}"

    messages, result = deliver(aws)
    assert result == {"batchItemFailures": []}
    assert json.loads(messages[0]["Body"]) == {
        "run_id": run["id"],
        "correlation_id": response.header("X-Request-Id"),
    }

    found = api.get(f"/api/v1/runs/{run['id']}", token=admin.access_token)
    assert found.status == 200, found.body
    body = found.json()
    assert (body["status"], body["row_count"], body["truncated"], body["error"]) == (
        "succeeded",
        4,
        False,
        None,
    )
    assert body["duration_ms"] >= 0
    assert body["byte_size"] > 0
    assert (
        api.get(
            f"/api/v1/runs/{run['id']}",
            token=admin.access_token,
            headers={"If-None-Match": found.header("ETag")},
        ).status
        == 304
    )

    page = api.get(
        f"/api/v1/runs/{run['id']}/results", token=admin.access_token, query={"offset": "1", "limit": "2"}
    )
    assert page.status == 200, page.body
    assert page.json() == {
        "columns": [{"name": "id", "type": "int4"}, {"name": "label", "type": "text"}],
        "rows": [[3, "widget 3"], [4, "widget 4"]],
        "total_rows": 4,
        "offset": 1,
        "limit": 2,
        "next_offset": 3,
        "truncated_by": "rows",
    }
    too_many = api.get(
        f"/api/v1/runs/{run['id']}/results", token=admin.access_token, query={"limit": "10001"}
    )
    assert too_many.status == 422

    listed = api.get(f"/api/v1/queries/{query_id}/runs", token=admin.access_token)
    assert [item["id"] for item in listed.json()["items"]] == [run["id"]]
    by_status = api.get("/api/v1/runs", token=admin.access_token, query={"status": "failed"})
    assert by_status.json()["total"] == 0


def test_values_are_bound_not_formatted_and_checked_against_declared_types(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, datasource_id, query_id = setup_org(api, register, postgres_database)
    wrong_type = run_query(api, admin.access_token, query_id, parameters={"minimum": "2 OR 1=1"})
    assert wrong_type.status == 422
    assert wrong_type.json()["error"]["details"] == [
        {"field": "body.parameters.minimum", "issue": "must be a finite number"}
    ]
    missing = run_query(api, admin.access_token, query_id)
    assert missing.status == 422

    injected = api.post(
        "/api/v1/runs",
        json_body={
            "datasource_id": datasource_id,
            "sql": "SELECT id FROM widgets WHERE label = {{ label }}",
            "parameters": {"label": "x' OR '1'='1"},
        },
        token=admin.access_token,
    )
    assert injected.status == 202, injected.body
    deliver(aws)
    run = api.get(f"/api/v1/runs/{injected.json()['id']}", token=admin.access_token).json()
    assert (run["status"], run["row_count"]) == ("succeeded", 0)


def test_a_duplicate_delivery_runs_the_query_once(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    run_id = run_query(api, admin.access_token, query_id, parameters={"minimum": 1}).json()["id"]
    first = receive(aws)
    again = receive(aws)  # the same message, delivered twice
    assert [message["MessageId"] for message in again] == [message["MessageId"] for message in first]

    assert run_runner(first, aws) == {"batchItemFailures": []}
    assert run_runner(again, aws) == {"batchItemFailures": []}
    row = run_row(clean_db, run_id)
    assert (row["status"], row["attempts"], row["row_count"]) == ("succeeded", 1, 5)
    # One result stored (the runner also notes its claim, under control/).
    keys = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="org/")["Contents"]
    assert sorted(item["Key"].rsplit("/", 1)[1] for item in keys) == [
        "chunk-000000.jsonl.gz",
        "manifest.json",
    ]


def test_a_message_that_comes_before_its_run_commits_is_handed_back_not_dropped(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API sends a run's message before its transaction commits. Here that transaction commits while
    the runner is between its first and second look at the run: the message must come back (or the run
    start), never be deleted with the run left queued."""
    admin, _, query_id = setup_org(api, register, postgres_database)
    run_id = run_query(api, admin.access_token, query_id, parameters={"minimum": 1}).json()["id"]
    messages = receive(aws)
    with psycopg.connect(clean_db) as creator:
        creator.execute("CREATE TEMPORARY TABLE held AS SELECT * FROM runs WHERE id = %s", (run_id,))
        assert creator.execute("DELETE FROM runs WHERE id = %s", (run_id,)).rowcount == 1
        creator.commit()
        # The creating request's transaction, not committed yet.
        creator.execute("INSERT INTO runs SELECT * FROM held")
        assert run_runner(messages, aws) == {
            "batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]
        }

        committed: list[str] = []

        def commit_after(look: Any) -> Any:
            def looked(*args: Any) -> Any:
                answer = look(*args)
                if not committed:
                    creator.commit()
                    committed.append(look.__name__)
                return answer

            return looked

        monkeypatch.setattr(runs_repository, "exists", commit_after(runs_repository.exists))
        monkeypatch.setattr(runs_repository, "claim", commit_after(runs_repository.claim))
        outcome = run_runner(messages, aws)
    assert committed, "the runner did not look at the run"
    handed_back = outcome["batchItemFailures"] == [{"itemIdentifier": messages[0]["MessageId"]}]
    assert handed_back or run_row(clean_db, run_id)["status"] != "queued"
    monkeypatch.undo()
    if handed_back:
        assert run_runner(messages, aws) == {"batchItemFailures": []}
    assert run_row(clean_db, run_id)["status"] == "succeeded"


def test_sql_the_guard_refuses_ends_failed_without_being_queued(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, datasource_id, _ = setup_org(api, register, postgres_database)
    response = api.post(
        "/api/v1/runs",
        json_body={"datasource_id": datasource_id, "sql": "DELETE FROM widgets"},
        token=admin.access_token,
    )
    assert response.status == 202, response.body
    run = response.json()
    assert run["status"] == "failed"
    assert run["error"]["code"] == "sql_not_allowed"
    assert receive(aws) == []
    results = api.get(f"/api/v1/runs/{run['id']}/results", token=admin.access_token)
    assert results.status == 409


def test_max_age_returns_a_young_enough_succeeded_run(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    first = run_query(api, admin.access_token, query_id, parameters={"minimum": 3}).json()
    deliver(aws)

    cached = run_query(api, admin.access_token, query_id, parameters={"minimum": 3}, max_age_seconds=300)
    assert cached.status == 200, cached.body
    assert (cached.json()["id"], cached.json()["status"]) == (first["id"], "succeeded")
    other_values = run_query(
        api, admin.access_token, query_id, parameters={"minimum": 4}, max_age_seconds=300
    )
    assert other_values.status == 202
    without = run_query(api, admin.access_token, query_id, parameters={"minimum": 3})
    assert without.status == 202
    assert without.json()["id"] != first["id"]


def test_active_runs_per_user_are_limited(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOUPE_MAX_ACTIVE_RUNS_PER_USER", "2")
    get_settings.cache_clear()
    admin, _, query_id = setup_org(api, register, postgres_database)
    statuses = [
        run_query(api, admin.access_token, query_id, parameters={"minimum": n}).status for n in (1, 2)
    ]
    assert statuses == [202, 202]
    refused = run_query(api, admin.access_token, query_id, parameters={"minimum": 3})
    assert refused.status == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.header("Retry-After") == "5"

    deliver(aws)  # both finish: the user may run again
    assert run_query(api, admin.access_token, query_id, parameters={"minimum": 3}).status == 202


def test_active_runs_per_api_key_are_limited_as_per_user(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each key has the limit a user has; a second key, and the key's creator, have their own."""
    monkeypatch.setenv("LOUPE_MAX_ACTIVE_RUNS_PER_USER", "2")
    get_settings.cache_clear()
    admin, _, query_id = setup_org(api, register, postgres_database)
    keys = [
        api.post("/api/v1/api-keys", json_body={"name": name, "role": "editor"}, token=admin.access_token)
        for name in ("first", "second")
    ]
    first, second = ({"X-API-Key": key.json()["key"]} for key in keys)

    def by_key(headers: dict[str, str], minimum: int) -> Any:
        return api.post(
            f"/api/v1/queries/{query_id}/runs",
            json_body={"parameters": {"minimum": minimum}},
            headers=headers,
        )

    assert [by_key(first, n).status for n in (1, 2)] == [202, 202]
    refused = by_key(first, 3)
    assert refused.status == 429, refused.body
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.header("Retry-After") == "5"
    assert by_key(second, 3).status == 202
    assert run_query(api, admin.access_token, query_id, parameters={"minimum": 3}).status == 202
    with psycopg.connect(clean_db) as conn:
        counted = conn.execute("SELECT api_key_id::text, count(*) FROM runs GROUP BY api_key_id").fetchall()
    assert dict(counted) == {keys[0].json()["id"]: 2, keys[1].json()["id"]: 1, None: 1}

    deliver(aws)  # they finish: the key may run again
    assert by_key(first, 3).status == 202


def test_an_unreachable_datasource_goes_back_to_the_queue(
    api: Any, register: Any, clean_db: str, aws: str
) -> None:
    admin = register()
    datasource = api.post(
        "/api/v1/datasources",
        json_body={
            "name": "gone",
            "type": "postgres",
            "connection_string": f"postgresql://postgres:pw@127.0.0.1:5432/no_such_db_{secrets.token_hex(4)}",
        },
        token=admin.access_token,
    )
    assert datasource.status == 201, datasource.body
    response = api.post(
        "/api/v1/runs",
        json_body={"datasource_id": datasource.json()["id"], "sql": "SELECT 1"},
        token=admin.access_token,
    )
    run_id = response.json()["id"]
    messages, result = deliver(aws)
    assert result == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    row = run_row(clean_db, run_id)
    assert (row["status"], row["attempts"], row["lease_expires_at"]) == ("queued", 1, None)
    # Back after the first backoff (2 s), not after the queue's visibility timeout.
    assert receive(aws) == []
    time.sleep(2.5)
    again = receive(aws)
    assert [message["MessageId"] for message in again] == [messages[0]["MessageId"]]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"


def test_another_organizations_runs_do_not_exist(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, datasource_id, query_id = setup_org(api, register, postgres_database)
    run_id = run_query(api, admin.access_token, query_id, parameters={"minimum": 1}).json()["id"]
    deliver(aws)
    outsider = register().access_token
    for path in (
        f"/api/v1/runs/{run_id}",
        f"/api/v1/runs/{run_id}/results",
        f"/api/v1/queries/{query_id}/runs",
    ):
        assert api.get(path, token=outsider).status == 404, path
    assert run_query(api, outsider, query_id, parameters={"minimum": 1}).status == 404
    adhoc = api.post(
        "/api/v1/runs", json_body={"datasource_id": datasource_id, "sql": "SELECT 1"}, token=outsider
    )
    assert adhoc.status == 404
    assert api.get("/api/v1/runs", token=outsider).json()["total"] == 0


def test_viewers_run_saved_queries_but_not_sql(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, datasource_id, query_id = setup_org(api, register, postgres_database)
    viewer = factories.member(api, clean_db, admin.organization_id, "viewer")[1]["access_token"]
    assert run_query(api, viewer, query_id, parameters={"minimum": 1}).status == 202
    adhoc = api.post(
        "/api/v1/runs", json_body={"datasource_id": datasource_id, "sql": "SELECT 1"}, token=viewer
    )
    assert adhoc.status == 403


def test_the_statement_timeout_fits_in_the_time_the_function_has_left(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, datasource_id, _ = setup_org(api, register, postgres_database)
    slow = "SELECT count(*) FROM generate_series(1, 500000000)"
    run_id = api.post(
        "/api/v1/runs", json_body={"datasource_id": datasource_id, "sql": slow}, token=admin.access_token
    ).json()["id"]
    messages = receive(aws)
    # Too little time to run anything after keeping 20 s for the result: back to the queue, untouched.
    assert run_runner(messages, aws, seconds_left=15) == {
        "batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]
    }
    assert run_row(clean_db, run_id)["status"] == "queued"
    time.sleep(2.5)  # the message's first backoff
    # 22 s left: the statement may take 1 s of them (the datasource itself allows 30).
    assert run_runner(receive(aws), aws, seconds_left=22) == {"batchItemFailures": []}
    row = run_row(clean_db, run_id)
    assert (row["status"], row["attempts"]) == ("timed_out", 2)
    assert row["error"]["code"] == "statement_timeout"


def test_dead_lettered_runs_end_failed_and_finished_ones_stay(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, datasource_id, query_id = setup_org(api, register, postgres_database)
    finished_id = run_query(api, admin.access_token, query_id, parameters={"minimum": 1}).json()["id"]
    deliver(aws)
    assert run_row(clean_db, finished_id)["status"] == "succeeded"
    stuck_id = api.post(
        "/api/v1/runs",
        json_body={"datasource_id": datasource_id, "sql": "SELECT 1"},
        token=admin.access_token,
    ).json()["id"]
    # What the dead-letter queue hands over: the run's message after its last failed delivery, with a
    # late message of the finished run and one that names no run.
    sqs = boto3.client("sqs")
    for body in (json.dumps({"run_id": finished_id}), "not json"):
        sqs.send_message(QueueUrl=aws, MessageBody=body)
    messages = receive(aws)
    bodies = [message["Body"] for message in messages]
    assert "not json" in bodies
    assert any(stuck_id in body for body in bodies)

    result = load_handler("DeadLetterFunction")(
        sqs_event(messages, queue_arn(aws)), LocalLambdaContext("DeadLetterFunction", timeout_seconds=60)
    )

    assert result == {"batchItemFailures": []}
    stuck = run_row(clean_db, stuck_id)
    assert stuck["status"] == "failed"
    assert stuck["error"]["code"] == "delivery_failed"
    assert run_row(clean_db, finished_id)["status"] == "succeeded"


def test_a_dashboard_refresh_runs_each_query_of_its_tiles_once(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, datasource_id, _ = setup_org(api, register, postgres_database)
    token = admin.access_token

    def query(name: str, parameter: dict[str, Any]) -> str:
        made = api.post(
            "/api/v1/queries",
            json_body={
                "name": name,
                "datasource_id": datasource_id,
                "sql": WIDGETS_SQL,
                "parameters": [parameter],
            },
            token=token,
        )
        assert made.status == 201, made.body
        return str(made.json()["id"])

    def visualization(query_id: str) -> str:
        made = api.post(
            "/api/v1/visualizations",
            json_body={"name": "table", "query_id": query_id, "type": "table", "options": {}},
            token=token,
        )
        assert made.status == 201, made.body
        return str(made.json()["id"])

    with_default = query("with a default", {"name": "minimum", "type": "number", "default": 2})
    without_default = query("needs a value", {"name": "minimum", "type": "number", "required": True})
    tiles = [
        {"visualization_id": visualization(with_default), "x": 0, "y": 0, "w": 6, "h": 4},
        {"visualization_id": visualization(with_default), "x": 6, "y": 0, "w": 6, "h": 4},
        {"visualization_id": visualization(without_default), "x": 0, "y": 4, "w": 6, "h": 4},
        {"text": "notes", "x": 6, "y": 4, "w": 6, "h": 4},
    ]
    dashboard = api.post("/api/v1/dashboards", json_body={"name": "board", "tiles": tiles}, token=token)
    assert dashboard.status == 201, dashboard.body
    refresh_path = f"/api/v1/dashboards/{dashboard.json()['id']}/refresh"
    viewer = factories.member(api, clean_db, admin.organization_id, "viewer")[1]["access_token"]

    refreshed = api.post(refresh_path, token=viewer)
    assert refreshed.status == 202, refreshed.body
    body = refreshed.json()
    assert [(run["query_id"], run["status"]) for run in body["runs"]] == [(with_default, "queued")]
    assert [(run["origin"], run["parameters"], run["query_revision"]) for run in body["runs"]] == [
        ("refresh", {"minimum": 2}, 1)
    ]
    assert [item["query_id"] for item in body["skipped"]] == [without_default]
    assert "minimum" in body["skipped"][0]["reason"]
    deliver(aws)
    first_run = body["runs"][0]["id"]
    page = api.get(f"/api/v1/runs/{first_run}/results", token=viewer).json()
    assert page["rows"] == [[2, "widget 2"], [3, "widget 3"], [4, "widget 4"], [5, "widget 5"]]

    cached = api.post(f"{refresh_path}?max_age_seconds=600", token=viewer).json()
    assert [run["id"] for run in cached["runs"]] == [first_run]
    fresh = api.post(refresh_path, token=viewer).json()
    assert [run["id"] for run in fresh["runs"]] != [first_run]
    assert api.post(f"{refresh_path}?max_age_seconds=0", token=viewer).status == 422


def test_the_run_lifecycle_is_logged_under_the_requests_correlation_id(
    api: Any,
    register: Any,
    clean_db: str,
    aws: str,
    postgres_database: str,
    read_logs: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOUPE_SLOW_RUN_SECONDS", "0.000001")
    get_settings.cache_clear()
    admin, _, query_id = setup_org(api, register, postgres_database)
    secret_value = 4242
    created = api.post(
        f"/api/v1/queries/{query_id}/runs",
        json_body={"parameters": {"minimum": secret_value}},
        token=admin.access_token,
    )
    assert created.status == 202, created.body
    deliver(aws)

    lines = read_logs()
    by_message = {line["message"]: line for line in lines if line.get("run_id") == created.json()["id"]}
    assert {"run started", "run finished", "slow query"} <= set(by_message)
    request_correlation = next(
        line["correlation_id"]
        for line in lines
        if line.get("message") == "request" and line.get("status") == 202
    )
    for message in ("run started", "run finished", "slow query"):
        assert by_message[message]["correlation_id"] == request_correlation
        assert by_message[message]["query_id"] == query_id
    assert by_message["run finished"]["status"] == "succeeded"
    assert by_message["slow query"]["duration_ms"] >= 0
    assert not any(str(secret_value) in json.dumps(line) for line in lines if line.get("run_id"))


def test_a_date_used_twice_runs_and_the_run_records_the_query_revision(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    path = f"/api/v1/queries/{query_id}"
    assert api.get(path, token=admin.access_token).json()["revision"] == 1
    changed = api.request(
        "PATCH",
        path,
        json_body={
            "sql": "SELECT {{ day }} AS day, id FROM widgets WHERE {{ day }} >= DATE '2026-01-01'"
            " AND id >= {{ minimum }} ORDER BY id",
            "parameters": [
                {"name": "day", "type": "date", "required": True},
                {"name": "minimum", "type": "number", "required": True},
            ],
        },
        token=admin.access_token,
        headers={"If-Match": api.get(path, token=admin.access_token).header("ETag")},
    )
    assert changed.status == 200, changed.body
    assert changed.json()["revision"] == 2
    renamed = api.request(
        "PATCH",
        path,
        json_body={"name": "renamed"},
        token=admin.access_token,
        headers={"If-Match": changed.header("ETag")},
    )
    # Every change is a revision (issue 17): a rename too.
    assert renamed.json()["revision"] == 3

    run_id = run_query(
        api, admin.access_token, query_id, parameters={"day": "2026-03-01", "minimum": 3}
    ).json()["id"]
    deliver(aws)
    run = api.get(f"/api/v1/runs/{run_id}", token=admin.access_token).json()
    assert (run["status"], run["error"], run["row_count"]) == ("succeeded", None, 3)
    assert (run["parameters"], run["query_revision"], run["origin"], run["schedule_id"]) == (
        {"day": "2026-03-01", "minimum": 3},
        3,
        "interactive",
        None,
    )
    assert run["principal"] == {"kind": "user", "id": admin.user_id}
    read = api.get(path, token=admin.access_token)
    assert read.json()["latest_run"] == {"id": run_id, "finished_at": run["finished_at"], "row_count": 3}
    assert read.header("ETag") != renamed.header("ETag")
    assert renamed.json()["latest_run"] is None
    stale = {"If-Match": renamed.header("ETag")}
    assert (
        api.request("PATCH", path, json_body={"name": "x"}, token=admin.access_token, headers=stale).status
        == 412
    )
    fresh = {"If-Match": read.header("ETag")}
    assert (
        api.request("PATCH", path, json_body={"name": "x"}, token=admin.access_token, headers=fresh).status
        == 200
    )
    page = api.get(f"/api/v1/runs/{run_id}/results", token=admin.access_token).json()
    assert page["rows"] == [["2026-03-01", 3], ["2026-03-01", 4], ["2026-03-01", 5]]
    with psycopg.connect(clean_db) as conn:
        recorded = conn.execute(
            "SELECT query_revision, origin, parameter_types FROM runs WHERE id = %s", (run_id,)
        ).fetchone()
    assert recorded == (3, "interactive", {"day": "date", "minimum": "number"})


def test_viewers_neither_see_nor_search_an_editors_adhoc_sql(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, datasource_id, query_id = setup_org(api, register, postgres_database)
    viewer = factories.member(api, clean_db, admin.organization_id, "viewer")[1]["access_token"]
    adhoc = api.post(
        "/api/v1/runs",
        json_body={"datasource_id": datasource_id, "sql": "SELECT 'secret_marker' AS label"},
        token=admin.access_token,
    ).json()
    saved = run_query(api, viewer, query_id, parameters={"minimum": 1}).json()
    assert adhoc["sql"] == "SELECT 'secret_marker' AS label"
    assert saved["sql"] == WIDGETS_SQL

    as_viewer = api.get(f"/api/v1/runs/{adhoc['id']}", token=viewer).json()
    assert (as_viewer["id"], as_viewer["sql"]) == (adhoc["id"], None)
    assert api.get(f"/api/v1/runs/{saved['id']}", token=viewer).json()["sql"] == WIDGETS_SQL
    listed = api.get("/api/v1/runs", token=viewer).json()["items"]
    assert {run["id"]: run["sql"] for run in listed} == {adhoc["id"]: None, saved["id"]: WIDGETS_SQL}

    assert api.get("/api/v1/runs", token=viewer, query={"q": "secret_marker"}).json()["total"] == 0
    assert api.get("/api/v1/runs", token=viewer, query={"q": "widgets"}).json()["total"] == 1
    found = api.get("/api/v1/runs", token=admin.access_token, query={"q": "secret_marker"}).json()
    assert [(run["id"], run["sql"]) for run in found["items"]] == [(adhoc["id"], adhoc["sql"])]
