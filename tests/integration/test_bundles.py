"""Bundles through the API: an organization's saved objects exported by key, applied into an empty
organization (exported again, the same bundle), planned exactly (an edit is one field change, applying
twice changes nothing), pruned, refused on conflicts and on a changed base, atomically, never a secret."""

from __future__ import annotations

import copy
from typing import Any

import psycopg
import pytest
import requests

from tests import factories
from tests.integration import runs_support
from tests.integration.test_dashboards import assert_error, tile
from tests.read_only_logins import postgres_reader_url

aws = runs_support.aws
postgres_database = runs_support.postgres_database

SECRET_DISPLAY = "reader:****@db.example"
WEBHOOK = "https://93.184.215.14/loupe-hook"


def made(response: Any) -> dict[str, Any]:
    assert response.status == 201, response.body
    body: dict[str, Any] = response.json()
    return body


def build_organization(api: Any, token: str, database_url: str, organization_id: str) -> dict[str, str]:
    """A datasource, a snippet, an options query feeding a query's parameter and a dashboard filter, a
    visualization on a dashboard with a text tile, and a canvas showing both."""
    datasource = factories.datasource(database_url, organization_id, name="Warehouse")
    made(
        api.post(
            "/api/v1/snippets",
            json_body={"name": "paid", "description": "", "sql": "status = 'paid'"},
            token=token,
        )
    )
    regions = made(
        api.post(
            "/api/v1/queries",
            json_body={"name": "Regions", "datasource_id": datasource, "sql": "SELECT 'eu' AS region"},
            token=token,
        )
    )
    region_parameter = {
        "name": "region",
        "type": "text",
        "default": "eu",
        "options_query": {"query_id": regions["id"]},
    }
    revenue = made(
        api.post(
            "/api/v1/queries",
            json_body={
                "name": "Revenue",
                "datasource_id": datasource,
                "sql": "SELECT 1 AS revenue FROM orders WHERE {{> paid }} AND region = {{ region }}",
                "parameters": [region_parameter],
                "tags": ["finance"],
            },
            token=token,
        )
    )
    chart = made(
        api.post(
            "/api/v1/visualizations",
            json_body={"name": "Revenue", "query_id": revenue["id"], "type": "table", "options": {}},
            token=token,
        )
    )
    made(
        api.post(
            "/api/v1/dashboards",
            json_body={
                "name": "Sales",
                "filters": [{**region_parameter}],
                "tiles": [
                    tile(0, 0, 6, 4, visualization_id=chart["id"], param_mappings={"region": "region"}),
                    tile(6, 0, 6, 4),
                ],
            },
            token=token,
        )
    )
    made(
        api.post(
            "/api/v1/canvases",
            json_body={
                "name": "Map",
                "time_preset": "last_7d",
                "nodes": [
                    {"id": "q", "type": "query", "ref_id": revenue["id"], "position": {"x": 0, "y": 0}},
                    {"id": "v", "type": "visualization", "ref_id": chart["id"], "position": {"x": 1, "y": 0}},
                ],
                "edges": [{"id": "e", "source": "q", "target": "v"}],
            },
            token=token,
        )
    )
    schedule = made(
        api.post(
            "/api/v1/schedules",
            json_body={
                "name": "Weekdays",
                "query_id": revenue["id"],
                "cron": "0 7 * * 1-5",
                "alert_rules": [
                    {
                        "name": "Empty",
                        "source": "row_count",
                        "operator": "<",
                        "threshold": 1,
                        "webhook_url": WEBHOOK,
                    }
                ],
            },
            token=token,
        )
    )
    return {
        "datasource": datasource,
        "revenue": revenue["id"],
        "chart": chart["id"],
        "schedule": schedule["id"],
    }


def export(api: Any, token: str, **query: str) -> dict[str, Any]:
    exported = api.get("/api/v1/bundles", token=token, query=query or None)
    assert exported.status == 200, exported.body
    body: dict[str, Any] = exported.json()
    return body


