"""The conventions of API.md that hold for every route: the error envelope on each failure path,
security headers, request ids, CORS, and the OpenAPI document."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel

from infra.local.events import LocalLambdaContext, rest_api_event
from infra.local.template_routes import api_routes
from loupe.api.auth import Editor
from loupe.api.resolver import SECURITY_HEADERS, LoupeResolver, LoupeRouter, create_app
from loupe.api.routes import all_routers
from loupe.config import get_settings

LOGIN = "/api/v1/auth/login"


def exploding_app(error_text: str) -> LoupeResolver:
    """A resolver whose one route, `GET /explode`, raises a RuntimeError saying `error_text`."""
    router = LoupeRouter()

    @router.get("/explode", authenticated=False)
    def explode() -> dict[str, str]:
        raise RuntimeError(error_text)

    app = create_app()
    app.include_router(router)
    return app


@pytest.fixture
def database_down(clean_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The metadata database unreachable: the next connection goes to a closed port."""
    from pydantic import SecretStr

    from loupe import db

    db.close()
    unreachable = get_settings().model_copy(
        update={"database_url": SecretStr("postgresql://u:p@127.0.0.1:1/x")}
    )
    monkeypatch.setattr(db, "get_settings", lambda: unreachable)
    yield
    monkeypatch.undo()
    db.close()
    with db.transaction() as conn:  # the service recovers once the database is back
        conn.execute("SELECT 1")


def assert_envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, response.body
    assert (
        response.header(
            "Content-Type",
        )
        == "application/json"
    )
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert len(error["error_id"]) == 12
    return error


