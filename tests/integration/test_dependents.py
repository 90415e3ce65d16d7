"""Nothing silently orphaned: deleting a datasource, query or visualization that others use is a 409
`in_use` naming them; `?cascade=true` deletes the visualizations, schedules and queries that cannot stand
without it, takes its tiles off dashboards and its nodes (and their edges) off canvases, and is audited."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
import pytest

from loupe import db
from loupe.repositories import crud
from loupe.repositories.queries import QUERIES
from tests import factories
from tests.integration.test_canvases import edge, node
from tests.integration.test_dashboards import assert_error, tile


@dataclass
class Used:
    """A datasource with a query, a visualization of it on a dashboard, a canvas showing both and a
    schedule of the query; and a second query and visualization nothing depends on."""

    token: str
    organization_id: str
    datasource_id: str
    query_id: str
    visualization_id: str
    dashboard_id: str
    canvas_id: str
    schedule_id: str
    other_query_id: str
    other_visualization_id: str


@pytest.fixture
def used(api: Any, register: Any, clean_db: str) -> Used:
    account = register()
    token, organization_id = account.access_token, account.organization_id
    datasource_id = factories.datasource(clean_db, organization_id, name="warehouse")
    query_id = factories.query(clean_db, organization_id, datasource_id)
    other_query_id = factories.query(clean_db, organization_id, datasource_id)
    other_datasource = factories.datasource(clean_db, organization_id)
    other_query_elsewhere = factories.query(clean_db, organization_id, other_datasource)
    visualization = api.post(
        "/api/v1/visualizations",
        json_body={"name": "Revenue", "query_id": query_id, "type": "table", "options": {}},
        token=token,
    )
    assert visualization.status == 201, visualization.body
    visualization_id = visualization.json()["id"]
    other_visualization_id = factories.visualization(clean_db, organization_id, other_query_elsewhere)
    dashboard = api.post(
        "/api/v1/dashboards",
        json_body={
            "name": "Sales",
            "tiles": [
                tile(0, 0, 6, 4, visualization_id=visualization_id),
                tile(6, 0, 6, 4, visualization_id=other_visualization_id),
                tile(0, 4, 12, 2),
            ],
        },
        token=token,
    )
    assert dashboard.status == 201, dashboard.body
    canvas = api.post(
        "/api/v1/canvases",
        json_body={
            "name": "Funnel",
            "time_preset": "last_7d",
            "nodes": [
                node("q", "query", query_id),
                node("v", "visualization", visualization_id),
                node("w", "visualization", other_visualization_id),
                node("n"),
            ],
            "edges": [edge("qv", "q", "v"), edge("vn", "v", "n"), edge("wn", "w", "n")],
        },
        token=token,
    )
    assert canvas.status == 201, canvas.body
    schedule = api.post(
        "/api/v1/schedules",
        json_body={"name": "Mornings", "query_id": query_id, "cron": "0 7 * * *"},
        token=token,
    )
    assert schedule.status == 201, schedule.body
    return Used(
        token,
        organization_id,
        datasource_id,
        query_id,
        visualization_id,
        dashboard.json()["id"],
        canvas.json()["id"],
        schedule.json()["id"],
        other_query_id,
        other_visualization_id,
    )


def kinds(error: dict[str, Any]) -> list[tuple[str, str]]:
    return [(dependent["kind"], dependent["id"]) for dependent in error["dependents"]]


def exists(api: Any, token: str, path: str) -> bool:
    status: int = api.get(path, token=token).status
    assert status in (200, 404)
    return status == 200


def audit_actions(database_url: str) -> list[tuple[str, dict[str, Any]]]:
    with psycopg.connect(database_url) as conn:
        return [
            (row[0], row[1])
            for row in conn.execute(
                "SELECT action, metadata FROM audit_events WHERE action LIKE '%%deleted_with_dependents'"
                " ORDER BY created_at"
            )
        ]


def test_a_used_query_is_refused_with_what_uses_it_and_nothing_changes(api: Any, used: Used) -> None:
    error = assert_error(api.delete(f"/api/v1/queries/{used.query_id}", token=used.token), 409, "in_use")
    assert kinds(error) == [
        ("visualization", used.visualization_id),
        ("dashboard", used.dashboard_id),
        ("canvas", used.canvas_id),
        ("schedule", used.schedule_id),
    ]
    assert [dependent["name"] for dependent in error["dependents"]] == [
        "Revenue",
        "Sales",
        "Funnel",
        "Mornings",
    ]
    assert "1 visualization, 1 dashboard, 1 canvas, 1 schedule" in error["message"]
    assert "cascade=true" in error["message"]
    assert exists(api, used.token, f"/api/v1/queries/{used.query_id}")
    assert exists(api, used.token, f"/api/v1/visualizations/{used.visualization_id}")
    # What nothing uses deletes as before.
    assert api.delete(f"/api/v1/queries/{used.other_query_id}", token=used.token).status == 204


def test_cascade_deletes_a_query_with_its_visualizations_and_schedules_and_detaches_the_rest(
    api: Any, used: Used, clean_db: str
) -> None:
    deleted = api.delete(f"/api/v1/queries/{used.query_id}", token=used.token, query={"cascade": "true"})
    assert deleted.status == 204, deleted.body
    assert not exists(api, used.token, f"/api/v1/queries/{used.query_id}")
    assert not exists(api, used.token, f"/api/v1/visualizations/{used.visualization_id}")
    assert not exists(api, used.token, f"/api/v1/schedules/{used.schedule_id}")
    dashboard = api.get(f"/api/v1/dashboards/{used.dashboard_id}", token=used.token).json()
    assert [tile.get("visualization_id") for tile in dashboard["tiles"]] == [
        used.other_visualization_id,
        None,
    ]
    canvas = api.get(f"/api/v1/canvases/{used.canvas_id}", token=used.token).json()
    assert [item["id"] for item in canvas["nodes"]] == ["w", "n"]
    assert [item["id"] for item in canvas["edges"]] == ["wn"]
    [(action, metadata)] = audit_actions(clean_db)
    assert action == "query.deleted_with_dependents"
    assert {(item["kind"], item["id"]) for item in metadata["dependents"]} == {
        ("visualization", used.visualization_id),
        ("dashboard", used.dashboard_id),
        ("canvas", used.canvas_id),
        ("schedule", used.schedule_id),
    }


def test_a_used_visualization_is_refused_then_cascades_off_dashboards_and_canvases(
    api: Any, used: Used
) -> None:
    path = f"/api/v1/visualizations/{used.visualization_id}"
    dashboard_path = f"/api/v1/dashboards/{used.dashboard_id}"
    etag = api.get(dashboard_path, token=used.token).header("ETag")
    error = assert_error(api.delete(path, token=used.token), 409, "in_use")
    assert kinds(error) == [("dashboard", used.dashboard_id), ("canvas", used.canvas_id)]
    assert api.delete(path, token=used.token, query={"cascade": "true"}).status == 204
    # The dashboard lost a tile: a client holding its old version must re-read it before writing.
    assert api.get(dashboard_path, token=used.token).header("ETag") != etag
    stale = api.request(
        "PATCH", dashboard_path, json_body={"name": "e"}, headers={"If-Match": etag}, token=used.token
    )
    assert_error(stale, 412, "precondition_failed")
    assert exists(api, used.token, f"/api/v1/queries/{used.query_id}")
    canvas = api.get(f"/api/v1/canvases/{used.canvas_id}", token=used.token).json()
    assert [item["id"] for item in canvas["nodes"]] == ["q", "w", "n"]
    assert [item["id"] for item in canvas["edges"]] == ["wn"]
    dashboard = api.get(f"/api/v1/dashboards/{used.dashboard_id}", token=used.token).json()
    assert len(dashboard["tiles"]) == 2


def test_a_used_datasource_names_its_queries_and_theirs_and_cascades_through_them(
    api: Any, used: Used, register: Any, clean_db: str
) -> None:
    # Admins delete datasources; the fixture's account is its organization's admin.
    path = f"/api/v1/datasources/{used.datasource_id}"
    error = assert_error(api.delete(path, token=used.token), 409, "in_use")
    found = kinds(error)
    assert {("query", used.query_id), ("query", used.other_query_id)} <= set(found)
    assert ("visualization", used.visualization_id) in found
    assert ("schedule", used.schedule_id) in found
    assert api.delete(path, token=used.token, query={"cascade": "true"}).status == 204
    for gone in (
        f"/api/v1/queries/{used.query_id}",
        f"/api/v1/queries/{used.other_query_id}",
        f"/api/v1/visualizations/{used.visualization_id}",
        f"/api/v1/schedules/{used.schedule_id}",
    ):
        assert not exists(api, used.token, gone), gone
    assert exists(api, used.token, f"/api/v1/visualizations/{used.other_visualization_id}")
    assert [action for action, _ in audit_actions(clean_db)] == ["datasource.deleted_with_dependents"]


def test_cascade_is_validated_and_another_organization_learns_nothing(
    api: Any, used: Used, register: Any
) -> None:
    path = f"/api/v1/queries/{used.query_id}"
    refused = api.delete(path, token=used.token, query={"cascade": "maybe"})
    assert refused.status == 422
    assert refused.json()["error"]["details"][0]["field"] == "query.cascade"
    stranger = register().access_token
    assert_error(api.delete(path, token=stranger, query={"cascade": "true"}), 404, "not_found")
    # Canvases are not used by anything: their delete takes no cascade.
    unknown = api.delete(f"/api/v1/canvases/{used.canvas_id}", token=used.token, query={"cascade": "true"})
    assert unknown.status == 422
    assert exists(api, used.token, path)


def test_a_reference_being_saved_holds_off_the_delete_of_what_it_names(used: Used, clean_db: str) -> None:
    query_id = UUID(used.other_query_id)
    with db.transaction():
        assert crud.existing_ids(QUERIES, UUID(used.organization_id), {query_id}) == {query_id}
        # Until this transaction ends, a delete (which locks its row first) must wait, then see the reference.
        with psycopg.connect(clean_db) as other, pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute("SELECT id FROM queries WHERE id = %s FOR UPDATE NOWAIT", (query_id,))


def mail_to_me(api: Any, token: str) -> str:
    """A mail destination to the caller's own address."""
    me = api.get("/api/v1/auth/me", token=token).json()
    destination = api.post(
        "/api/v1/destinations", json_body={"name": "Me", "type": "email", "to": [me["email"]]}, token=token
    )
    assert destination.status == 201, destination.body
    return str(destination.json()["id"])


