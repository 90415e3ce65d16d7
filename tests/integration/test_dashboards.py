"""Dashboards through real API Gateway events and a real PostgreSQL: tiles on the grid, tenancy, ETags."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests import factories

DASHBOARDS = "/api/v1/dashboards"


def set_role(database_url: str, user_id: str, role: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE memberships SET role = %s WHERE user_id = %s", (role, user_id))


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, response.body
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    return error


def tile(x: int, y: int, w: int, h: int, **content: Any) -> dict[str, Any]:
    return {"x": x, "y": y, "w": w, "h": h, **(content or {"text": "# note"})}


def stored_tiles(database_url: str, dashboard_id: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT x, y, w, h, text FROM dashboard_tiles WHERE dashboard_id = %s ORDER BY y, x",
            (dashboard_id,),
        ).fetchall()


def test_create_read_list_and_delete(api: Any, register: Any, clean_db: str) -> None:
    account = register()
    viz = factories.visualization(clean_db, account.organization_id)
    body = {
        "name": "Sales",
        "description": "Weekly",
        "tags": ["team"],
        "tiles": [tile(6, 0, 6, 4), tile(0, 0, 6, 4, visualization_id=viz), tile(0, 4, 12, 2)],
    }
    created = api.post(DASHBOARDS, json_body=body, token=account.access_token)
    assert created.status == 201, created.body
    made = created.json()
    assert created.header("Location") == f"{DASHBOARDS}/{made['id']}"
    assert [(t["x"], t["y"], t["visualization_id"]) for t in made["tiles"]] == [
        (0, 0, viz),
        (6, 0, None),
        (0, 4, None),
    ]

    read = api.get(f"{DASHBOARDS}/{made['id']}", token=account.access_token)
    assert read.status == 200
    assert read.json() == made
    assert read.header("ETag") is not None

    listed = api.get(DASHBOARDS, token=account.access_token).json()
    assert listed["total"] == 1
    assert listed["items"][0]["tiles"] == made["tiles"]

    assert api.delete(f"{DASHBOARDS}/{made['id']}", token=account.access_token).status == 204
    assert stored_tiles(clean_db, made["id"]) == []
    assert api.get(f"{DASHBOARDS}/{made['id']}", token=account.access_token).status == 404


def test_tiles_may_be_empty(api: Any, register: Any) -> None:
    account = register()
    created = api.post(DASHBOARDS, json_body={"name": "Empty"}, token=account.access_token)
    assert created.status == 201, created.body
    assert created.json()["tiles"] == []


@pytest.mark.parametrize(
    ("bad_tile", "field"),
    [
        (tile(-1, 0, 1, 1), "body.tiles.0.x"),
        (tile(0, -1, 1, 1), "body.tiles.0.y"),
        (tile(0, 0, 0, 1), "body.tiles.0.w"),
        (tile(0, 0, 1, 0), "body.tiles.0.h"),
        (tile(0, 0, 1, 25), "body.tiles.0.h"),
        (tile(6, 0, 7, 1), "body.tiles.0"),
        ({"x": 0, "y": 0, "w": 1, "h": 1}, "body.tiles.0"),
        ({**tile(0, 0, 1, 1), "z": 1}, "body.tiles.0.z"),
    ],
)
def test_tiles_outside_the_grid_are_422(
    api: Any, register: Any, bad_tile: dict[str, Any], field: str
) -> None:
    account = register()
    response = api.post(DASHBOARDS, json_body={"name": "d", "tiles": [bad_tile]}, token=account.access_token)
    error = assert_error(response, 422, "validation_error")
    assert any(detail["field"].startswith(field) for detail in error["details"]), error


def test_overlapping_tiles_are_422(api: Any, register: Any) -> None:
    account = register()
    response = api.post(
        DASHBOARDS,
        json_body={"name": "d", "tiles": [tile(0, 0, 4, 4), tile(8, 0, 4, 4), tile(3, 3, 2, 2)]},
        token=account.access_token,
    )
    error = assert_error(response, 422, "validation_error")
    assert error["details"] == [{"field": "body.tiles.2", "issue": "overlaps tile 0"}]


def test_another_organizations_visualization_is_404(api: Any, register: Any, clean_db: str) -> None:
    mine, theirs = register(), register()
    foreign = factories.visualization(clean_db, theirs.organization_id)
    response = api.post(
        DASHBOARDS,
        json_body={"name": "d", "tiles": [tile(0, 0, 2, 2, visualization_id=foreign)]},
        token=mine.access_token,
    )
    error = assert_error(response, 404, "not_found")
    assert error["details"] == [{"field": "body.tiles.0.visualization_id", "issue": "not found"}]


def test_patch_replaces_tiles_atomically_and_changes_the_etag(api: Any, register: Any, clean_db: str) -> None:
    account = register()
    token = account.access_token
    made = api.post(DASHBOARDS, json_body={"name": "d", "tiles": [tile(0, 0, 2, 2)]}, token=token).json()
    path = f"{DASHBOARDS}/{made['id']}"
    etag = api.get(path, token=token).header("ETag")

    # An invalid set changes nothing: neither the old tiles nor the version.
    bad = api.request("PATCH", path, json_body={"tiles": [tile(0, 0, 3, 3), tile(2, 2, 1, 1)]}, token=token)
    assert_error(bad, 422, "validation_error")
    assert stored_tiles(clean_db, made["id"]) == [(0, 0, 2, 2, "# note")]
    assert api.get(path, token=token).header("ETag") == etag

    replaced = api.request(
        "PATCH",
        path,
        json_body={"tiles": [tile(0, 0, 12, 1), tile(0, 1, 5, 5)]},
        headers={"If-Match": etag},
        token=token,
    )
    assert replaced.status == 200, replaced.body
    assert [(t["x"], t["y"], t["w"]) for t in replaced.json()["tiles"]] == [(0, 0, 12), (0, 1, 5)]
    assert replaced.json()["name"] == "d"
    assert replaced.header("ETag") != etag
    assert stored_tiles(clean_db, made["id"]) == [(0, 0, 12, 1, "# note"), (0, 1, 5, 5, "# note")]

    stale = api.request("PATCH", path, json_body={"name": "e"}, headers={"If-Match": etag}, token=token)
    assert_error(stale, 412, "precondition_failed")

    renamed = api.request("PATCH", path, json_body={"name": "e"}, token=token)
    assert renamed.status == 200
    assert len(renamed.json()["tiles"]) == 2  # tiles not sent: kept

    assert_error(api.request("PATCH", path, json_body={"tiles": None}, token=token), 422, "validation_error")
    cleared = api.request("PATCH", path, json_body={"tiles": []}, token=token)
    assert cleared.json()["tiles"] == []


def test_viewer_reads_but_cannot_write(api: Any, register: Any, clean_db: str) -> None:
    account = register()
    token = account.access_token
    made = api.post(DASHBOARDS, json_body={"name": "d"}, token=token).json()
    set_role(clean_db, account.user_id, "viewer")
    path = f"{DASHBOARDS}/{made['id']}"
    assert api.get(path, token=token).status == 200
    assert api.get(DASHBOARDS, token=token).status == 200
    assert_error(api.post(DASHBOARDS, json_body={"name": "x"}, token=token), 403, "forbidden")
    assert_error(api.request("PATCH", path, json_body={"name": "x"}, token=token), 403, "forbidden")
    assert_error(api.delete(path, token=token), 403, "forbidden")


def test_another_organizations_dashboard_is_404(api: Any, register: Any) -> None:
    mine, theirs = register(), register()
    made = api.post(DASHBOARDS, json_body={"name": "d"}, token=theirs.access_token).json()
    path = f"{DASHBOARDS}/{made['id']}"
    assert_error(api.get(path, token=mine.access_token), 404, "not_found")
    assert_error(
        api.request("PATCH", path, json_body={"name": "x"}, token=mine.access_token), 404, "not_found"
    )
    assert_error(api.delete(path, token=mine.access_token), 404, "not_found")
    assert_error(api.post(f"{path}/refresh", token=mine.access_token), 404, "not_found")
    assert api.get(DASHBOARDS, token=mine.access_token).json()["total"] == 0


def test_a_deleted_visualization_takes_its_tiles(api: Any, register: Any, clean_db: str) -> None:
    account = register()
    viz = factories.visualization(clean_db, account.organization_id)
    made = api.post(
        DASHBOARDS,
        json_body={"name": "d", "tiles": [tile(0, 0, 2, 2, visualization_id=viz), tile(2, 0, 2, 2)]},
        token=account.access_token,
    ).json()
    with psycopg.connect(clean_db) as conn:
        conn.execute("DELETE FROM visualizations WHERE id = %s", (viz,))
    tiles = api.get(f"{DASHBOARDS}/{made['id']}", token=account.access_token).json()["tiles"]
    assert [(t["x"], t["visualization_id"]) for t in tiles] == [(2, None)]