class TestErrorEnvelope:
    def test_malformed_json_is_400(self, api: Any) -> None:
        response = api.post(LOGIN, raw_body='{"email": ', headers={"Content-Type": "application/json"})
        assert_envelope(response, 400, "bad_request")

    @pytest.mark.parametrize(
        "content_type",
        [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",  # no boundary: Powertools' form parser would raise ValueError
            "multipart/form-data; boundary=x",
            "application/xml",
        ],
    )
    def test_a_body_that_is_not_json_is_400(self, api: Any, content_type: str) -> None:
        response = api.post(
            LOGIN,
            raw_body='{"email": "a@example.com", "password": "x"}',
            headers={"Content-Type": content_type},
        )
        error = assert_envelope(response, 400, "bad_request")
        assert "application/json" in error["message"]

    @pytest.mark.parametrize(
        "content_type",
        ["application/json; charset=utf-8", "Application/JSON", "APPLICATION/JSON;charset=UTF-8"],
    )
    def test_json_in_any_case_or_with_a_charset_is_json(self, api: Any, content_type: str) -> None:
        response = api.post(
            LOGIN,
            raw_body='{"email": "nobody@example.com", "password": "wrong-password"}',
            headers={"Content-Type": content_type},
        )
        assert_envelope(response, 401, "unauthorized")

    def test_a_json_body_without_a_content_type_is_400(self, api: Any, register: Any) -> None:
        body = '{"email": "nobody@example.com", "password": "wrong-password"}'
        error = assert_envelope(api.post(LOGIN, raw_body=body), 400, "bad_request")
        assert "application/json" in error["message"]
        account = register()
        assert api.post("/api/v1/canvases", raw_body="{}", token=account.access_token).status == 400
        assert api.post("/api/v1/canvases", raw_body="{}").status == 401

    def test_a_route_without_a_body_needs_no_content_type(self, api: Any, register: Any) -> None:
        """Cancel takes no body: with or without a Content-Type it reaches the route (here, its 404)."""
        account = register()
        path = f"/api/v1/runs/{uuid4()}/cancel"
        for headers in ({}, {"Content-Type": "application/json"}):
            response = api.post(path, headers=headers, token=account.access_token)
            assert_envelope(response, 404, "not_found")

    def test_a_content_type_without_a_body_route_is_ignored(self, api: Any) -> None:
        assert api.get("/api/v1/health", headers={"Content-Type": "multipart/form-data"}).status == 200

    def test_missing_body_is_422(self, api: Any) -> None:
        error = assert_envelope(api.post(LOGIN), 422, "validation_error")
        assert error["details"]

    def test_wrong_types_are_422_with_field_details(self, api: Any) -> None:
        response = api.post(LOGIN, json_body={"email": 42, "password": ["x"]})
        error = assert_envelope(response, 422, "validation_error")
        fields = {detail["field"] for detail in error["details"]}
        assert {"body.email", "body.password"} <= fields

    def test_body_that_is_not_an_object_is_422(self, api: Any) -> None:
        assert_envelope(api.post(LOGIN, json_body=[1, 2, 3]), 422, "validation_error")

    def test_unknown_route_is_404(self, api: Any) -> None:
        response = api.get("/api/v1/no-such-thing")
        assert response.function == "HealthFunction"
        assert_envelope(response, 404, "not_found")

    def test_unknown_route_inside_a_function_is_404(self, api: Any) -> None:
        assert_envelope(api.get("/api/v1/auth/nothing-here"), 404, "not_found")

    def test_wrong_method_is_405_with_allow(self, api: Any) -> None:
        response = api.request("PUT", LOGIN, json_body={})
        assert_envelope(response, 405, "method_not_allowed")
        assert response.header("Allow") == "POST"

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ("[" * 65 + "]" * 65, "deeper than 64"),
            ("[" * 100_000, "deeper than 64"),
            ('{"a":' * 5000 + "1" + "}" * 5000, "deeper than 64"),
            ('{"email": ' + "9" * 5000 + "}", "longer than 400"),
            ('{"email": -' + "1" * 400 + "}", "longer than 400"),
            ('{"email": 1e' + "9" * 500 + "}", "longer than 400"),
        ],
    )
    def test_a_body_too_deep_or_with_a_huge_number_is_400(self, api: Any, body: str, message: str) -> None:
        headers = {"Content-Type": "application/json"}
        error = assert_envelope(api.post(LOGIN, raw_body=body, headers=headers), 400, "bad_request")
        assert message in error["message"]

    def test_nesting_up_to_the_limit_and_brackets_in_strings_are_parsed(
        self, api: Any, register: Any
    ) -> None:
        account = register()
        nested: Any = 1
        for _ in range(60):  # the body, nodes, the node and its data make four levels more: 64
            nested = [nested]
        node = {"id": "n1", "type": "note", "position": {"x": 0, "y": 0}}
        data = {"deep": nested, "text": "[{" * 100 + "9" * 500, "big": 1e308, "small": -1e-300}
        response = api.post(
            "/api/v1/canvases",
            json_body={"name": "brackets [[[", "time_preset": "last_7d", "nodes": [node | {"data": data}]},
            token=account.access_token,
        )
        assert response.status == 201, response.body
        stored = response.json()["nodes"][0]["data"]
        assert stored["deep"] == nested
        assert stored["text"] == data["text"]
        # jsonb writes doubles in full (309 digits for 1e308): read back, the body is still accepted.
        assert float(stored["big"]) == 1e308
        assert float(stored["small"]) == -1e-300
        again = api.post(
            "/api/v1/canvases",
            json_body={"name": "again", "time_preset": "last_7d", "nodes": [node | {"data": stored}]},
            token=account.access_token,
        )
        assert again.status == 201, again.body
        deeper = api.post(
            "/api/v1/canvases",
            json_body={
                "name": "too deep",
                "time_preset": "last_7d",
                "nodes": [node | {"data": {"deep": [nested]}}],
            },
            token=account.access_token,
        )
        assert_envelope(deeper, 400, "bad_request")

    def test_a_body_that_is_not_utf8_is_400(self, api: Any, register: Any) -> None:
        # Found by schemathesis: a binary body reached the route's validation as undecodable bytes.
        body = b"\xb3\xff\x00LL\xfe"
        headers = {"Content-Type": "application/json"}
        anonymous = api.post(LOGIN, raw_body=body, headers=headers)
        assert_envelope(anonymous, 400, "bad_request")
        account = register()
        signed_in = api.post("/api/v1/canvases", raw_body=body, headers=headers, token=account.access_token)
        assert_envelope(signed_in, 400, "bad_request")
        assert api.post("/api/v1/canvases", raw_body=body, headers=headers).status == 401

    def test_oversized_body_is_413(self, api: Any) -> None:
        too_big = "x" * (get_settings().max_body_bytes + 1)
        response = api.post(LOGIN, json_body={"email": "a@example.com", "password": too_big})
        assert_envelope(response, 413, "payload_too_large")
        assert response.header("X-Request-Id")

    def test_unhandled_exception_is_500_with_logged_error_id(self, clean_db: str, read_logs: Any) -> None:
        app = exploding_app("secret internal detail /srv/app.py")
        result = app.resolve(rest_api_event("GET", "/api/v1/explode"), LocalLambdaContext("test"))
        assert result["statusCode"] == 500
        body = json.loads(result["body"])
        assert body["error"]["code"] == "internal_error"
        assert "secret internal detail" not in result["body"]
        lines = read_logs()
        failure = next(entry for entry in lines if entry.get("message") == "unhandled error")
        assert failure["error_id"] == body["error"]["error_id"]
        assert "secret internal detail" in failure["exception"]
        assert failure["fingerprint"] == "GET /explode RuntimeError"
        emitted = [line for line in lines if "_aws" in line]
        assert {"fingerprint": "GET /explode RuntimeError", "UnhandledErrors": [1.0]}.items() <= next(
            line for line in emitted if "UnhandledErrors" in line
        ).items()
        totals = [line for line in emitted if "UnhandledErrors" in line and "fingerprint" not in line]
        assert [line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] for line in totals] == [[[]]]
        request = next(line for line in emitted if line.get("route") == "GET /explode")
        assert (request["Requests"], request["ServerErrors"], request["ClientErrors"]) == (
            [1.0],
            [1.0],
            [0.0],
        )

    def test_database_down_is_503(self, database_down: None) -> None:
        router = LoupeRouter()

        @router.get("/needs-db", authenticated=False)
        def needs_db() -> dict[str, str]:
            return {"ok": "yes"}

        app = create_app()
        app.include_router(router)
        result = app.resolve(rest_api_event("GET", "/api/v1/needs-db"), LocalLambdaContext("test"))
        assert result["statusCode"] == 503
        assert json.loads(result["body"])["error"]["code"] == "service_unavailable"
        assert "127.0.0.1" not in result["body"]


