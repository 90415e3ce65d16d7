"""History through the API: every change to a query, visualization, dashboard or canvas keeps a revision
(author, time, full definition); revisions are listed, read, compared and restored as a new revision under
If-Match; runs record the query's revision; history goes with the resource and stays in its organization."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests import factories
from tests.integration.test_dashboards import assert_error, tile


def patch(api: Any, token: str, path: str, body: dict[str, Any]) -> Any:
    etag = api.get(path, token=token).header("ETag")
    changed = api.request("PATCH", path, json_body=body, token=token, headers={"If-Match": etag})
    assert changed.status == 200, changed.body
    return changed


def test_a_dashboard_keeps_each_change_with_its_tiles_and_restores_one_as_a_new_revision(
    api: Any, register: Any, clean_db: str
) -> None:
    account = register()
    token = account.access_token
    visualization = factories.visualization(clean_db, account.organization_id)
    made = api.post(
        "/api/v1/dashboards",
        json_body={"name": "Sales", "tiles": [tile(0, 0, 6, 4, visualization_id=visualization)]},
        token=token,
    ).json()
    path = f"/api/v1/dashboards/{made['id']}"
    patch(api, token, path, {"name": "Sales (weekly)", "tiles": [tile(0, 0, 12, 2)]})
    # A write that changes nothing keeps no revision.
    patch(api, token, path, {"name": "Sales (weekly)"})

    listed = api.get(f"{path}/revisions", token=token)
    assert listed.status == 200, listed.body
    assert [item["number"] for item in listed.json()["items"]] == [2, 1]
    assert listed.json()["items"][0]["author"] == {"kind": "user", "id": account.user_id}
    first = api.get(f"{path}/revisions/1", token=token).json()
    assert first["definition"]["name"] == "Sales"
    assert first["definition"]["tiles"] == [
        {
            "visualization_id": visualization,
            "text": None,
            "x": 0,
            "y": 0,
            "w": 6,
            "h": 4,
            "param_mappings": {},
        }
    ]
    assert "id" not in first["definition"]
    assert "updated_at" not in first["definition"]
    compared = api.get(f"{path}/revisions/2", token=token, query={"diff_to": "1"}).json()
    assert {change["path"]: (change["before"], change["after"]) for change in compared["changes"]} == {
        "/name": ("Sales", "Sales (weekly)"),
        "/tiles/0/visualization_id": (visualization, None),
        "/tiles/0/text": (None, "# note"),
        "/tiles/0/w": (6, 12),
        "/tiles/0/h": (4, 2),
    }

    # A restore is an update: If-Match guards it, and it appends a revision equal to the one restored.
    stale = api.request("POST", f"{path}/revisions/1/restore", token=token, headers={"If-Match": '"stale"'})
    assert_error(stale, 412, "precondition_failed")
    etag = api.get(path, token=token).header("ETag")
    restored = api.request("POST", f"{path}/revisions/1/restore", token=token, headers={"If-Match": etag})
    assert restored.status == 200, restored.body
    assert restored.header("ETag") != etag
    assert restored.json()["name"] == "Sales"
    assert [t["visualization_id"] for t in restored.json()["tiles"]] == [visualization]
    newest = api.get(f"{path}/revisions", token=token).json()["items"][0]
    assert (newest["number"], newest["restored_from"]) == (3, 1)
    assert api.get(f"{path}/revisions/3", token=token).json()["definition"] == first["definition"]

    assert_error(api.get(f"{path}/revisions/9", token=token), 404, "not_found")
    assert_error(api.get(f"{path}/revisions/0", token=token), 422, "validation_error")
    assert_error(api.get(f"{path}/revisions/1", token=token, query={"diff_to": "9"}), 404, "not_found")
    # History stays in its organization, and goes with its resource.
    stranger = register().access_token
    assert_error(api.get(f"{path}/revisions", token=stranger), 404, "not_found")
    assert_error(api.get(f"{path}/revisions/1", token=stranger), 404, "not_found")
    etag = api.get(path, token=token).header("ETag")
    assert api.request("DELETE", path, token=token, headers={"If-Match": etag}).status == 204
    with psycopg.connect(clean_db) as conn:
        left = conn.execute("SELECT count(*) FROM revisions WHERE resource_id = %s", (made["id"],)).fetchone()
    assert left == (0,)


def test_a_query_revision_is_its_history_number_and_runs_record_it(
    api: Any, register: Any, clean_db: str
) -> None:
    account = register()
    token = account.access_token
    datasource = factories.datasource(clean_db, account.organization_id)
    made = api.post(
        "/api/v1/queries",
        json_body={"name": "q", "datasource_id": datasource, "sql": "SELECT 1"},
        token=token,
    ).json()
    path = f"/api/v1/queries/{made['id']}"
    assert made["revision"] == 1
    renamed = patch(api, token, path, {"name": "renamed"}).json()
    assert renamed["revision"] == 2
    assert patch(api, token, path, {"name": "renamed"}).json()["revision"] == 2
    changed = patch(api, token, path, {"sql": "SELECT 2"}).json()
    assert changed["revision"] == 3
    items = api.get(f"{path}/revisions", token=token).json()["items"]
    assert [item["number"] for item in items] == [3, 2, 1]
    assert api.get(f"{path}/revisions/3", token=token).json()["definition"]["sql"] == "SELECT 2"
    assert "revision" not in api.get(f"{path}/revisions/3", token=token).json()["definition"]
    etag = api.get(path, token=token).header("ETag")
    restored = api.request("POST", f"{path}/revisions/1/restore", token=token, headers={"If-Match": etag})
    assert (restored.json()["revision"], restored.json()["name"], restored.json()["sql"]) == (
        4,
        "q",
        "SELECT 1",
    )


def test_a_resource_from_before_history_keeps_its_state_without_an_author_at_its_next_change(
    api: Any, register: Any, clean_db: str
) -> None:
    account = register()
    token = account.access_token
    visualization = factories.visualization(clean_db, account.organization_id)
    path = f"/api/v1/visualizations/{visualization}"
    before = api.get(path, token=token).json()
    assert api.get(f"{path}/revisions", token=token).json()["items"] == []
    patch(api, token, path, {"name": "renamed"})
    older, newer = reversed(api.get(f"{path}/revisions", token=token).json()["items"])
    assert (older["number"], older["author"], newer["number"]) == (1, None, 2)
    kept = api.get(f"{path}/revisions/1", token=token).json()["definition"]
    assert kept["name"] == before["name"]
    assert "warnings" not in kept
    # A restore is the one revision that says so (not the state before it, had there been one to keep).
    etag = api.get(path, token=token).header("ETag")
    restored = api.request("POST", f"{path}/revisions/1/restore", token=token, headers={"If-Match": etag})
    assert restored.status == 200, restored.body
    listed = api.get(f"{path}/revisions", token=token).json()["items"]
    assert [(item["number"], item["restored_from"]) for item in listed] == [(3, 1), (2, None), (1, None)]


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_viewers_read_history_and_only_editors_restore(
    api: Any, register: Any, clean_db: str, role: str
) -> None:
    account = register()
    made = api.post(
        "/api/v1/canvases", json_body={"name": "Map", "time_preset": "last_7d"}, token=account.access_token
    ).json()
    path = f"/api/v1/canvases/{made['id']}"
    patch(api, account.access_token, path, {"name": "Map 2"})
    member = factories.member(api, clean_db, account.organization_id, role)[1]["access_token"]
    assert api.get(f"{path}/revisions", token=member).json()["total"] == 2
    etag = api.get(path, token=member).header("ETag")
    restored = api.request("POST", f"{path}/revisions/1/restore", token=member, headers={"If-Match": etag})
    if role == "viewer":
        assert_error(restored, 403, "forbidden")
    else:
        assert restored.status == 200, restored.body
        assert restored.json()["name"] == "Map"
