"""The OpenAPI document: shared error responses, security schemes, and the whole-API document."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel

from loupe.api.prefix import API_PREFIX
from loupe.models.common import ErrorEnvelope

API_TITLE = "Loupe API"
API_VERSION = "1.0.0"

AUTHENTICATED: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKey": []}]

ERROR_DESCRIPTIONS = {
    400: "Malformed JSON or unsupported content type",
    401: "Missing, invalid, expired or revoked credentials",
    403: "The caller's role does not allow this",
    404: "No such resource in the caller's organization",
    405: "Method not allowed on this path",
    406: "The Accept header does not name the type asked for (a PNG or PDF needs its own)",
    409: "Uniqueness or state conflict",
    410: "The run's stored result has expired (organization retention)",
    412: "If-Match does not match the current ETag",
    413: "Body over the size limit",
    422: "A field is invalid; details say which",
    429: "Over a limit; Retry-After says when to retry",
    500: "Internal error; the error_id is in the server log",
    503: "A dependency is unavailable",
}


# The response headers of API.md, for the `headers` of documented responses.
RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-Id": {
        "description": "The request's id, also in the server log; quote it when reporting a problem",
        "schema": {"type": "string"},
    },
    "ETag": {
        "description": "The resource's current version: send it in If-None-Match or If-Match",
        "schema": {"type": "string"},
    },
    "Location": {"description": "The URL of the resource", "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}},
    "Loupe-Run-Id": {"description": "The run whose stored result was drawn", "schema": {"type": "string"}},
    "Content-Disposition": {
        "description": "`inline`, with a file name for saving the picture",
        "schema": {"type": "string"},
    },
}

# Statuses that never carry a body (RFC 9110): documented without content.
BODILESS = (204, 304)


def response_headers(*names: str) -> dict[str, Any]:
    """References to RESPONSE_HEADERS, which the document holds once in its components."""
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def conditional_read_responses(model: type[BaseModel], noun: str) -> dict[int, Any]:
    """A single resource's GET: the resource with its ETag, or an empty 304 (API.md)."""
    return {
        200: {"description": f"The {noun}, with its ETag", "content": {"application/json": {"model": model}}},
        304: {"description": "Not modified: If-None-Match names the current ETag"},
    }


def error_responses(statuses: tuple[int, ...]) -> dict[int, Any]:
    return {
        status: {
            "description": ERROR_DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
            "content": {"application/json": {"model": ErrorEnvelope}},
        }
        for status in sorted(set(statuses))
    }


def configure(app: Any) -> None:
    """Title, servers and security schemes for a resolver's document."""
    # Imported here: the OpenAPI models cost cold-start time that serving a request never needs.
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, HTTPBearer, Server

    app.configure_openapi(
        title=API_TITLE,
        version=API_VERSION,
        servers=[Server(url=API_PREFIX)],
        security_schemes={
            "bearerAuth": HTTPBearer(bearerFormat="JWT", description="An access token from /auth/login"),
            "apiKey": APIKey(name="X-API-Key", in_=APIKeyIn.header, description="An organization API key"),
            "guestToken": HTTPBearer(
                bearerFormat="JWT", description="An embed token from POST /embed-tokens"
            ),
        },
        description="Loupe: connect databases, run parameterized SQL, chart it, schedule it.",
    )


@functools.cache
def whole_api_document() -> str:
    """The document for every route of every function, built once per process from their routers."""
    from loupe.api.resolver import LoupeResolver
    from loupe.api.routes import all_routers

    app = LoupeResolver(cors=None, with_database=False)
    routers = all_routers()
    for router in routers:
        app.include_router(router)
    configure(app)
    document: dict[str, Any] = json.loads(app.get_openapi_json_schema())
    document["components"]["headers"] = RESPONSE_HEADERS
    for router in routers:
        with_query_schemas(document, router.declared)
    return json.dumps(
        with_links(with_conditional_headers(with_optional_bodies(without_empty_bodies(document)))), indent=2
    )


def query_models(route: Callable[..., Any]) -> tuple[type[BaseModel], ...]:
    """The models a route reads its query string into (`query: Annotated[ListQuery, Query()]`)."""
    found = []
    for hint in get_type_hints(route, include_extras=True).values():
        if get_origin(hint) is Annotated:
            model, *metadata = get_args(hint)
            if (
                isinstance(model, type)
                and issubclass(model, BaseModel)
                and any(isinstance(item, Query) for item in metadata)
            ):
                found.append(model)
    return tuple(found)