class TestHeaders:
    @pytest.mark.parametrize(
        ("method", "path"),
        [("GET", "/api/v1/health"), ("POST", LOGIN), ("GET", "/api/v1/nowhere"), ("GET", "/api/v1/auth/me")],
    )
    def test_security_headers_and_request_id_on_every_response(
        self, api: Any, method: str, path: str
    ) -> None:
        response = api.request(method, path, json_body={"email": "a@example.com", "password": "x"})
        for name, value in SECURITY_HEADERS.items():
            assert response.header(name) == value, name
        assert response.header("X-Request-Id")

    def test_request_id_is_api_gateways(self, clean_db: str) -> None:
        from infra.local.template_routes import load_handler

        event = rest_api_event("GET", "/api/v1/health")
        result = load_handler("HealthFunction")(event, LocalLambdaContext("health"))
        assert result["multiValueHeaders"]["X-Request-Id"] == [event["requestContext"]["requestId"]]

    def test_access_log_line_without_secrets(self, api: Any, register: Any, read_logs: Any) -> None:
        account = register()
        api.get("/api/v1/auth/me", token=account.access_token)
        lines = read_logs()
        access = [line for line in lines if line.get("message") == "request"][-1]
        assert access["method"] == "GET"
        assert access["status"] == 200
        assert access["route"] == "GET /auth/me"  # the matched route, not the gateway's proxy resource
        assert access["user_id"] == account.user_id
        assert access["organization_id"] == account.organization_id
        assert isinstance(access["duration_ms"], float)
        assert access["correlation_id"]
        assert account.access_token not in json.dumps(lines)