def plan(api: Any, token: str, bundle: dict[str, Any], prune: bool = False) -> dict[str, Any]:
    planned = api.post("/api/v1/bundles/plan", json_body={"bundle": bundle, "prune": prune}, token=token)
    assert planned.status == 200, planned.body
    body: dict[str, Any] = planned.json()
    return body


def apply(api: Any, token: str, bundle: dict[str, Any], prune: bool = False) -> Any:
    planned = plan(api, token, bundle, prune)
    return api.post(
        "/api/v1/bundles/apply",
        json_body={"bundle": bundle, "prune": prune, "base": planned["base"]},
        token=token,
    )


def comparable(bundle: dict[str, Any]) -> dict[str, Any]:
    """A bundle less what differs between organizations: its source and the revisions' numbers."""
    kept = {kind: objects for kind, objects in bundle.items() if kind not in ("source", "schema")}
    return {
        kind: [{name: value for name, value in item.items() if name != "revision"} for item in objects]
        for kind, objects in kept.items()
    }


def test_a_bundle_moves_to_an_empty_organization_and_comes_back_the_same(
    api: Any, register: Any, clean_db: str
) -> None:
    source = register()
    build_organization(api, source.access_token, clean_db, source.organization_id)
    bundle = export(api, source.access_token)
    assert bundle["schema"] == "loupe.bundle/1"
    assert {kind: len(bundle[kind]) for kind in comparable(bundle)} == {
        "datasources": 1,
        "snippets": 1,
        "queries": 2,
        "visualizations": 1,
        "dashboards": 1,
        "canvases": 1,
        "schedules": 1,
    }
    assert bundle["schedules"][0]["alert_rules"] == [
        {"name": "Empty", "source": "row_count", "column": None, "operator": "<", "threshold": 1}
    ]
    assert "93.184.215.14" not in str(bundle)
    assert bundle["datasources"][0]["name"] == "Warehouse"
    assert set(bundle["datasources"][0]) == {"key", "name", "type"}
    assert SECRET_DISPLAY not in str(bundle)

    target = register()
    # An editor cannot create the datasource the target lacks; an admin's apply creates it unconfigured.
    editor = factories.member(api, clean_db, target.organization_id, "editor")[1]["access_token"]
    missing = plan(api, editor, bundle)
    assert {(conflict["kind"], conflict["code"]) for conflict in missing["conflicts"]} == {
        ("datasources", "missing_datasource"),
        ("queries", "missing_reference"),
    }
    planned = plan(api, target.access_token, bundle)
    assert planned["conflicts"] == []
    assert planned["unconfigured"] == [bundle["datasources"][0]["key"]]
    created = ["datasources", "snippets", "queries", "queries", "visualizations", "dashboards", "canvases"]
    created.append("schedules")
    assert [(change["action"], change["kind"]) for change in planned["changes"]] == [
        ("create", kind) for kind in created
    ]
    applied = apply(api, target.access_token, bundle)
    assert applied.status == 200, applied.body
    [datasource] = api.get("/api/v1/datasources", token=target.access_token).json()["items"]
    assert (datasource["name"], datasource["configured"], datasource["connection_string"]) == (
        "Warehouse",
        False,
        "",
    )
    assert plan(api, target.access_token, bundle)["unconfigured"] == [bundle["datasources"][0]["key"]]
    again = export(api, target.access_token)
    assert comparable(again) == comparable(bundle)
    # Applying the same bundle again changes nothing: the plan is empty.
    assert plan(api, target.access_token, again)["changes"] == []
    assert plan(api, target.access_token, bundle)["changes"] == []

    # An edit is exactly one field change, and applies.
    edited = copy.deepcopy(again)
    edited["queries"][[q["name"] for q in edited["queries"]].index("Revenue")]["tags"] = ["finance", "weekly"]
    [change] = plan(api, target.access_token, edited)["changes"]
    assert (change["action"], change["kind"], change["changes"]) == (
        "update",
        "queries",
        [{"path": "/tags", "before": ["finance"], "after": ["finance", "weekly"]}],
    )
    assert apply(api, target.access_token, edited).status == 200
    assert plan(api, target.access_token, edited)["changes"] == []
    with psycopg.connect(clean_db) as conn:
        actions = [
            row[0]
            for row in conn.execute(
                "SELECT action FROM audit_events WHERE organization_id = %s AND action = 'bundle.applied'",
                (target.organization_id,),
            )
        ]
    assert len(actions) == 2


