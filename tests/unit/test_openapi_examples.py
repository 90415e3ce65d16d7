"""The OpenAPI document's examples: every request body and success response shows one, and each example
is valid for its model and for the rules its service adds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel

from loupe.api.openapi import whole_api_document
from loupe.api.resolver import LoupeResolver
from loupe.api.routes import all_routers
from loupe.models import (
    api_keys,
    audit,
    auth,
    canvases,
    common,
    dashboards,
    datasources,
    organizations,
    queries,
    schedules,
    visualizations,
)
from loupe.services.canvases import graph_issues
from loupe.services.dashboards import find_overlap
from loupe.services.query_parameters import checked_parameters, placeholders
from loupe.services.schedules import checked_cron, next_run_at
from loupe.services.visualizations import checked_options

MODEL_MODULES: tuple[ModuleType, ...] = (
    api_keys,
    audit,
    auth,
    canvases,
    common,
    dashboards,
    datasources,
    organizations,
    queries,
    schedules,
    visualizations,
)
SUCCESS = ("200", "201")


def model_examples(model: type[BaseModel]) -> list[dict[str, Any]]:
    extra = model.model_config.get("json_schema_extra")
    examples = extra.get("examples", []) if isinstance(extra, dict) else []
    assert isinstance(examples, list)
    objects = [example for example in examples if isinstance(example, dict)]
    assert len(objects) == len(examples), f"{model.__name__} has an example that is not an object"
    return objects


def annotated_models() -> Iterator[type[BaseModel]]:
    for module in MODEL_MODULES:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseModel)
                and value.__module__ == module.__name__
                and model_examples(value)
            ):
                yield value


EXAMPLES = [
    pytest.param(model, example, id=f"{model.__name__}-{index}")
    for model in annotated_models()
    for index, example in enumerate(model_examples(model))
]


def only_example(model: type[BaseModel]) -> dict[str, Any]:
    (example,) = model_examples(model)
    return example


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(whole_api_document())
    return parsed


def resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].removeprefix("#/components/schemas/")]
    return schema


def shown_schema(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The schema whose examples a reader sees: for a list page, that of its items."""
    schema = resolved(document, schema)
    if schema.get("title", "").startswith("Page["):
        return resolved(document, schema["properties"]["items"]["items"])
    return schema


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def test_the_document_with_examples_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)


def test_every_request_body_has_an_example(document: dict[str, Any]) -> None:
    bodies = {
        name: operation["requestBody"]["content"]["application/json"]["schema"]
        for name, operation in operations(document)
        if "requestBody" in operation
    }
    assert "POST /queries" in bodies
    missing = sorted(
        name for name, schema in bodies.items() if not resolved(document, schema).get("examples")
    )
    assert missing == []


def test_every_operation_documents_its_success(document: dict[str, Any]) -> None:
    undocumented = [
        name
        for name, operation in operations(document)
        if not any(str(status).startswith(("2", "3")) for status in operation["responses"])
    ]
    assert undocumented == []


def test_every_documented_success_response_has_an_example(document: dict[str, Any]) -> None:
    responses = {
        f"{name} {status}": content["application/json"]["schema"]
        for name, operation in operations(document)
        for status, response in operation["responses"].items()
        if status in SUCCESS
        and (content := response.get("content"))
        and "application/json" in content
        # A route that returns nothing (an empty body) has a `null` schema: there is nothing to show.
        and content["application/json"]["schema"].get("type") != "null"
    }
    assert "GET /queries/{resource_id} 200" in responses
    missing = sorted(
        name for name, schema in responses.items() if not shown_schema(document, schema).get("examples")
    )
    assert missing == []


def test_every_model_a_route_returns_has_an_example() -> None:
    """Read off the routes themselves, so a model the document does not reach is still checked."""
    app = LoupeResolver(cors=None, with_database=False)
    for router in all_routers():
        app.include_router(router)
    returned: dict[str, type[BaseModel]] = {}
    for route in app._static_routes + app._dynamic_routes:
        model = route.dependant.return_param.type_ if route.dependant.return_param else None
        # Page[X] shows X's examples; a page model of its own (a subclass) has examples of its own.
        if (
            isinstance(model, type)
            and issubclass(model, common.Page)
            and model.__pydantic_generic_metadata__["args"]
        ):
            (model,) = model.__pydantic_generic_metadata__["args"]
        # The health probes' models are not a resource's.
        if (
            isinstance(model, type)
            and issubclass(model, BaseModel)
            and model.__module__.startswith("loupe.models")
        ):
            returned[f"{route.method} {route.openapi_path}"] = model
    assert returned["GET /audit-events"] is audit.AuditEventOut
    missing = sorted(name for name, model in returned.items() if not model_examples(model))
    assert missing == []


@pytest.mark.parametrize(("model", "example"), EXAMPLES)
def test_each_example_is_valid_for_its_model(model: type[BaseModel], example: dict[str, Any]) -> None:
    model.model_validate(example)
    assert model.model_json_schema()["examples"] == [example]


def test_the_visualization_examples_have_options_of_their_type() -> None:
    for model in (visualizations.VisualizationCreate, visualizations.VisualizationUpdate):
        example = only_example(model)
        checked_options(example["type"], example["options"])
    shown = only_example(visualizations.VisualizationOut)
    assert checked_options(shown["type"], shown["options"]) == shown["options"]


def test_the_dashboard_example_tiles_do_not_overlap() -> None:
    created = dashboards.DashboardCreate.model_validate(only_example(dashboards.DashboardCreate))
    assert len(created.tiles) == 2
    assert find_overlap(created.tiles) is None


def test_the_query_examples_declare_each_placeholder() -> None:
    for model in (queries.QueryCreate, queries.QueryOut):
        example = only_example(model)
        assert placeholders(example["sql"]) == [parameter["name"] for parameter in example["parameters"]]


def test_the_schedule_examples_fit_their_cron_and_query() -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    for model in (schedules.ScheduleCreate, schedules.ScheduleUpdate):
        checked_cron(only_example(model)["cron"], now)
    created = only_example(schedules.ScheduleCreate)
    checked_parameters(only_example(queries.QueryCreate)["parameters"], created["parameters"])
    shown = schedules.ScheduleOut.model_validate(only_example(schedules.ScheduleOut))
    assert shown.last_run_at is not None
    assert shown.next_run_at == next_run_at(shown.cron, shown.timezone, shown.last_run_at)


def test_the_canvas_examples_are_whole_graphs() -> None:
    for model in (canvases.CanvasCreate, canvases.CanvasOut):
        canvas = model.model_validate(only_example(model))
        assert isinstance(canvas, canvases.CanvasCreate | canvases.CanvasOut)
        assert len(canvas.nodes) == 2
        assert len(canvas.edges) == 1
        assert graph_issues(canvas.nodes, canvas.edges) == []


def test_secrets_in_examples_are_placeholders_or_masked() -> None:
    sent = only_example(datasources.DatasourceCreate)["connection_string"]
    shown = only_example(datasources.DatasourceOut)["connection_string"]
    assert ":REDACTED@" in sent
    assert ":****@" in shown
    created = only_example(api_keys.ApiKeyCreated)
    assert created["key"].startswith(created["prefix"])
    assert created["prefix"].startswith("lk_")
    assert "key" not in only_example(api_keys.ApiKeyOut)
    assert only_example(organizations.InvitationCreated)["token"]
    assert "token" not in only_example(organizations.InvitationOut)