class TestRequestLine:
    """Each request writes one line: its access record, its invocation's log context and its metrics."""

    def test_one_line_is_the_access_record_and_the_metrics(
        self, api: Any, register: Any, read_logs: Any
    ) -> None:
        account = register()
        response = api.get("/api/v1/auth/me", token=account.access_token)
        lines = read_logs()
        ours = [line for line in lines if line.get("correlation_id") == response.header("X-Request-Id")]
        assert len(ours) == 1
        (line,) = ours
        assert [other for other in lines if other.get("route") == "GET /auth/me"] == ours
        assert (line["level"], line["message"], line["status"], line["function_name"]) == (
            "INFO",
            "request",
            200,
            "AuthFunction",
        )
        assert (line["Requests"], line["Latency"], line["ClientErrors"], line["ServerErrors"]) == (
            [1.0],
            [line["duration_ms"]],
            [0.0],
            [0.0],
        )
        (directive,) = line["_aws"]["CloudWatchMetrics"]
        assert "route" in directive["Dimensions"][0]  # and the function's service, where it names one
        assert {metric["Name"] for metric in directive["Metrics"]} == {
            "Requests",
            "Latency",
            "ClientErrors",
            "ServerErrors",
        }
        assert isinstance(line["_aws"]["Timestamp"], int)

    def test_a_path_no_route_matches_is_written_masked(self, clean_db: str, read_logs: Any) -> None:
        token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXNlY3JldA"
        result = exploding_app("boom").resolve(
            rest_api_event("GET", f"/api/v1/files/{token}"), LocalLambdaContext("test")
        )
        assert result["statusCode"] == 404
        lines = read_logs()
        assert token not in json.dumps(lines)
        (line,) = [line for line in lines if line.get("message") == "request"]
        assert line["route"].endswith("/files/****")
        assert line["ClientErrors"] == [1.0]

    def test_a_context_key_json_cannot_hold_is_written_as_text(self, clean_db: str, read_logs: Any) -> None:
        from loupe.observability import logger

        marker = uuid4()
        logger.append_keys(batch=marker)
        try:
            exploding_app("boom").resolve(
                rest_api_event("GET", "/api/v1/explode"), LocalLambdaContext("test")
            )
        finally:
            logger.remove_keys(["batch"])
        (line,) = [line for line in read_logs() if line.get("message") == "request"]
        assert (line["batch"], line["status"]) == (str(marker), 500)

    def test_written_at_any_log_level_and_without_metrics(
        self, clean_db: str, read_logs: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from loupe.observability import logger

        level = logger.log_level
        logger.setLevel("ERROR")
        try:
            exploding_app("boom").resolve(
                rest_api_event("GET", "/api/v1/explode"), LocalLambdaContext("test")
            )
            monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
            exploding_app("boom").resolve(
                rest_api_event("GET", "/api/v1/explode"), LocalLambdaContext("test")
            )
        finally:
            logger.setLevel(level)
        requests = [line for line in read_logs() if line.get("message") == "request"]
        assert [(line["route"], line["status"], "_aws" in line) for line in requests] == [
            ("GET /explode", 500, True),
            ("GET /explode", 500, False),
        ]


class TestCors:
    def test_allowed_origin_gets_cors_headers(self, clean_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
        from loupe.api import resolver

        with_cors = get_settings().model_copy(update={"cors_origins": ("https://app.example.com",)})
        monkeypatch.setattr(resolver, "get_settings", lambda: with_cors)
        app = create_app(with_database=False)
        for router in all_routers()[:1]:
            app.include_router(router)
        allowed = app.resolve(
            rest_api_event("GET", "/api/v1/health", headers={"Origin": "https://app.example.com"}),
            LocalLambdaContext("health"),
        )
        assert allowed["multiValueHeaders"]["Access-Control-Allow-Origin"] == ["https://app.example.com"]
        refused = app.resolve(
            rest_api_event("GET", "/api/v1/health", headers={"Origin": "https://evil.example"}),
            LocalLambdaContext("health"),
        )
        assert "Access-Control-Allow-Origin" not in refused["multiValueHeaders"]

    def test_no_cors_by_default(self, api: Any) -> None:
        response = api.get("/api/v1/health", headers={"Origin": "https://app.example.com"})
        assert response.header("Access-Control-Allow-Origin") is None


class TestOpenApi:
    def test_document_is_valid_openapi_3(self, api: Any) -> None:
        response = api.get("/api/v1/openapi.json")
        assert response.status == 200
        document = response.json()
        assert document["openapi"].startswith("3.")
        validate(document)

    def test_every_route_is_documented_with_errors(self, api: Any) -> None:
        document = api.get("/api/v1/openapi.json").json()
        for router in all_routers():
            for (rule, methods, *_), _route in router._routes.items():
                if rule in ("/openapi.json", "/docs"):
                    continue
                path = rule.replace("<", "{").replace(">", "}")
                methods = methods if isinstance(methods, tuple) else (methods,)
                for method in methods:
                    if method == "OPTIONS":
                        continue  # the guest routes' CORS preflights: answered, not part of the contract
                    operation = document["paths"][path][method.lower()]
                    assert "422" in operation["responses"], (path, method)
                    assert "500" in operation["responses"], (path, method)
        me = document["paths"]["/auth/me"]["get"]
        assert me["security"] == [{"bearerAuth": []}, {"apiKey": []}]
        assert "401" in me["responses"]
        assert "security" not in document["paths"]["/auth/login"]["post"]
        assert document["servers"] == [{"url": "/api/v1"}]

    def test_every_documented_path_is_routed_by_the_template(self, api: Any) -> None:
        document = api.get("/api/v1/openapi.json").json()
        from infra.local.template_routes import find_route

        for path in document["paths"]:
            found = find_route("GET", "/api/v1" + path.replace("{", "").replace("}", ""))
            assert found is not None, path
            assert found[0].path != "/api/v1/{proxy+}", f"{path} would reach only the catch-all"
        assert api_routes()

    def test_swagger_ui_page(self, api: Any) -> None:
        response = api.get("/api/v1/docs")
        assert response.status == 200
        assert response.header(
            "Content-Type",
        ).startswith("text/html")
        assert "SwaggerUIBundle" in response.body
        assert '"/auth/login"' in response.body
        assert "script-src 'unsafe-inline'" in (response.header("Content-Security-Policy") or "")
        # An icon of its own, so the browser does not ask for /favicon.ico outside the API.
        assert '<link rel="icon" href="data:,">' in response.body.split("</head>")[0]


class TestHealth:
    def test_liveness(self, api: Any) -> None:
        response = api.get("/api/v1/health")
        assert response.status == 200
        assert response.json() == {"status": "ok"}

    def test_readiness(self, api: Any) -> None:
        response = api.get("/api/v1/health/ready")
        assert response.status == 200
        assert response.json() == {"status": "ok", "checks": {"database": "ok"}}

    def test_readiness_503_when_database_is_down(self, api: Any, database_down: None) -> None:
        response = api.get("/api/v1/health/ready")
        assert response.status == 503
        assert response.json() == {"status": "unavailable", "checks": {"database": "unavailable"}}


class Thing(BaseModel):
    name: str


class TestAccessBeforeValidation:
    """A caller who may not use a route learns nothing of its schema: 401 and 403 come before 422."""

    def test_anonymous_with_a_bad_body_is_401(self, api: Any) -> None:
        response = api.post("/api/v1/auth/logout", json_body={"unexpected": True})
        assert_envelope(response, 401, "unauthorized")

    def test_malformed_json_from_anonymous_is_401(self, api: Any) -> None:
        response = api.post("/api/v1/auth/logout", raw_body="{", headers={"Content-Type": "application/json"})
        assert_envelope(response, 401, "unauthorized")

    def test_role_is_checked_before_the_body(self, register: Any, clean_db: str) -> None:
        router = LoupeRouter()

        @router.post("/editors-only")
        def editors_only(body: Thing, caller: Editor) -> dict[str, str]:
            return {"name": body.name}

        app = create_app()
        app.include_router(router)
        account = register()
        with psycopg.connect(clean_db) as conn:
            conn.execute("UPDATE memberships SET role = 'viewer' WHERE user_id = %s", (account.user_id,))

        def post(body: str) -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {account.access_token}", "Content-Type": "application/json"}
            event = rest_api_event("POST", "/api/v1/editors-only", headers=headers, body=body)
            return app.resolve(event, LocalLambdaContext("test"))

        assert post('{"wrong": 1}')["statusCode"] == 403
        assert post('{"name": "x"}')["statusCode"] == 403
        with psycopg.connect(clean_db) as conn:
            conn.execute("UPDATE memberships SET role = 'editor' WHERE user_id = %s", (account.user_id,))
        assert post('{"wrong": 1}')["statusCode"] == 422
        assert post('{"name": "x"}')["statusCode"] == 200


class TestUnstorableValues:
    @pytest.mark.parametrize(
        ("path", "body"),
        [
            ("/api/v1/dashboards", {"name": "nul\u0000inside", "tiles": []}),
            (
                "/api/v1/canvases",
                {"name": "c", "time_preset": "last_7d", "nodes": [], "edges": [], "tags": ["a\u0000"]},
            ),
        ],
    )
    def test_a_nul_character_is_422_not_500(
        self, api: Any, register: Any, path: str, body: dict[str, Any]
    ) -> None:
        account = register()
        response = api.post(path, json_body=body, token=account.access_token)
        assert_envelope(response, 422, "validation_error")

    def test_registration_with_a_nul_character_is_422(self, api: Any) -> None:
        body = {
            "email": "nul@example.com",
            "password": "long enough",
            "name": "a\u0000b",
            "organization_name": "O",
        }
        assert_envelope(api.post("/api/v1/auth/register", json_body=body), 422, "validation_error")


class TestContract:
    """What a generated client relies on: Location on every create, an ETag on every single read, and no
    query parameter quietly ignored."""

    def test_an_unknown_query_parameter_is_a_422_that_names_it(self, api: Any, register: Any) -> None:
        token = register().access_token
        listed = api.get("/api/v1/queries", query={"updated_afer": "2026-01-01T00:00:00Z"}, token=token)
        error = assert_envelope(listed, 422, "validation_error")
        assert [detail["field"] for detail in error["details"]] == ["query.updated_afer"]
        single = api.get("/api/v1/auth/me", query={"verbose": "1", "limit": "2"}, token=token)
        error = assert_envelope(single, 422, "validation_error")
        assert [detail["field"] for detail in error["details"]] == ["query.limit", "query.verbose"]
        # Credentials are judged first, as for any other invalid request.
        assert_envelope(api.get("/api/v1/queries", query={"nope": "1"}), 401, "unauthorized")

    def test_lists_filter_on_updated_at(self, api: Any, register: Any, clean_db: str) -> None:
        from tests import factories

        account = register()
        factories.datasource(clean_db, account.organization_id)

        def total(**query: str) -> int:
            response = api.get("/api/v1/datasources", query=query, token=account.access_token)
            assert response.status == 200, response.body
            count: int = response.json()["total"]
            return count

        assert total(updated_after="2000-01-01T00:00:00Z") == 1
        assert total(updated_after="2999-01-01T00:00:00Z") == 0
        assert total(updated_before="2000-01-01T00:00:00Z") == 0

    def test_api_keys_and_invitations_are_created_with_a_location(self, api: Any, register: Any) -> None:
        token = register().access_token
        key = api.post("/api/v1/api-keys", json_body={"name": "ci", "role": "viewer"}, token=token)
        assert key.status == 201, key.body
        assert key.header("Location") == f"/api/v1/api-keys/{key.json()['id']}"
        invited = api.post(
            "/api/v1/organizations/invitations",
            json_body={"email": "new@example.com", "role": "viewer"},
            token=token,
        )
        assert invited.status == 201, invited.body
        assert invited.header("Location") == f"/api/v1/organizations/invitations/{invited.json()['id']}"

    def test_the_profile_has_an_etag(self, api: Any, register: Any) -> None:
        token = register().access_token
        me = api.get("/api/v1/auth/me", token=token)
        etag = me.header("ETag")
        assert me.status == 200
        assert etag
        assert re.fullmatch(r'"[0-9a-f]{32}"', etag), etag  # one strong entity tag, quoted once
        again = api.get("/api/v1/auth/me", token=token, headers={"If-None-Match": etag})
        assert again.status == 304
        assert again.body == ""
        assert again.header("ETag") == etag