def test_prune_deletes_what_the_bundle_does_not_hold_and_conflicts_refuse_the_apply(
    api: Any, register: Any, clean_db: str
) -> None:
    account = register()
    token = account.access_token
    ids = build_organization(api, token, clean_db, account.organization_id)
    bundle = export(api, token)
    without_canvas = {**bundle, "canvases": []}
    pruned = plan(api, token, without_canvas, prune=True)
    assert [(change["action"], change["kind"]) for change in pruned["changes"]] == [("delete", "canvases")]
    # Without prune, nothing goes.
    assert plan(api, token, without_canvas)["changes"] == []
    assert apply(api, token, without_canvas, prune=True).status == 200
    assert api.get("/api/v1/canvases", token=token).json()["total"] == 0

    # The query changed here since the export: its edit is a conflict, and apply refuses the plan.
    stale = export(api, token)
    path = f"/api/v1/queries/{ids['revenue']}"
    etag = api.get(path, token=token).header("ETag")
    changed = api.request(
        "PATCH", path, json_body={"name": "Revenue!"}, token=token, headers={"If-Match": etag}
    )
    assert changed.status == 200, changed.body
    revenue = [item["key"] for item in stale["queries"]].index(ids["revenue"])
    stale["queries"][revenue]["description"] = "from the stale bundle"
    conflicts = plan(api, token, stale)["conflicts"]
    assert [(c["code"], c["key"]) for c in conflicts] == [("changed_since_export", ids["revenue"])]
    assert_error(apply(api, token, stale), 409, "conflict")
    # A reference to nothing is a conflict; a bundle object that is invalid is one too.
    broken = copy.deepcopy(stale)
    broken["visualizations"][0]["query"] = "no-such-query"
    broken["dashboards"][0]["tiles"][0]["w"] = 99
    codes = {(c["kind"], c["code"]) for c in plan(api, token, broken)["conflicts"]}
    assert {("visualizations", "missing_reference"), ("dashboards", "invalid")} <= codes


def test_apply_refuses_a_changed_base_and_is_all_or_nothing(api: Any, register: Any, clean_db: str) -> None:
    account = register()
    token = account.access_token
    build_organization(api, token, clean_db, account.organization_id)
    bundle = export(api, token)
    edited = copy.deepcopy(bundle)
    edited["queries"][0]["description"] = "changed"
    planned = plan(api, token, edited)
    made(api.post("/api/v1/dashboards", json_body={"name": "meanwhile"}, token=token))
    late = api.post(
        "/api/v1/bundles/apply", json_body={"bundle": edited, "base": planned["base"]}, token=token
    )
    assert_error(late, 409, "conflict")
    # A write a service refuses (SQL naming a parameter it does not declare) rolls back the whole apply.
    edited["snippets"][0]["sql"] = "status = 'refunded'"
    edited["queries"][1]["sql"] = "SELECT {{ undeclared }}"
    refused = apply(api, token, edited)
    assert_error(refused, 422, "validation_error")
    assert refused.json()["error"]["details"][0]["field"].startswith("body.bundle.queries.1.")
    snippet = api.get("/api/v1/snippets", token=token).json()["items"][0]
    assert snippet["sql"] == "status = 'paid'"
    viewer = factories.member(api, clean_db, account.organization_id, "viewer")[1]["access_token"]
    assert export(api, viewer)["dashboards"]
    assert_error(
        api.post("/api/v1/bundles/plan", json_body={"bundle": bundle}, token=viewer), 403, "forbidden"
    )
    only = export(api, token, include="queries,dashboards")
    assert set(only) == {"schema", "source", "queries", "dashboards"}


