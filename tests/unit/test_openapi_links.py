"""The finished OpenAPI document: links from what creates a thing to the operations on it, the refusals
made before routing, and no JSON body documented for responses that have none."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from loupe.api.openapi import whole_api_document


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(whole_api_document())
    return parsed


def operation_ids(document: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        operation["operationId"]: (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def linked(document: dict[str, Any], method: str, path: str, status: str) -> dict[tuple[str, str], Any]:
    links = document["paths"][path][method]["responses"][status].get("links", {})
    ids = operation_ids(document)
    return {ids[link["operationId"]]: link["parameters"] for link in links.values()}


def test_a_created_resource_links_to_its_get_update_and_delete(document: dict[str, Any]) -> None:
    links = linked(document, "post", "/queries", "201")
    for method in ("GET", "PATCH", "DELETE"):
        assert links[(method, "/queries/{resource_id}")] == {"resource_id": "$response.body#/id"}
    assert links[("POST", "/queries/{query_id}/runs")] == {"query_id": "$response.body#/id"}


def test_a_started_run_links_to_the_run_wherever_it_was_started(document: dict[str, Any]) -> None:
    for path in ("/runs", "/queries/{query_id}/runs"):
        links = linked(document, "post", path, "202")
        assert links[("GET", "/runs/{run_id}")] == {"run_id": "$response.body#/id"}
        assert links[("GET", "/runs/{run_id}/results")] == {"run_id": "$response.body#/id"}


def test_every_link_names_a_real_operation_and_binds_exactly_its_path_parameters(
    document: dict[str, Any],
) -> None:
    ids = operation_ids(document)
    checked = 0
    for item in document["paths"].values():
        for operation in item.values():
            for response in operation["responses"].values():
                for link in response.get("links", {}).values():
                    _, target = ids[link["operationId"]]
                    assert set(link["parameters"]) == set(re.findall(r"\{([^}]+)\}", target))
                    checked += 1
    assert checked > 20


def test_responses_without_a_body_document_none(document: dict[str, Any]) -> None:
    no_content = [
        response
        for item in document["paths"].values()
        for operation in item.values()
        for status, response in operation["responses"].items()
        if status == "204"
    ]
    assert len(no_content) > 10
    assert all("content" not in response for response in no_content)
    reset = document["paths"]["/auth/password-reset/request"]["post"]["responses"]["202"]
    assert "content" not in reset


def test_every_operation_documents_the_refusals_made_before_its_route(document: dict[str, Any]) -> None:
    """A body over the limit is 413 anywhere; a request with an API key may be over the key's rate."""
    for item in document["paths"].values():
        for operation in item.values():
            assert "413" in operation["responses"], operation["operationId"]
            if operation.get("security"):
                assert "429" in operation["responses"], operation["operationId"]
