"""Canvases through real API Gateway events and a real PostgreSQL: the graph rules, references of the
organization, the time window, tenancy and ETags."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests import factories

CANVASES = "/api/v1/canvases"
RANGE = {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}


def set_role(database_url: str, user_id: str, role: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE memberships SET role = %s WHERE user_id = %s", (role, user_id))


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, response.body
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    return error


def node(node_id: str, node_type: str = "note", ref_id: str | None = None, **extra: Any) -> dict[str, Any]:
    made = {"id": node_id, "type": node_type, "position": {"x": 10, "y": -5.5}, **extra}
    if ref_id is not None:
        made["ref_id"] = ref_id
    return made


def edge(edge_id: str, source: str, target: str) -> dict[str, Any]:
    return {"id": edge_id, "source": source, "target": target}


def test_create_read_list_and_delete(api: Any, register: Any, clean_db: str) -> None:
    account = register()
    token = account.access_token
    query_id = factories.query(clean_db, account.organization_id)
    viz = factories.visualization(clean_db, account.organization_id, query_id)
    body = {
        "name": "Funnel",
        "time_preset": "custom",
        "time_range": RANGE,
        "nodes": [
            node("q", "query", query_id),
            node("v", "visualization", viz),
            node("n", data={"md": "# hi"}),
        ],
        "edges": [edge("e1", "q", "v"), {**edge("e2", "n", "v"), "label": "explains"}],
        "tags": ["growth"],
    }
    created = api.post(CANVASES, json_body=body, token=token)
    assert created.status == 201, created.body
    made = created.json()
    assert created.header("Location") == f"{CANVASES}/{made['id']}"
    assert made["time_range"] == {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}
    assert [n["id"] for n in made["nodes"]] == ["q", "v", "n"]
    assert made["nodes"][0]["ref_id"] == query_id
    assert made["nodes"][2]["data"] == {"md": "# hi"}
    assert made["edges"][1]["label"] == "explains"

    read = api.get(f"{CANVASES}/{made['id']}", token=token)
    assert read.json() == made
    listed = api.get(CANVASES, query={"tag": "growth"}, token=token).json()
    assert [item["id"] for item in listed["items"]] == [made["id"]]
    assert api.delete(f"{CANVASES}/{made['id']}", token=token).status == 204
    assert api.get(f"{CANVASES}/{made['id']}", token=token).status == 404


def test_empty_canvas_with_a_preset(api: Any, register: Any) -> None:
    account = register()
    created = api.post(
        CANVASES, json_body={"name": "c", "time_preset": "last_7d"}, token=account.access_token
    )
    assert created.status == 201, created.body
    made = created.json()
    assert (made["nodes"], made["edges"], made["time_range"]) == ([], [], None)


@pytest.mark.parametrize(
    ("nodes", "edges", "field"),
    [
        ([node("a"), node("a")], [], "body.nodes.1.id"),
        ([node("a"), node("b")], [edge("e", "a", "b"), edge("e", "b", "a")], "body.edges.1.id"),
        ([node("a")], [edge("e", "a", "ghost")], "body.edges.0.target"),
        ([node("a")], [edge("e", "ghost", "a")], "body.edges.0.source"),
        ([node("q", "query")], [], "body.nodes.0.ref_id"),
        ([node("n", ref_id="00000000-0000-4000-8000-000000000000")], [], "body.nodes.0.ref_id"),
        ([node("a", "chart")], [], "body.nodes.0.type"),
        ([{**node("a"), "position": {"x": 1}}], [], "body.nodes.0.position.y"),
        ([node("")], [], "body.nodes.0.id"),
    ],
)
def test_invalid_graphs_are_422(
    api: Any, register: Any, nodes: list[dict[str, Any]], edges: list[dict[str, Any]], field: str
) -> None:
    account = register()
    response = api.post(
        CANVASES,
        json_body={"name": "c", "time_preset": "last_1h", "nodes": nodes, "edges": edges},
        token=account.access_token,
    )
    error = assert_error(response, 422, "validation_error")
    assert field in [detail["field"] for detail in error["details"]], error


def test_size_limits(api: Any, register: Any) -> None:
    account = register()
    many_nodes = [node(f"n{index}") for index in range(501)]
    response = api.post(
        CANVASES,
        json_body={"name": "c", "time_preset": "last_1h", "nodes": many_nodes},
        token=account.access_token,
    )
    assert_error(response, 422, "validation_error")
    dangling = api.post(
        CANVASES,
        json_body={
            "name": "c",
            "time_preset": "last_1h",
            "edges": [edge(f"e{index}", "a", "b") for index in range(2000)],
        },
        token=account.access_token,
    )
    assert len(assert_error(dangling, 422, "validation_error")["details"]) == 50  # the first ones only
    nodes = [node("a"), node("b")]
    edges = [edge(f"e{index}", "a", "b") for index in range(2001)]
    response = api.post(
        CANVASES,
        json_body={"name": "c", "time_preset": "last_1h", "nodes": nodes, "edges": edges},
        token=account.access_token,
    )
    assert_error(response, 422, "validation_error")
    response = api.post(
        CANVASES,
        json_body={
            "name": "c",
            "time_preset": "last_1h",
            "nodes": [*nodes, *many_nodes[:498]],
            "edges": edges[:2000],
        },
        token=account.access_token,
    )
    assert response.status == 201, response.body


@pytest.mark.parametrize(
    ("preset", "time_range", "field"),
    [
        ("custom", None, "body.time_range"),
        ("last_24h", RANGE, "body.time_range"),
        ("custom", {"from": RANGE["to"], "to": RANGE["from"]}, "body.time_range"),
        ("custom", {"from": RANGE["from"], "to": RANGE["from"]}, "body.time_range"),
        ("custom", {"from": "2026-01-01T00:00:00", "to": RANGE["to"]}, "body.time_range.from"),
        ("last_year", None, "body.time_preset"),
    ],
)
def test_time_window_rules(
    api: Any, register: Any, preset: str, time_range: dict[str, str] | None, field: str
) -> None:
    account = register()
    body: dict[str, Any] = {"name": "c", "time_preset": preset}
    if time_range is not None:
        body["time_range"] = time_range
    error = assert_error(
        api.post(CANVASES, json_body=body, token=account.access_token), 422, "validation_error"
    )
    assert any(detail["field"].startswith(field) for detail in error["details"]), error


def test_references_of_another_organization_are_404(api: Any, register: Any, clean_db: str) -> None:
    mine, theirs = register(), register()
    foreign_query = factories.query(clean_db, theirs.organization_id)
    foreign_viz = factories.visualization(clean_db, theirs.organization_id, foreign_query)
    own_query = factories.query(clean_db, mine.organization_id)
    for nodes, field in (
        ([node("q", "query", foreign_query)], "body.nodes.0.ref_id"),
        ([node("a"), node("v", "visualization", foreign_viz)], "body.nodes.1.ref_id"),
        # A query's id does not name a visualization, even in the same organization.
        ([node("v", "visualization", own_query)], "body.nodes.0.ref_id"),
    ):
        response = api.post(
            CANVASES,
            json_body={"name": "c", "time_preset": "last_1h", "nodes": nodes},
            token=mine.access_token,
        )
        error = assert_error(response, 404, "not_found")
        assert error["details"] == [{"field": field, "issue": "not found"}]


def test_patch_checks_the_resulting_canvas(api: Any, register: Any, clean_db: str) -> None:
    account = register()
    token = account.access_token
    query_id = factories.query(clean_db, account.organization_id)
    made = api.post(
        CANVASES,
        json_body={
            "name": "c",
            "time_preset": "custom",
            "time_range": RANGE,
            "nodes": [node("a"), node("q", "query", query_id)],
            "edges": [edge("e", "a", "q")],
        },
        token=token,
    ).json()
    path = f"{CANVASES}/{made['id']}"
    etag = api.get(path, token=token).header("ETag")

    # Dropping a node an edge still uses leaves the edge dangling.
    orphaning = api.request("PATCH", path, json_body={"nodes": [node("a")]}, token=token)
    assert_error(orphaning, 422, "validation_error")
    dangling = api.request("PATCH", path, json_body={"edges": [edge("e", "a", "zz")]}, token=token)
    assert_error(dangling, 422, "validation_error")

    moved = api.request(
        "PATCH", path, json_body={"edges": [edge("e", "q", "a")]}, headers={"If-Match": etag}, token=token
    )
    assert moved.status == 200, moved.body
    assert moved.json()["edges"] == [{"id": "e", "source": "q", "target": "a", "label": None}]
    assert moved.header("ETag") != etag
    stale = api.request("PATCH", path, json_body={"name": "x"}, headers={"If-Match": etag}, token=token)
    assert_error(stale, 412, "precondition_failed")

    # Renaming keeps the custom range; leaving custom drops it; a range needs custom.
    assert api.request("PATCH", path, json_body={"name": "d"}, token=token).json()["time_range"] is not None
    preset = api.request("PATCH", path, json_body={"time_preset": "last_30d"}, token=token).json()
    assert (preset["time_preset"], preset["time_range"]) == ("last_30d", None)
    assert_error(
        api.request("PATCH", path, json_body={"time_range": RANGE}, token=token), 422, "validation_error"
    )
    assert_error(
        api.request("PATCH", path, json_body={"time_preset": "custom"}, token=token), 422, "validation_error"
    )
    custom = api.request("PATCH", path, json_body={"time_preset": "custom", "time_range": RANGE}, token=token)
    assert custom.json()["time_range"] == {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}
    assert_error(api.request("PATCH", path, json_body={"nodes": None}, token=token), 422, "validation_error")


def test_viewer_reads_but_cannot_write(api: Any, register: Any, clean_db: str) -> None:
    account = register()
    token = account.access_token
    made = api.post(CANVASES, json_body={"name": "c", "time_preset": "last_1h"}, token=token).json()
    set_role(clean_db, account.user_id, "viewer")
    path = f"{CANVASES}/{made['id']}"
    assert api.get(path, token=token).status == 200
    assert api.get(CANVASES, token=token).status == 200
    assert_error(
        api.post(CANVASES, json_body={"name": "c", "time_preset": "last_1h"}, token=token), 403, "forbidden"
    )
    assert_error(api.request("PATCH", path, json_body={"name": "x"}, token=token), 403, "forbidden")
    assert_error(api.delete(path, token=token), 403, "forbidden")


def test_another_organizations_canvas_is_404(api: Any, register: Any) -> None:
    mine, theirs = register(), register()
    made = api.post(
        CANVASES, json_body={"name": "c", "time_preset": "last_1h"}, token=theirs.access_token
    ).json()
    path = f"{CANVASES}/{made['id']}"
    assert_error(api.get(path, token=mine.access_token), 404, "not_found")
    assert_error(
        api.request("PATCH", path, json_body={"name": "x"}, token=mine.access_token), 404, "not_found"
    )
    assert_error(api.delete(path, token=mine.access_token), 404, "not_found")
    assert api.get(CANVASES, token=mine.access_token).json()["total"] == 0


@pytest.mark.parametrize(
    "preset", ["today", "this_month", "last_month", "this_quarter", "last_quarter", "this_year"]
)
def test_canvases_share_the_calendar_presets_of_range_parameters(
    api: Any, register: Any, clean_db: str, preset: str
) -> None:
    token = register().access_token
    made = api.post("/api/v1/canvases", json_body={"name": "Calendar", "time_preset": preset}, token=token)
    assert made.status == 201, made.body
    assert api.get(f"/api/v1/canvases/{made.json()['id']}", token=token).json()["time_preset"] == preset
    refused = api.post("/api/v1/canvases", json_body={"name": "x", "time_preset": "yesterday"}, token=token)
    assert_error(refused, 422, "validation_error")