def with_query_schemas(
    document: dict[str, Any], routes: list[tuple[str, str, Callable[..., Any]]]
) -> dict[str, Any]:
    """Powertools documents each field of a query model as a bare type, without its enum, format or
    bounds: give each query parameter its field's own schema."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for method, path, route in routes:
        fields: dict[str, Any] = {}
        for model in query_models(route):
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            # A field may refer to a named enum (RunStatus): the same component the responses use.
            for name, definition in schema.get("$defs", {}).items():
                components.setdefault(name, definition)
            fields.update(schema["properties"])
        operation = document["paths"].get(path, {}).get(method.lower(), {})  # none if not documented
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query" and parameter["name"] in fields:
                parameter["schema"] = fields[parameter["name"]]
    return document


CONDITIONAL_HEADERS = {
    "If-None-Match": "An ETag of the copy you hold: 304, with no body, while it is current",
    "If-Match": "The ETag you read: 412 if the resource has changed since",
}


def with_conditional_headers(document: dict[str, Any]) -> dict[str, Any]:
    """If-None-Match on the reads that may answer 304, If-Match on the writes that may answer 412. The
    routes read them from the request's headers (loupe.api.responses), so Powertools cannot see them."""
    for item in document["paths"].values():
        for method, operation in item.items():
            names = [
                *(["If-None-Match"] if method == "get" and "304" in operation["responses"] else []),
                *(["If-Match"] if "412" in operation["responses"] else []),
            ]
            operation.setdefault("parameters", []).extend(
                {
                    "name": name,
                    "in": "header",
                    "required": False,
                    "description": CONDITIONAL_HEADERS[name],
                    "schema": {"type": "string"},
                }
                for name in names
            )
            if not operation["parameters"]:
                del operation["parameters"]
    return document


def without_empty_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """A route that returns nothing answers with no body and no Content-Type; Powertools documents it
    as a JSON `null` (or, for a 304, as the route's return type), which clients would then parse."""
    for item in document["paths"].values():
        for operation in item.values():
            for status, response in operation["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                if schema.get("type") == "null" or int(status) in BODILESS:
                    response.pop("content", None)
    return document


def with_optional_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """A body a route may go without (`body: Model | None = None`) is an optional request body of that
    model, not a required one that may be JSON `null` (what Powertools writes)."""
    for item in document["paths"].values():
        for operation in item.values():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            choices = content.get("schema", {}).get("anyOf", [])
            models = [choice for choice in choices if "$ref" in choice]
            if len(models) == 1 and len(choices) == 2 and {"type": "null"} in choices:
                content["schema"] = models[0]
                operation["requestBody"]["required"] = False
    return document


PATH_PARAMETER = re.compile(r"\{([^}]+)\}")


def with_links(document: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI links from each operation that creates or starts something to the operations on it:
    `POST /queries` → `GET/PATCH/DELETE /queries/{resource_id}`, `POST /queries/{query_id}/runs` →
    `GET /runs/{run_id}` and its results. Clients (and stateful fuzzing) follow the returned `id`.

    A created item's operations are those under the path it was posted to, and those under the path
    whose GET returns the same schema."""
    schemas = document["components"]["schemas"]
    paths: dict[str, dict[str, Any]] = document["paths"]

    def success(operation: dict[str, Any]) -> tuple[str, str] | None:
        """The success status and the name of the schema it returns, if it returns one by reference."""
        for status in ("201", "202", "200"):
            schema = operation["responses"].get(status, {}).get("content", {}).get("application/json", {})
            reference = schema.get("schema", {}).get("$ref", "")
            if reference:
                return status, str(reference).rsplit("/", 1)[-1]
        return None

    item_path_of: dict[str, str] = {}
    for path, item in paths.items():
        found = success(item["get"]) if "get" in item else None
        if found is not None and PATH_PARAMETER.fullmatch(path.rsplit("/", 1)[-1]):
            item_path_of.setdefault(found[1], path.rsplit("/", 1)[0])

    for path, item in paths.items():
        operation = item.get("post")
        found = success(operation) if operation is not None else None
        if operation is None or found is None or "id" not in schemas[found[1]].get("properties", {}):
            continue
        status, reference = found
        collections = {path, item_path_of.get(reference, path)}
        known = set(PATH_PARAMETER.findall(path))
        links: dict[str, Any] = {}
        for target_path, target_item in paths.items():
            collection = next((c for c in collections if target_path.startswith(c + "/{")), None)
            if collection is None:
                continue
            created = PATH_PARAMETER.match(target_path[len(collection) + 1 :])
            assert created is not None
            parameters = {created.group(1): "$response.body#/id"}
            needed = set(PATH_PARAMETER.findall(target_path)) - {created.group(1)}
            if not needed <= known:
                continue
            parameters.update({name: f"$request.path.{name}" for name in needed})
            for target in target_item.values():
                links[target["operationId"]] = {
                    "operationId": target["operationId"],
                    "parameters": parameters,
                }
        if links:
            operation["responses"][status]["links"] = links
    return document
