"""The OpenAPI document as a generated client reads it: named operations, declared headers, bodiless
304 and 204, enums, and the visualization bodies as unions discriminated by `type`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from loupe.api.openapi import whole_api_document
from loupe.models.visualizations import OPTIONS_BY_TYPE


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(whole_api_document())
    return parsed


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def header_parameters(operation: dict[str, Any]) -> set[str]:
    return {parameter["name"] for parameter in operation.get("parameters", []) if parameter["in"] == "header"}


def test_operation_ids_are_camel_case_unique_and_chosen(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))
    assert [name for name in ids if not re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", name)] == []
    named = {(method, path): operation["operationId"] for method, path, operation in operations(document)}
    assert named[("POST", "/queries")] == "createQuery"
    assert named[("GET", "/queries/{query_id}/runs")] == "listQueryRuns"
    assert named[("GET", "/runs/{run_id}/results")] == "getRunResults"


def test_each_operation_has_the_tag_of_its_resource(document: dict[str, Any]) -> None:
    for _, path, operation in operations(document):
        assert len(operation["tags"]) == 1, path


def test_responses_without_a_body_document_none(document: dict[str, Any]) -> None:
    for _, _, operation in operations(document):
        for status in ("204", "304"):
            assert "content" not in operation["responses"].get(status, {})


def test_every_single_resource_read_has_an_etag_and_if_none_match(document: dict[str, Any]) -> None:
    conditional = [
        (method, path, operation)
        for method, path, operation in operations(document)
        if method == "GET" and "304" in operation["responses"]
    ]
    assert {path for _, path, _ in conditional} >= {"/queries/{resource_id}", "/runs/{run_id}", "/auth/me"}
    for method, path, operation in operations(document):
        if method == "GET" and path.endswith("}") and not path.endswith(("/results", "/export", "/schema")):
            assert "304" in operation["responses"], path
    for _, path, operation in conditional:
        assert "If-None-Match" in header_parameters(operation), path
        for status in ("200", "304"):
            assert "ETag" in operation["responses"][status]["headers"], (path, status)


def test_writes_that_may_answer_412_take_if_match(document: dict[str, Any]) -> None:
    guarded = [
        (path, operation) for _, path, operation in operations(document) if "412" in operation["responses"]
    ]
    assert len(guarded) > 10
    for path, operation in guarded:
        assert "If-Match" in header_parameters(operation), path


def test_response_headers_are_declared(document: dict[str, Any]) -> None:
    headers = document["components"]["headers"]
    assert set(headers) == {
        "ETag",
        "Location",
        "Retry-After",
        "X-Request-Id",
        "Content-Disposition",
        "Loupe-Run-Id",
    }
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            declared = response.get("headers", {})
            assert "X-Request-Id" in declared, (method, path, status)
            if status in ("429", "503"):
                assert "Retry-After" in declared, (method, path, status)
            if status in ("201", "302") or (method == "POST" and path.endswith("/runs") and status < "300"):
                assert "Location" in declared, (method, path, status)
            if path.endswith("/render") and status == "200":
                assert "Content-Disposition" in declared, (method, path, status)


def test_lists_of_edited_resources_filter_on_updated_at(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]

    def named(reference: dict[str, Any]) -> dict[str, Any]:
        return schemas[reference["$ref"].rsplit("/", 1)[-1]] if "$ref" in reference else reference

    checked = 0
    for method, path, operation in operations(document):
        success = operation["responses"].get("200", {}).get("content", {}).get("application/json", {})
        page = named(success.get("schema", {})) if method == "GET" else {}
        if not page.get("title", "").startswith("Page["):
            continue
        item = named(page["properties"]["items"]["items"])
        fields = set(item.get("properties", {})).union(
            *(named(variant)["properties"] for variant in item.get("oneOf", []))
        )
        names = {parameter["name"] for parameter in operation["parameters"]}
        if "updated_at" in fields and "created_after" in names:
            assert {"updated_after", "updated_before"} <= names, path
            checked += 1
    assert checked >= 6


def test_closed_sets_are_enums(document: dict[str, Any]) -> None:
    export = document["paths"]["/runs/{run_id}/export"]["get"]
    (format_parameter,) = [parameter for parameter in export["parameters"] if parameter["name"] == "format"]
    assert format_parameter["schema"]["enum"] == ["csv", "json", "xlsx"]
    listed = document["paths"]["/queries"]["get"]["parameters"]
    limit = next(parameter for parameter in listed if parameter["name"] == "limit")
    assert limit["schema"]["maximum"] == 200


@pytest.mark.parametrize("role", ["Create", "Out"])
def test_visualizations_are_unions_discriminated_by_type(document: dict[str, Any], role: str) -> None:
    schemas = document["components"]["schemas"]
    union = schemas[f"Visualization{role}"]
    mapping = union["discriminator"]["mapping"]
    assert union["discriminator"]["propertyName"] == "type"
    assert set(mapping) == set(OPTIONS_BY_TYPE)
    for name, model in OPTIONS_BY_TYPE.items():
        variant = schemas[mapping[name].rsplit("/", 1)[-1]]
        assert variant["properties"]["type"]["const"] == name
        assert variant["properties"]["options"]["$ref"].endswith(f"/{model.__name__}")