@pytest.mark.parametrize(
    "objects",
    [
        {"queries": [{"key": "q", "datasource": "d", "parameters": 5, "name": "q", "sql": "SELECT 1"}]},
        {"queries": [{"key": "q", "datasource": "d", "parameters": ["x", {"options_query": "y"}]}]},
        {"dashboards": [{"key": "d", "name": "d", "tiles": "all", "filters": [{"options_query": {}}]}]},
        {"canvases": [{"key": "c", "name": "c", "nodes": [{"type": "note", "ref": "x"}, 3]}]},
        {"visualizations": [{"key": "v", "query": ["not", "a", "key"]}]},
    ],
)
def test_malformed_objects_are_conflicts_never_errors(
    api: Any, register: Any, objects: dict[str, Any]
) -> None:
    token = register().access_token
    planned = plan(api, token, {"schema": "loupe.bundle/1", **objects})
    assert planned["conflicts"]
    assert planned["changes"] == []
    for unkeyed in ([{"name": "no key"}], [{"key": "not a key!"}], [{"key": "x" * 101}]):
        refused = api.post("/api/v1/bundles/plan", json_body={"bundle": {"queries": unkeyed}}, token=token)
        assert_error(refused, 422, "validation_error")


def test_a_datasource_created_unconfigured_fails_its_runs_clearly_until_an_admin_sets_it(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    source = runs_support.setup_org(api, register, postgres_database)[0]
    bundle = export(api, source.access_token, include="datasources,queries")
    target = register()
    assert apply(api, target.access_token, bundle).status == 200
    [query] = api.get("/api/v1/queries", token=target.access_token).json()["items"]
    started = runs_support.run_query(api, target.access_token, query["id"], parameters={"minimum": 1})
    assert started.status == 202, started.body
    runs_support.deliver(aws)
    failed = runs_support.run_row(clean_db, started.json()["id"])
    assert (failed["status"], failed["error"]["code"], failed["attempts"]) == (
        "failed",
        "datasource_unconfigured",
        1,
    )
    datasource = api.get(f"/api/v1/datasources/{query['datasource_id']}", token=target.access_token)
    configured = api.request(
        "PATCH",
        f"/api/v1/datasources/{query['datasource_id']}",
        json_body={"connection_string": postgres_reader_url(postgres_database)},
        token=target.access_token,
        headers={"If-Match": datasource.header("ETag")},
    )
    assert configured.status == 200, configured.body
    assert configured.json()["configured"] is True
    again = runs_support.run_query(api, target.access_token, query["id"], parameters={"minimum": 1})
    runs_support.deliver(aws)
    assert runs_support.run_row(clean_db, again.json()["id"])["status"] == "succeeded"
    assert plan(api, target.access_token, bundle)["unconfigured"] == []


def test_applying_a_bundle_keeps_the_webhooks_it_does_not_carry(
    api: Any, register: Any, clean_db: str
) -> None:
    account = register()
    token = account.access_token
    ids = build_organization(api, token, clean_db, account.organization_id)
    bundle = export(api, token, include="schedules")
    bundle["schedules"][0]["cron"] = "0 8 * * 1-5"
    bundle["schedules"][0]["alert_rules"][0]["threshold"] = 2
    [change] = plan(api, token, bundle)["changes"]
    assert [field["path"] for field in change["changes"]] == ["/alert_rules/0/threshold", "/cron"]
    assert apply(api, token, bundle).status == 200
    schedule = api.get(f"/api/v1/schedules/{ids['schedule']}", token=token).json()
    assert schedule["cron"] == "0 8 * * 1-5"
    assert (schedule["alert_rules"][0]["threshold"], schedule["alert_rules"][0]["webhook"]) == (
        2,
        "https://93.184.215.14",
    )
    with psycopg.connect(clean_db) as conn:
        stored = conn.execute(
            "SELECT alert_rules FROM schedules WHERE id = %s", (ids["schedule"],)
        ).fetchone()
    assert stored is not None
    assert stored[0][0]["webhook_url"] == WEBHOOK


def test_bundles_too_large_for_a_request_or_response_pass_by_signed_urls(
    api: Any, register: Any, clean_db: str, aws: str
) -> None:
    source = register()
    build_organization(api, source.access_token, clean_db, source.organization_id)
    located = api.get("/api/v1/bundles/download", token=source.access_token)
    assert located.status == 200, located.body
    fetched = requests.get(located.json()["url"], timeout=10)
    assert fetched.status_code == 200
    assert fetched.json() == export(api, source.access_token) | {"source": fetched.json()["source"]}

    target = register()
    upload = api.post("/api/v1/bundles/uploads", token=target.access_token)
    assert upload.status == 201, upload.body
    sent = requests.put(
        upload.json()["url"], data=fetched.content, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert sent.status_code == 200, sent.text
    by_id = {"upload_id": upload.json()["upload_id"]}
    planned = api.post("/api/v1/bundles/plan", json_body=by_id, token=target.access_token)
    assert planned.status == 200, planned.body
    assert len(planned.json()["changes"]) == 8
    applied = api.post(
        "/api/v1/bundles/apply",
        json_body={**by_id, "base": planned.json()["base"]},
        token=target.access_token,
    )
    assert applied.status == 200, applied.body
    assert comparable(export(api, target.access_token)) == comparable(fetched.json())
    # Another organization's upload, or none, is not found; a bundle and an upload at once is refused.
    stranger = register().access_token
    assert_error(api.post("/api/v1/bundles/plan", json_body=by_id, token=stranger), 404, "not_found")
    both = {"bundle": fetched.json(), **by_id}
    assert_error(api.post("/api/v1/bundles/plan", json_body=both, token=stranger), 422, "validation_error")


def test_a_field_a_bundle_object_leaves_out_takes_its_default_as_planned(
    api: Any, register: Any, clean_db: str
) -> None:
    account = register()
    token = account.access_token
    ids = build_organization(api, token, clean_db, account.organization_id)
    bundle = export(api, token, include="queries")
    revenue = next(item for item in bundle["queries"] if item["key"] == ids["revenue"])
    del revenue["tags"]
    [change] = plan(api, token, bundle)["changes"]
    assert change["changes"] == [{"path": "/tags", "before": ["finance"], "after": []}]
    assert apply(api, token, bundle).status == 200
    assert api.get(f"/api/v1/queries/{ids['revenue']}", token=token).json()["tags"] == []
    assert plan(api, token, bundle)["changes"] == []


def test_prune_foresees_what_it_would_break_and_deletes_what_goes_together(
    api: Any, register: Any, clean_db: str
) -> None:
    account = register()
    token = account.access_token
    build_organization(api, token, clean_db, account.organization_id)
    # Emptied of its queries, a bundle holding queries only would break the visualizations, dashboards,
    # canvases and schedules it does not hold: each is named, and the apply is refused.
    without_queries = {**export(api, token, include="queries"), "queries": []}
    conflicts = plan(api, token, without_queries, prune=True)["conflicts"]
    assert {(c["kind"], c["code"]) for c in conflicts} == {("queries", "in_use")}
    assert_error(apply(api, token, without_queries, prune=True), 409, "conflict")
    # Everything pruned together goes, whatever feeds what (a query feeding another's options too).
    everything = export(api, token)
    emptied = {
        kind: ([] if kind not in ("schema", "source", "datasources") else value)
        for kind, value in everything.items()
    }
    applied = apply(api, token, emptied, prune=True)
    assert applied.status == 200, applied.body
    for collection in ("queries", "visualizations", "dashboards", "canvases", "schedules", "snippets"):
        assert api.get(f"/api/v1/{collection}", token=token).json()["total"] == 0, collection
