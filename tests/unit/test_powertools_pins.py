"""The Powertools internals loupe.api.resolver relies on, pinned: each test fails on an upgrade that
changes one of them, before a request in production finds out.

Powertools offers no public hook for these: the body parser and the handler of its validation
middleware (JSON only, media types compared in any case; unknown query parameters refused), the route
tables (405 with Allow), the matched route kept in `context["_route"]` with its dependant's query
parameters (route names in logs and metrics, 401/403 before 422, the parameters a route declares), and
the dependency-tree builder and type-hint reader that the resolver memoizes (Powertools rebuilds each
route's tree and reads each dependency's hints on every request), and what the validation middleware reads
of a request (a route that declares none of it skips the middleware)."""

from __future__ import annotations

import inspect
import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Depends
from aws_lambda_powertools.event_handler import depends as powertools_depends
from aws_lambda_powertools.event_handler.api_gateway import Route, _registered_api_adapter
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    OpenAPIRequestValidationMiddleware,
)
from pydantic import BaseModel

from infra.local.events import LocalLambdaContext, rest_api_event
from loupe.api.resolver import JsonRequestValidation, LoupeResolver, LoupeRouter, declares_parameters


class Thing(BaseModel):
    name: str


def make_app() -> tuple[LoupeResolver, list[Any]]:
    seen_routes: list[Any] = []
    router = LoupeRouter()
    app = LoupeResolver(cors=None, with_database=False)

    @router.post("/things", authenticated=False)
    def create_thing(body: Thing) -> Thing:
        seen_routes.append(app.context.get("_route"))
        return body

    @router.get("/things/<thing_id>", authenticated=False)
    def get_thing(thing_id: str) -> Thing:
        seen_routes.append(app.context.get("_route"))
        return Thing(name=thing_id)

    app.include_router(router)
    return app, seen_routes


def call(app: LoupeResolver, method: str, path: str, **request: Any) -> dict[str, Any]:
    event = rest_api_event(method, f"/api/v1{path}", **request)
    return app.resolve(event, LocalLambdaContext("pins", 10, 128))  # type: ignore[arg-type]


def test_the_validation_middleware_is_an_attribute_we_can_replace() -> None:
    app, _ = make_app()
    middleware = app._request_validation_middleware
    assert isinstance(middleware, JsonRequestValidation)
    assert isinstance(middleware, OpenAPIRequestValidationMiddleware)


def test_the_body_parser_we_override_keeps_its_signature() -> None:
    overridden = inspect.signature(OpenAPIRequestValidationMiddleware._get_body)
    assert list(overridden.parameters) == ["self", "app"]
    helper = inspect.signature(OpenAPIRequestValidationMiddleware._parse_json_data)
    assert list(helper.parameters) == ["self", "app"]


def test_our_body_parser_is_the_one_used() -> None:
    app, _ = make_app()
    refused = call(app, "POST", "/things", headers={"Content-Type": "multipart/form-data"}, body="name=x")
    assert refused["statusCode"] == 400
    assert "Unsupported content type" in json.loads(refused["body"])["error"]["message"]
    accepted = call(
        app, "POST", "/things", headers={"Content-Type": "Application/JSON"}, body='{"name": "x"}'
    )
    assert accepted["statusCode"] == 200, accepted["body"]


def test_the_route_tables_give_405_with_allow() -> None:
    app, _ = make_app()
    routes = app._static_routes + app._dynamic_routes
    assert routes
    assert all(isinstance(route, Route) for route in routes)
    assert app._remove_prefix("/api/v1/things") == "/things"
    answer = call(app, "DELETE", "/things/7")
    assert answer["statusCode"] == 405
    assert answer["multiValueHeaders"]["Allow"] == ["GET"]


def test_the_matched_route_is_in_the_context() -> None:
    app, seen = make_app()
    assert call(app, "GET", "/things/7")["statusCode"] == 200
    (route,) = seen
    assert isinstance(route, Route)
    assert (route.method, route.path) == ("GET", "/things/<thing_id>")
    assert route.func.__name__ == "get_thing"


def test_a_routes_declared_query_parameters_are_on_its_dependant() -> None:
    app, _ = make_app()
    refused = call(app, "GET", "/things/7", query={"unexpected": ["1"]})
    assert refused["statusCode"] == 422
    details = json.loads(refused["body"])["error"]["details"]
    assert details == [{"field": "query.unexpected", "issue": "unknown query parameter"}]
    signature = inspect.signature(OpenAPIRequestValidationMiddleware.handler)
    assert list(signature.parameters) == ["self", "app", "next_middleware"]


resolved: list[str] = []


def who() -> str:
    resolved.append("me")
    return "me"


def test_the_dependency_tree_builder_is_looked_up_per_request_and_ours_is_used() -> None:
    # Powertools imports it inside the adapter at each call, so the memoized module attribute is the one used.
    assert "import build_dependency_tree" in inspect.getsource(_registered_api_adapter)
    assert hasattr(powertools_depends.build_dependency_tree, "cache_info")
    router = LoupeRouter()
    app = LoupeResolver(cors=None, with_database=False)
    resolved.clear()

    @router.get("/whoami", authenticated=False)
    def whoami(name: Annotated[str, Depends(who)]) -> Thing:
        return Thing(name=name)

    app.include_router(router)
    before = powertools_depends.build_dependency_tree.cache_info().hits
    for _ in range(2):
        answer = call(app, "GET", "/whoami")
        assert answer["statusCode"] == 200, answer["body"]
        assert json.loads(answer["body"]) == {"name": "me"}
    assert resolved == ["me", "me"]  # the tree is kept; its dependencies still run on every request
    assert powertools_depends.build_dependency_tree.cache_info().hits > before


def test_the_type_hints_of_a_dependency_are_read_through_the_memoized_module_attribute() -> None:
    assert "get_type_hints(use_fn)" in inspect.getsource(powertools_depends.solve_dependencies)
    assert hasattr(powertools_depends.get_type_hints, "cache_info")
    router = LoupeRouter()
    app = LoupeResolver(cors=None, with_database=False)

    @router.get("/whoami-again", authenticated=False)
    def whoami_again(name: Annotated[str, Depends(who)]) -> Thing:
        return Thing(name=name)

    app.include_router(router)
    assert call(app, "GET", "/whoami-again")["statusCode"] == 200
    before = powertools_depends.get_type_hints.cache_info().hits
    assert call(app, "GET", "/whoami-again")["statusCode"] == 200
    assert powertools_depends.get_type_hints.cache_info().hits > before


def test_the_validation_middleware_reads_only_what_a_route_declares() -> None:
    # A route that declares none of these skips Powertools' middleware: it would validate nothing.
    source = inspect.getsource(OpenAPIRequestValidationMiddleware.handler)
    for declared in ("path_params", "query_params", "header_params", "cookie_params", "body_params"):
        assert f"route.dependant.{declared}" in source
    assert 'app.context["_route_args"] = values' in source
    app, seen = make_app()
    router = LoupeRouter()

    @router.get("/plain", authenticated=False)
    def plain() -> Thing:
        seen.append(app.context.get("_route"))
        return Thing(name="plain")

    app.include_router(router)
    assert json.loads(call(app, "GET", "/plain")["body"]) == {"name": "plain"}
    assert json.loads(call(app, "GET", "/things/7")["body"]) == {"name": "7"}
    plain_route, thing_route = seen
    assert not declares_parameters(plain_route)
    assert declares_parameters(thing_route)