def subscribe(api: Any, token: str, resource_type: str, resource_id: str, destination_id: str) -> str:
    created = api.post(
        "/api/v1/subscriptions",
        json_body={
            "name": f"{resource_type} weekly",
            "resource": {"type": resource_type, "id": resource_id},
            "cron": "0 8 * * 1",
            "timezone": "UTC",
            "formats": ["csv"],
            "destination_ids": [destination_id],
        },
        token=token,
    )
    assert created.status == 201, created.body
    return str(created.json()["id"])


def test_subscriptions_delivering_a_visualization_or_query_are_its_dependents_and_go_with_it(
    api: Any, used: Used
) -> None:
    destination_id = mail_to_me(api, used.token)
    chart = subscribe(api, used.token, "visualization", used.visualization_id, destination_id)
    rows = subscribe(api, used.token, "query", used.query_id, destination_id)

    path = f"/api/v1/visualizations/{used.visualization_id}"
    error = assert_error(api.delete(path, token=used.token), 409, "in_use")
    assert ("subscription", chart) in kinds(error)
    assert api.delete(path, token=used.token, query={"cascade": "true"}).status == 204
    assert not exists(api, used.token, f"/api/v1/subscriptions/{chart}")

    query_path = f"/api/v1/queries/{used.query_id}"
    error = assert_error(api.delete(query_path, token=used.token), 409, "in_use")
    assert ("subscription", rows) in kinds(error)
    assert api.delete(query_path, token=used.token, query={"cascade": "true"}).status == 204
    assert not exists(api, used.token, f"/api/v1/subscriptions/{rows}")
    assert exists(api, used.token, f"/api/v1/destinations/{destination_id}")


