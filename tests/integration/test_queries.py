"""Saved queries through real API Gateway events and a real PostgreSQL: CRUD, parameters, tenancy, lists."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests import factories

QUERIES = "/api/v1/queries"


def set_role(database_url: str, user_id: str, role: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE memberships SET role = %s WHERE user_id = %s", (role, user_id))


def assert_invalid(response: Any, field: str) -> list[dict[str, str]]:
    """A 422 whose details name `field` (exactly, or as the prefix of a nested location)."""
    assert response.status == 422, response.body
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    fields = [detail["field"] for detail in error["details"]]
    assert any(name == field or name.startswith(field + ".") for name in fields), fields
    details: list[dict[str, str]] = error["details"]
    return details


class Org:
    """A registered admin with one datasource, and helpers to call the queries API as them."""

    def __init__(self, api: Any, account: Any, database_url: str) -> None:
        self.api = api
        self.account = account
        self.token = account.access_token
        self.datasource_id = factories.datasource(database_url, account.organization_id)

    def body(self, **changes: Any) -> dict[str, Any]:
        return {
            "name": "Revenue by region",
            "description": "Weekly revenue",
            "datasource_id": self.datasource_id,
            "sql": "SELECT region, sum(amount) FROM sales WHERE day >= {{ since }} GROUP BY region",
            "parameters": [{"name": "since", "type": "date", "default": "2026-01-01", "required": True}],
            "tags": ["finance"],
            **changes,
        }

    def create(self, **changes: Any) -> Any:
        return self.api.post(QUERIES, json_body=self.body(**changes), token=self.token)

    def created(self, **changes: Any) -> dict[str, Any]:
        response = self.create(**changes)
        assert response.status == 201, response.body
        body: dict[str, Any] = response.json()
        return body

    def patch(self, query_id: str, body: dict[str, Any], **kwargs: Any) -> Any:
        return self.api.request("PATCH", f"{QUERIES}/{query_id}", json_body=body, token=self.token, **kwargs)

    def list(self, **query: Any) -> Any:
        response = self.api.get(QUERIES, token=self.token, query=query)
        assert response.status == 200, response.body
        return response.json()


@pytest.fixture
def org(api: Any, register: Any, clean_db: str) -> Org:
    return Org(api, register(), clean_db)


@pytest.fixture
def other_org(api: Any, register: Any, clean_db: str) -> Org:
    return Org(api, register(), clean_db)


class TestCrud:
    def test_create_then_read(self, org: Org) -> None:
        response = org.create()
        assert response.status == 201, response.body
        made = response.json()
        assert response.header("Location") == f"{QUERIES}/{made['id']}"
        assert made["datasource_id"] == org.datasource_id
        assert made["created_by"] == org.account.user_id
        assert made["tags"] == ["finance"]
        assert made["parameters"] == [
            {
                "name": "since",
                "type": "date",
                "options": None,
                "multi": False,
                "options_query": None,
                "default": "2026-01-01",
                "required": True,
            }
        ]
        read = org.api.get(f"{QUERIES}/{made['id']}", token=org.token)
        assert read.status == 200
        assert read.json() == made
        assert read.header("ETag")

    def test_etag_gives_304(self, org: Org) -> None:
        made = org.created()
        etag = org.api.get(f"{QUERIES}/{made['id']}", token=org.token).header("ETag")
        again = org.api.get(f"{QUERIES}/{made['id']}", token=org.token, headers={"If-None-Match": etag})
        assert again.status == 304

    def test_minimal_body(self, org: Org) -> None:
        made = org.created(sql="SELECT 1", parameters=[], tags=[], description=None)
        assert made["parameters"] == []
        assert made["tags"] == []
        assert made["description"] is None

    def test_patch_with_if_match(self, org: Org) -> None:
        made = org.created()
        etag = org.api.get(f"{QUERIES}/{made['id']}", token=org.token).header("ETag")
        updated = org.patch(made["id"], {"name": "Renamed", "tags": ["a", "b"]}, headers={"If-Match": etag})
        assert updated.status == 200, updated.body
        assert updated.json()["name"] == "Renamed"
        assert updated.json()["tags"] == ["a", "b"]
        assert updated.json()["sql"] == made["sql"]
        assert updated.header("ETag") != etag
        stale = org.patch(made["id"], {"name": "Again"}, headers={"If-Match": etag})
        assert stale.status == 412

    def test_patch_clears_description_but_not_name(self, org: Org) -> None:
        made = org.created()
        assert org.patch(made["id"], {"description": None}).json()["description"] is None
        assert_invalid(org.patch(made["id"], {"name": None}), "body.name")
        assert_invalid(org.patch(made["id"], {"sql": None}), "body.sql")

    def test_delete(self, org: Org) -> None:
        made = org.created()
        etag = org.api.get(f"{QUERIES}/{made['id']}", token=org.token).header("ETag")
        stale = org.api.delete(f"{QUERIES}/{made['id']}", token=org.token, headers={"If-Match": '"stale"'})
        assert stale.status == 412
        deleted = org.api.delete(f"{QUERIES}/{made['id']}", token=org.token, headers={"If-Match": etag})
        assert deleted.status == 204
        assert org.api.get(f"{QUERIES}/{made['id']}", token=org.token).status == 404

    def test_delete_cascades_to_visualizations_only_when_asked(self, org: Org, clean_db: str) -> None:
        made = org.created()
        factories.visualization(clean_db, org.account.organization_id, made["id"])
        assert org.api.delete(f"{QUERIES}/{made['id']}", token=org.token).status == 409
        path = f"{QUERIES}/{made['id']}"
        assert org.api.delete(path, token=org.token, query={"cascade": "true"}).status == 204
        with psycopg.connect(clean_db) as conn:
            assert conn.execute("SELECT count(*) FROM visualizations").fetchone() == (0,)

    def test_unknown_id_is_404(self, org: Org) -> None:
        assert org.api.get(f"{QUERIES}/{uuid.uuid4()}", token=org.token).status == 404
        assert org.patch(str(uuid.uuid4()), {"name": "x"}).status == 404


class TestParameters:
    @pytest.mark.parametrize(
        "sql",
        [
            "SELECT {{since}}",
            "SELECT {{ since }}",
            "SELECT {{   since\n}} WHERE x = {{since}}",
        ],
    )
    def test_placeholder_spacing(self, org: Org, sql: str) -> None:
        assert org.create(sql=sql).status == 201

    def test_undeclared_placeholder(self, org: Org) -> None:
        details = assert_invalid(org.create(sql="SELECT {{ since }}, {{ region }}"), "body.sql")
        assert any("region" in detail["issue"] for detail in details)

    def test_unused_parameter(self, org: Org) -> None:
        assert_invalid(org.create(sql="SELECT 1"), "body.parameters.0.name")

    def test_malformed_placeholder(self, org: Org) -> None:
        assert_invalid(org.create(sql="SELECT {{ since }} + {{ 2nd }}"), "body.sql")

    @pytest.mark.parametrize(
        ("parameter", "field"),
        [
            ({"name": "1since", "type": "text"}, "body.parameters.0.name"),
            ({"name": "s" * 64, "type": "text"}, "body.parameters.0.name"),
            ({"name": "since", "type": "money"}, "body.parameters.0.type"),
            ({"name": "since", "type": "number", "default": "12"}, "body.parameters.0.default"),
            ({"name": "since", "type": "number", "default": True}, "body.parameters.0.default"),
            ({"name": "since", "type": "boolean", "default": 1}, "body.parameters.0.default"),
            ({"name": "since", "type": "date", "default": "2026-02-30"}, "body.parameters.0.default"),
            ({"name": "since", "type": "date", "default": "yesterday"}, "body.parameters.0.default"),
            ({"name": "since", "type": "datetime", "default": "2026-01-01"}, "body.parameters.0.default"),
            ({"name": "since", "type": "text", "default": ["a"]}, "body.parameters.0.default"),
            ({"name": "since", "type": "enum"}, "body.parameters.0.options"),
            ({"name": "since", "type": "enum", "options": []}, "body.parameters.0.options"),
            ({"name": "since", "type": "enum", "options": ["a", "a"]}, "body.parameters.0.options"),
            (
                {"name": "since", "type": "enum", "options": ["a"], "default": "b"},
                "body.parameters.0.default",
            ),
            ({"name": "since", "type": "text", "options": ["a"]}, "body.parameters.0.options"),
            ({"name": "since", "type": "text", "required": "maybe"}, "body.parameters.0.required"),
            ({"name": "since", "type": "text", "label": "Since"}, "body.parameters.0.label"),
        ],
    )
    def test_invalid_parameter(self, org: Org, parameter: dict[str, Any], field: str) -> None:
        assert_invalid(org.create(parameters=[parameter]), field)

    def test_every_type_with_its_default(self, org: Org) -> None:
        parameters: list[dict[str, Any]] = [
            {"name": "t", "type": "text", "default": "north"},
            {"name": "n", "type": "number", "default": 2.5},
            {"name": "d", "type": "date", "default": "2026-01-31"},
            {"name": "dt", "type": "datetime", "default": "2026-01-31T12:00:00Z"},
            {"name": "b", "type": "boolean", "default": False},
            {"name": "e", "type": "enum", "options": ["eu", "us"], "default": "us"},
            {"name": "r", "type": "text", "required": True},
        ]
        sql = "SELECT {{t}}, {{n}}, {{d}}, {{dt}}, {{b}}, {{e}}, {{r}}"
        made = org.created(sql=sql, parameters=parameters)
        assert [(p["name"], p["default"]) for p in made["parameters"]] == [
            (p["name"], p.get("default")) for p in parameters
        ]
        assert made["parameters"][-1]["required"] is True

    def test_duplicate_names(self, org: Org) -> None:
        duplicate = [{"name": "since", "type": "date"}, {"name": "since", "type": "text"}]
        assert_invalid(org.create(parameters=duplicate), "body.parameters")

    def test_patch_sql_is_checked_against_stored_parameters(self, org: Org) -> None:
        made = org.created()
        assert_invalid(org.patch(made["id"], {"sql": "SELECT 1"}), "body.parameters.0.name")
        assert org.patch(made["id"], {"sql": "SELECT {{since}} AS day"}).status == 200

    def test_patch_parameters_are_checked_against_stored_sql(self, org: Org) -> None:
        made = org.created()
        assert_invalid(org.patch(made["id"], {"parameters": []}), "body.sql")
        renamed = {"sql": "SELECT {{ start }}", "parameters": [{"name": "start", "type": "date"}]}
        response = org.patch(made["id"], renamed)
        assert response.status == 200, response.body
        assert response.json()["parameters"][0]["name"] == "start"
        assert org.patch(made["id"], {"sql": "SELECT 1", "parameters": []}).json()["parameters"] == []


class TestFields:
    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"name": ""}, "body.name"),
            ({"name": "x" * 201}, "body.name"),
            ({"description": "x" * 10_001}, "body.description"),
            ({"sql": "", "parameters": []}, "body.sql"),
            ({"sql": "   ", "parameters": []}, "body.sql"),
            ({"sql": "SELECT 1 " + "-" * 100_000, "parameters": []}, "body.sql"),
            ({"tags": ["t"] * 10 + [f"t{index}" for index in range(11)]}, "body.tags"),
            ({"tags": ["x" * 51]}, "body.tags.0"),
            ({"tags": [""]}, "body.tags.0"),
            ({"datasource_id": "not-a-uuid"}, "body.datasource_id"),
            ({"owner": "me"}, "body.owner"),
        ],
    )
    def test_invalid_field(self, org: Org, changes: dict[str, Any], field: str) -> None:
        assert_invalid(org.create(**changes), field)

    def test_missing_fields(self, org: Org) -> None:
        response = org.api.post(QUERIES, json_body={"name": "x"}, token=org.token)
        details = assert_invalid(response, "body.datasource_id")
        assert "body.sql" in {detail["field"] for detail in details}

    def test_sql_at_the_limit_and_repeated_tags(self, org: Org) -> None:
        sql = "SELECT 1 " + "-" * (100_000 - len("SELECT 1 "))
        made = org.created(sql=sql, parameters=[], tags=["a", " a ", "b"])
        assert len(made["sql"]) == 100_000
        assert made["tags"] == ["a", "b"]


class TestTenancyAndRoles:
    def test_other_orgs_datasource_is_404(self, org: Org, other_org: Org) -> None:
        response = org.create(datasource_id=other_org.datasource_id)
        assert response.status == 404, response.body
        assert response.json()["error"]["details"] == [{"field": "body.datasource_id", "issue": "not found"}]
        made = org.created()
        assert org.patch(made["id"], {"datasource_id": other_org.datasource_id}).status == 404
        assert org.create(datasource_id=str(uuid.uuid4())).status == 404

    def test_other_orgs_query_is_404(self, org: Org, other_org: Org) -> None:
        theirs = other_org.created()
        path = f"{QUERIES}/{theirs['id']}"
        assert org.api.get(path, token=org.token).status == 404
        assert org.patch(theirs["id"], {"name": "mine"}).status == 404
        assert org.api.delete(path, token=org.token).status == 404
        assert org.list()["total"] == 0
        assert other_org.api.get(path, token=other_org.token).json()["name"] == theirs["name"]

    def test_viewer_reads_but_does_not_write(self, org: Org, clean_db: str) -> None:
        made = org.created()
        set_role(clean_db, org.account.user_id, "viewer")
        assert org.api.get(f"{QUERIES}/{made['id']}", token=org.token).status == 200
        assert org.list()["total"] == 1
        assert org.create().status == 403
        assert org.patch(made["id"], {"name": "x"}).status == 403
        assert org.api.delete(f"{QUERIES}/{made['id']}", token=org.token).status == 403

    def test_editor_writes(self, org: Org, clean_db: str) -> None:
        set_role(clean_db, org.account.user_id, "editor")
        made = org.created()
        assert org.patch(made["id"], {"name": "x"}).status == 200
        assert org.api.delete(f"{QUERIES}/{made['id']}", token=org.token).status == 204

    def test_needs_authentication(self, api: Any) -> None:
        assert api.get(QUERIES).status == 401


class TestListing:
    def test_filters(self, org: Org, register: Any, clean_db: str) -> None:
        second_datasource = factories.datasource(clean_db, org.account.organization_id)
        first = org.created(name="Alpha", tags=["finance", "weekly"])
        second = org.created(name="Beta", description="churn by cohort", tags=["product"])
        third = org.created(name="Gamma", datasource_id=second_datasource, tags=[])

        def ids(**query: Any) -> set[str]:
            return {item["id"] for item in org.list(**query)["items"]}

        assert ids() == {first["id"], second["id"], third["id"]}
        assert ids(tag="finance") == {first["id"]}
        assert ids(datasource_id=second_datasource) == {third["id"]}
        assert ids(datasource_id=org.datasource_id) == {first["id"], second["id"]}
        assert ids(q="COHORT") == {second["id"]}
        assert ids(q="gam") == {third["id"]}
        assert ids(created_by=org.account.user_id) == {first["id"], second["id"], third["id"]}
        assert ids(created_by=str(uuid.uuid4())) == set()

    def test_created_by_another_member(self, org: Org, clean_db: str) -> None:
        made = org.created()
        colleague = uuid.uuid4()
        with psycopg.connect(clean_db) as conn:
            conn.execute(
                "INSERT INTO users (id, email, name, password_hash) VALUES (%s, %s, 'Col', 'x')",
                (colleague, f"{colleague.hex[:8]}@example.com"),
            )
            conn.execute("UPDATE queries SET created_by = %s WHERE id = %s", (colleague, made["id"]))
        other = org.created()
        assert [item["id"] for item in org.list(created_by=str(colleague))["items"]] == [made["id"]]
        assert [item["id"] for item in org.list(created_by=org.account.user_id)["items"]] == [other["id"]]

    def test_sort_and_paging(self, org: Org) -> None:
        for name in ("b", "c", "a", "e", "d"):
            org.created(name=name)
        page = org.list(sort="name", limit=2, offset=1)
        assert [item["name"] for item in page["items"]] == ["b", "c"]
        assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)
        assert [item["name"] for item in org.list(sort="-name")["items"]] == ["e", "d", "c", "b", "a"]

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ({"sort": "sql"}, "query.sort"),
            ({"datasource_id": "nope"}, "query.datasource_id"),
            ({"created_by": "nope"}, "query.created_by"),
            ({"limit": "0"}, "query.limit"),
        ],
    )
    def test_bad_list_query(self, org: Org, query: dict[str, str], field: str) -> None:
        response = org.api.get(QUERIES, token=org.token, query=query)
        assert response.status == 422, response.body
        assert field in [detail["field"] for detail in response.json()["error"]["details"]]


def test_a_list_page_ends_by_bytes_before_lambdas_limit(api: Any, register: Any, clean_db: str) -> None:
    owner = register()
    datasource_id = factories.datasource(clean_db, owner.organization_id)
    # 99,000 quotes take 396,000 bytes in the proxy response (\\\" each): 20 of them pass Lambda's 6 MB.
    big_sql = "SELECT '" + '"' * 99_000 + "'"
    for _ in range(20):
        factories.query(clean_db, owner.organization_id, datasource_id, sql=big_sql)

    listed = api.get("/api/v1/queries", token=owner.access_token, query={"limit": "200"})
    assert listed.status == 200, listed.body[:300]
    first = listed.json()
    assert 1 < len(first["items"]) < 20
    assert (first["total"], first["truncated_by"]) == (20, "bytes")
    assert first["next_offset"] == len(first["items"])
    rest = api.get(
        "/api/v1/queries",
        token=owner.access_token,
        query={"limit": "200", "offset": str(first["next_offset"])},
    ).json()
    assert len(first["items"]) + len(rest["items"]) == 20
    assert (rest["next_offset"], rest["truncated_by"]) == (None, None)
    assert {item["id"] for item in first["items"]}.isdisjoint(item["id"] for item in rest["items"])
    two = api.get("/api/v1/queries", token=owner.access_token, query={"limit": "2"}).json()
    assert (len(two["items"]), two["next_offset"], two["truncated_by"]) == (2, 2, "rows")
