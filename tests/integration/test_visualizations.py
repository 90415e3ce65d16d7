"""Visualizations through real API Gateway events and a real PostgreSQL: CRUD, options per type, tenancy."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests import factories

VISUALIZATIONS = "/api/v1/visualizations"
LINE_OPTIONS = {"x": "day", "y": [{"column": "revenue"}]}


def assert_invalid(response: Any, field: str) -> list[dict[str, str]]:
    assert response.status == 422, response.body
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    fields = [detail["field"] for detail in error["details"]]
    assert field in fields, fields
    details: list[dict[str, str]] = error["details"]
    return details


class Org:
    """A registered admin with one query, and helpers to call the visualizations API as them."""

    def __init__(self, api: Any, account: Any, database_url: str) -> None:
        self.api = api
        self.account = account
        self.token = account.access_token
        self.database_url = database_url
        self.query_id = factories.query(database_url, account.organization_id)

    def create(self, **changes: Any) -> Any:
        body = {
            "name": "Revenue",
            "query_id": self.query_id,
            "type": "line",
            "options": LINE_OPTIONS,
            **changes,
        }
        return self.api.post(VISUALIZATIONS, json_body=body, token=self.token)

    def created(self, **changes: Any) -> dict[str, Any]:
        response = self.create(**changes)
        assert response.status == 201, response.body
        made: dict[str, Any] = response.json()
        return made

    def patch(self, visualization_id: str, body: dict[str, Any], **kwargs: Any) -> Any:
        path = f"{VISUALIZATIONS}/{visualization_id}"
        return self.api.request("PATCH", path, json_body=body, token=self.token, **kwargs)


@pytest.fixture
def org(api: Any, register: Any, clean_db: str) -> Org:
    return Org(api, register(), clean_db)


@pytest.fixture
def other_org(api: Any, register: Any, clean_db: str) -> Org:
    return Org(api, register(), clean_db)


class TestCrud:
    def test_create_fills_option_defaults(self, org: Org) -> None:
        response = org.create(tags=["sales"])
        assert response.status == 201, response.body
        made = response.json()
        assert response.header("Location") == f"{VISUALIZATIONS}/{made['id']}"
        assert made["query_id"] == org.query_id
        assert made["created_by"] == org.account.user_id
        assert made["options"]["x"] == "day"
        assert made["options"]["y"] == [{"column": "revenue", "label": None, "color": None, "axis": "left"}]
        assert made["options"]["interpolation"] == "linear"
        assert made["options"]["x_axis"]["scale"] == "linear"
        read = org.api.get(f"{VISUALIZATIONS}/{made['id']}", token=org.token)
        assert read.json() == made
        etag = read.header("ETag")
        again = org.api.get(
            f"{VISUALIZATIONS}/{made['id']}", token=org.token, headers={"If-None-Match": etag}
        )
        assert again.status == 304

    @pytest.mark.parametrize("kind", ["table", "pivot"])
    def test_empty_options_for_table_and_pivot(self, org: Org, kind: str) -> None:
        made = org.created(type=kind, options={})
        assert made["type"] == kind
        assert made["options"]["formatting" if kind == "pivot" else "page_size"]

    def test_options_may_be_left_out_for_a_table(self, org: Org) -> None:
        body = {"name": "Raw", "query_id": org.query_id, "type": "table"}
        response = org.api.post(VISUALIZATIONS, json_body=body, token=org.token)
        assert response.status == 201, response.body
        assert response.json()["options"]["columns"] == []

    @pytest.mark.parametrize(
        ("kind", "options"),
        [
            (
                "bar",
                {"x": "region", "y": [{"column": "a"}, {"column": "b", "axis": "right"}], "stacked": True},
            ),
            ("area", {"x": "day", "y": [{"column": "a", "color": "#AABBCC"}]}),
            ("scatter", {"x": "height", "y": [{"column": "weight"}], "point_size": 8}),
            ("pie", {"label": "region", "value": "revenue", "donut": True}),
            ("counter", {"value": "total", "formatting": {"prefix": "$", "decimals": 2}}),
            ("pivot", {"rows": ["region"], "columns": ["year"], "values": ["revenue"], "aggregation": "avg"}),
            ("table", {"columns": [{"column": "email", "visible": False}], "page_size": 100}),
        ],
    )
    def test_each_type(self, org: Org, kind: str, options: dict[str, Any]) -> None:
        made = org.created(type=kind, options=options)
        for name, value in options.items():
            if not isinstance(value, list | dict):
                assert made["options"][name] == value

    def test_patch_and_delete_with_if_match(self, org: Org) -> None:
        made = org.created()
        etag = org.api.get(f"{VISUALIZATIONS}/{made['id']}", token=org.token).header("ETag")
        updated = org.patch(made["id"], {"name": "Renamed"}, headers={"If-Match": etag})
        assert updated.status == 200, updated.body
        assert updated.json()["name"] == "Renamed"
        assert updated.json()["options"] == made["options"]
        assert org.patch(made["id"], {"name": "x"}, headers={"If-Match": etag}).status == 412
        path = f"{VISUALIZATIONS}/{made['id']}"
        assert org.api.delete(path, token=org.token, headers={"If-Match": etag}).status == 412
        new_etag = updated.header("ETag")
        assert org.api.delete(path, token=org.token, headers={"If-Match": new_etag}).status == 204
        assert org.api.get(path, token=org.token).status == 404

    def test_patch_type_keeps_the_options_it_knows(self, org: Org) -> None:
        made = org.created(options={**LINE_OPTIONS, "interpolation": "step", "legend": False})
        bar = org.patch(made["id"], {"type": "bar"})
        assert bar.status == 200, bar.body
        assert bar.json()["options"]["x"] == "day"
        assert bar.json()["options"]["legend"] is False
        assert "interpolation" not in bar.json()["options"]
        assert bar.json()["options"]["stacked"] is False

    def test_patch_type_needs_its_columns(self, org: Org) -> None:
        made = org.created(type="table", options={})
        assert_invalid(org.patch(made["id"], {"type": "pie"}), "body.options.label")
        pie = org.patch(made["id"], {"type": "pie", "options": {"label": "region", "value": "revenue"}})
        assert pie.status == 200, pie.body

    def test_patch_options_come_with_their_type(self, org: Org) -> None:
        made = org.created()
        options = {"x": "week", "y": [{"column": "orders"}]}
        [detail] = assert_invalid(org.patch(made["id"], {"options": options}), "body.options")
        assert "type" in detail["issue"]
        mismatched = org.patch(made["id"], {"type": "line", "options": {"value": "total"}})
        assert_invalid(mismatched, "body.options.x")
        response = org.patch(made["id"], {"type": "line", "options": options})
        assert response.json()["options"]["x"] == "week"
        assert_invalid(org.patch(made["id"], {"options": None}), "body.options")
        assert_invalid(org.patch(made["id"], {"type": None}), "body.type")


class TestOptionValidation:
    @pytest.mark.parametrize(
        ("kind", "options", "field"),
        [
            ("line", {}, "body.options.x"),
            ("line", {"x": "day"}, "body.options.y"),
            ("line", {"x": "day", "y": []}, "body.options.y"),
            ("bar", {"x": "day", "y": [{"column": "a"}, {"column": "a"}]}, "body.options.y"),
            ("area", {"x": "", "y": [{"column": "a"}]}, "body.options.x"),
            ("scatter", {**LINE_OPTIONS, "point_size": 0}, "body.options.point_size"),
            ("line", {**LINE_OPTIONS, "aggregation": "median"}, "body.options.aggregation"),
            ("line", {**LINE_OPTIONS, "y_axis": {"min": 5, "max": 1}}, "body.options.y_axis"),
            ("line", {"x": "day", "y": [{"column": "a", "color": "red"}]}, "body.options.y.0.color"),
            ("line", {**LINE_OPTIONS, "stacked": True}, "body.options.stacked"),
            ("pie", {"label": "region"}, "body.options.value"),
            ("pie", {"value": "revenue"}, "body.options.label"),
            ("counter", {}, "body.options.value"),
            ("counter", {"value": "n", "formatting": {"decimals": 11}}, "body.options.formatting.decimals"),
            ("table", {"page_size": 0}, "body.options.page_size"),
            ("table", {"columns": [{"label": "no column"}]}, "body.options.columns.0.column"),
            ("pivot", {"rows": "region"}, "body.options.rows"),
            ("pivot", {"colour": "blue"}, "body.options.colour"),
        ],
    )
    def test_invalid_options(self, org: Org, kind: str, options: dict[str, Any], field: str) -> None:
        assert_invalid(org.create(type=kind, options=options), field)

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"type": "heatmap"}, "body.type"),
            ({"options": ["x"]}, "body.options"),
            ({"name": ""}, "body.name"),
            ({"query_id": "nope"}, "body.query_id"),
            ({"tags": [f"t{index}" for index in range(21)]}, "body.tags"),
            ({"tags": ["x" * 51]}, "body.tags.0"),
            ({"extra": 1}, "body.extra"),
        ],
    )
    def test_invalid_fields(self, org: Org, changes: dict[str, Any], field: str) -> None:
        assert_invalid(org.create(**changes), field)


class TestTenancyAndRoles:
    def test_other_orgs_query_in_the_body_is_404(self, org: Org, other_org: Org) -> None:
        response = org.create(query_id=other_org.query_id)
        assert response.status == 404, response.body
        assert response.json()["error"]["details"] == [{"field": "body.query_id", "issue": "not found"}]
        made = org.created()
        assert org.patch(made["id"], {"query_id": other_org.query_id}).status == 404
        assert org.create(query_id=str(uuid.uuid4())).status == 404

    def test_other_orgs_visualization_is_404(self, org: Org, other_org: Org) -> None:
        theirs = other_org.created()
        path = f"{VISUALIZATIONS}/{theirs['id']}"
        assert org.api.get(path, token=org.token).status == 404
        assert org.patch(theirs["id"], {"name": "mine"}).status == 404
        assert org.api.delete(path, token=org.token).status == 404
        assert org.api.get(VISUALIZATIONS, token=org.token).json()["total"] == 0

    def test_viewer_reads_only(self, org: Org, clean_db: str) -> None:
        made = org.created()
        with psycopg.connect(clean_db) as conn:
            conn.execute("UPDATE memberships SET role = 'viewer' WHERE user_id = %s", (org.account.user_id,))
        assert org.api.get(f"{VISUALIZATIONS}/{made['id']}", token=org.token).status == 200
        assert org.create().status == 403
        assert org.patch(made["id"], {"name": "x"}).status == 403
        assert org.api.delete(f"{VISUALIZATIONS}/{made['id']}", token=org.token).status == 403


class TestListing:
    def test_filters_sort_and_paging(self, org: Org, clean_db: str) -> None:
        second_query = factories.query(clean_db, org.account.organization_id)
        line = org.created(name="Line", tags=["weekly"])
        pie = org.created(name="Pie", type="pie", options={"label": "r", "value": "v"})
        table = org.created(name="Table", type="table", options={}, query_id=second_query)

        def names(**query: Any) -> list[str]:
            response = org.api.get(VISUALIZATIONS, token=org.token, query=query)
            assert response.status == 200, response.body
            return [item["name"] for item in response.json()["items"]]

        assert names(query_id=org.query_id, sort="name") == [line["name"], pie["name"]]
        assert names(query_id=second_query) == [table["name"]]
        assert names(tag="weekly") == ["Line"]
        assert names(q="tab") == ["Table"]
        assert names(sort="-name", limit="2", offset="1") == ["Pie", "Line"]
        assert names(sort="type") == ["Line", "Pie", "Table"]
        assert names(created_by=org.account.user_id, sort="name") == ["Line", "Pie", "Table"]
        response = org.api.get(VISUALIZATIONS, token=org.token, query={"sort": "options"})
        assert_invalid(response, "query.sort")