def test_a_dashboards_subscriptions_go_with_it_and_a_destination_in_use_is_kept_until_unused(
    api: Any, used: Used, clean_db: str
) -> None:
    destination_id = mail_to_me(api, used.token)
    report = subscribe(api, used.token, "dashboard", used.dashboard_id, destination_id)

    path = f"/api/v1/dashboards/{used.dashboard_id}"
    error = assert_error(api.delete(path, token=used.token), 409, "in_use")
    assert kinds(error) == [("subscription", report)]
    assert "cascade=true" in error["message"]
    assert api.delete(path, token=used.token, query={"cascade": "true"}).status == 204
    assert not exists(api, used.token, f"/api/v1/subscriptions/{report}")
    [(action, metadata)] = audit_actions(clean_db)
    assert (action, metadata["dependents"][0]["id"]) == ("dashboard.deleted_with_dependents", report)

    # A destination is named by what sends to it, which changes first: no cascade takes it from under them.
    rows = subscribe(api, used.token, "query", used.query_id, destination_id)
    destination_path = f"/api/v1/destinations/{destination_id}"
    error = assert_error(api.delete(destination_path, token=used.token), 409, "in_use")
    assert kinds(error) == [("subscription", rows)]
    assert "change them first" in error["message"]
    assert api.delete(f"/api/v1/subscriptions/{rows}", token=used.token).status == 204
    assert api.delete(destination_path, token=used.token).status == 204
