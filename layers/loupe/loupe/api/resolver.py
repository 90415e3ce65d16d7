"""The resolver every function uses: validation on, one error envelope, security headers, access log.

`create_app()` returns a Powertools REST resolver; `LoupeRouter` declares routes with the shared
error responses and security requirements so each route states only what is its own.
"""

from __future__ import annotations

import functools
import json
import secrets
import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, get_args, get_origin, get_type_hints

import psycopg
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler import depends as powertools_depends
from aws_lambda_powertools.event_handler.api_gateway import Route, Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    OpenAPIRequestValidationMiddleware,
)
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.types import EventHandlerInstance
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from loupe import db, error_tracking
from loupe.api.auth import check_access
from loupe.api.context import RequestState, begin_request, current_request_or_none, end_request
from loupe.api.errors import (
    MethodNotAllowed,
    PayloadTooLarge,
    RequestInvalid,
    error_envelope,
    error_headers,
    status_of,
)
from loupe.api.guest_cors import guest_cors_headers
from loupe.api.json_limits import shape_problem
from loupe.api.openapi import AUTHENTICATED, error_responses, response_headers
from loupe.api.prefix import API_PREFIX
from loupe.config import get_settings
from loupe.errors import (
    DependencyUnavailable,
    DomainError,
    FieldIssue,
    InvalidInput,
    InvalidRequest,
    NotFound,
)
from loupe.observability import count_unhandled_error, logger, write_request_line

# Powertools rebuilds a route's dependency tree (type hints of the route and of each dependency, read
# again) on every request, and reads each dependency's type hints again to solve it; annotations do not
# change once imported, so each function's tree and hints are read once.
powertools_depends.build_dependency_tree = functools.cache(powertools_depends.build_dependency_tree)
powertools_depends.get_type_hints = functools.cache(get_type_hints)  # type: ignore[attr-defined,assignment]

SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}

CORS_ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "X-API-Key",
    "X-Request-Id",
]
CORS_EXPOSED_HEADERS = ["ETag", "Location", "Retry-After", "X-Request-Id"]
# Retry-After of a 503 when the metadata database does not answer: a paused Aurora takes about 15 s
# to resume, and the request waited for part of that already.
DATABASE_RETRY_AFTER_SECONDS = 10


def database_down(error: Exception) -> DependencyUnavailable:
    """The 503 of a request the metadata database did not answer (down, or resuming from a pause)."""
    logger.warning("database unavailable", extra={"error_type": type(error).__name__})
    return DependencyUnavailable(
        "The database is unavailable or resuming from a pause; try again shortly",
        retry_after_seconds=DATABASE_RETRY_AFTER_SECONDS,
    )


def new_error_id() -> str:
    return secrets.token_hex(6)


def error_response(error: DomainError) -> Response[Any]:
    """Render a domain error as the table in loupe.api.errors says; 5xx details go to the log under the
    same error_id, never to the client."""
    error_id = new_error_id()
    status = status_of(error)
    body = error_envelope(error, error_id)
    log = logger.error if status >= 500 else logger.info
    log("request failed", extra={"error_id": error_id, "code": body["error"]["code"], "status": status})
    return Response(
        status_code=status, content_type="application/json", body=body, headers=error_headers(error)
    )


def _validation_issues(errors: list[Any]) -> list[FieldIssue]:
    details: list[FieldIssue] = []
    for issue in errors:
        parts = list(issue.get("loc", ()))
        if len(parts) > 2 and parts[0] == "query":
            # A query string read into one model (`query: Annotated[ListQuery, Query()]`) reports
            # ("query", <parameter>, <field>); the client knows only the field.
            del parts[1]
        location = ".".join(str(part) for part in parts)
        # Never echo the input: it may be a password.
        details.append(FieldIssue(location, str(issue.get("msg") or issue.get("type", "invalid"))))
    return details


def success_response(route: Callable[..., Any], status: int) -> dict[str, Any]:
    """The documented success of a route, from its return annotation (`Response[Model]` or `Model`)."""
    returned = get_type_hints(route).get("return")
    if get_origin(returned) is Response:
        returned = get_args(returned)[0] if get_args(returned) else Any
    description = HTTPStatus(status).phrase
    if returned in (None, type(None), Any) or status == 204:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"model": returned}}}


def documented_headers(method: str, responses: dict[int, Any], success: tuple[str, ...]) -> dict[int, Any]:
    """The response headers API.md promises, on each documented response: X-Request-Id on all,
    Retry-After on 429 and 503, Location on 201 and 302, ETag on a conditional read and on a versioned
    write, and a route's own `success` headers on its 2xx and 3xx."""
    conditional = method == "GET" and 304 in responses
    versioned = method == "PATCH" and 412 in responses
    headed = {}
    for status, response in responses.items():
        names = ["X-Request-Id"]
        if status in (429, 503):
            names.append("Retry-After")
        if status in (201, 302):
            names.append("Location")
        if status in (200, 304) and (conditional or versioned):
            names.append("ETag")
        if status < 400:
            names.extend(name for name in success if name not in names)
        headed[status] = {**response, "headers": {**response_headers(*names), **response.get("headers", {})}}
    return headed


class LoupeRouter(Router):
    """A Powertools Router whose routes document the shared error responses, headers and security scheme.

    Every API route names its `operation_id`, a generated client's function name (tests check the
    document for it; a route left without one gets Powertools' default). `authenticated=False`
    marks the few public routes; `errors` adds the route's own error statuses; `success_headers` names
    headers its successes send beyond those `documented_headers` knows of.
    """

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        # (method, OpenAPI path, route function) of each route, for what the document adds to Powertools'.
        self.declared: list[tuple[str, str, Callable[..., Any]]] = []

    @staticmethod
    def _documented(
        route: Callable[..., Any],
        method: str,
        authenticated: bool,
        errors: tuple[int, ...],
        success_headers: tuple[str, ...],
        options: dict[str, Any],
    ) -> dict[str, Any]:
        # Any request may be refused for its size (413) before it reaches a route, and any request with
        # an API key for the key's rate (429).
        statuses = (400, 413, 422, 500, *((401, 403, 429) if authenticated else ()), *errors)
        responses = {**error_responses(statuses), **(options.get("responses") or {})}
        # Given any `responses`, Powertools stops deriving the success one from the return type: add it.
        status = int(options.get("status_code", 200))
        responses.setdefault(status, success_response(route, status))
        options["responses"] = documented_headers(method, responses, success_headers)
        if authenticated:
            options.setdefault("security", AUTHENTICATED)
        return options

    def _verb(method: str) -> Callable[..., Callable[[Any], Any]]:  # type: ignore[misc]
        def declare(
            self: LoupeRouter,
            rule: str,
            *,
            operation_id: str | None = None,
            authenticated: bool = True,
            errors: tuple[int, ...] = (),
            success_headers: tuple[str, ...] = (),
            **options: Any,
        ) -> Callable[[Any], Any]:
            def register(route: Callable[..., Any]) -> Any:
                documented = self._documented(
                    route, method, authenticated, errors, success_headers, dict(options)
                )
                self.declared.append((method, rule.replace("<", "{").replace(">", "}"), route))
                return self.route(rule, method, operation_id=operation_id, **documented)(route)

            return register

        declare.__name__ = method.lower()
        return declare

    get = _verb("GET")
    post = _verb("POST")
    put = _verb("PUT")
    patch = _verb("PATCH")
    delete = _verb("DELETE")


def record_route(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Name the matched route (`GET /queries/<query_id>`) on the request, for its metrics and logs."""
    route = app.context.get("_route")
    state = current_request_or_none()
    if route is not None and state is not None:
        state.route = f"{route.method} {route.path}"
    return next_middleware(app)


def unit_of_work(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """One database transaction per request: committed when the route succeeds, rolled back when it
    raises, except for errors that ask to keep their changes (see DomainError.keep_changes)."""
    kept_error: DomainError | None = None
    with db.transaction():
        try:
            response = next_middleware(app)
        except DomainError as error:
            if not error.keep_changes:
                raise
            kept_error = error
    if kept_error is not None:
        raise kept_error
    return response


# Runs before the request's own transaction, in one of its own (committed whatever the request then
# does): the HTTP method and the client's address; raises a DomainError to answer instead of the route.
RequestGate = Callable[[str, str | None], None]


@functools.cache
def declared_query_names(route: Route) -> frozenset[str]:
    """The query parameters a route reads: its scalar ones and the fields of its query models. A route's
    declarations do not change once imported, so they are read once per route, not per request."""
    names: set[str] = set()
    for param in route.dependant.query_params:
        model = param.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            names.update(field.alias or name for name, field in model.model_fields.items())
        else:
            names.add(param.alias)
    return frozenset(names)


@functools.cache
def declares_parameters(route: Route) -> bool:
    """Whether a route reads anything of the request: a path, query, header or cookie parameter, or a body."""
    dependant = route.dependant
    return bool(
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
    )


class JsonRequestValidation(OpenAPIRequestValidationMiddleware):
    """Powertools' request validation for an API whose bodies are JSON only, and whose query strings hold
    only the parameters a route declares. Powertools would parse a form or multipart body too (a
    multipart type without a boundary raises ValueError there, a 500), and compares the media type
    case-sensitively, where media types are not (RFC 9110)."""

    def handler(self, app: EventHandlerInstance, next_middleware: NextMiddleware) -> Response[Any]:
        # Powertools reads the parameters a route declares and ignores the rest, so a misspelt filter
        # (`?updated_afer=`) would quietly return everything: name it in a 422 instead.
        known = declared_query_names(app.context["_route"])
        sent = app.current_event.resolved_query_string_parameters or {}
        unknown = sorted(name for name in sent if name not in known)
        if unknown:
            raise RequestValidationError(
                [
                    {"loc": ("query", name), "msg": "unknown query parameter", "type": "extra_forbidden"}
                    for name in unknown
                ]
            )
        if not declares_parameters(app.context["_route"]):
            # Powertools would read the path, query, headers and cookies to fill nothing.
            app.context["_route_args"] = {}
            return next_middleware(app)
        response: Response[Any] = super().handler(app, next_middleware)
        return response

    def _get_body(self, app: EventHandlerInstance) -> Any:
        body = app.current_event.decoded_body
        if not body:
            return self._parse_json_data(app)
        # A body is JSON only when it says so: one without a Content-Type is refused, not guessed at.
        media_type = (app.current_event.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise RequestUnsupportedContentType("Unsupported content type", errors=[])
        problem = shape_problem(body)
        if problem is not None:
            raise UnacceptableBody(problem)
        return self._parse_json_data(app)


class UnacceptableBody(Exception):
    """A JSON body whose shape is refused before parsing (see json_limits)."""


class LoupeResolver(APIGatewayRestResolver):
    """Powertools' REST resolver plus the conventions of API.md that hold for every response."""

    def __init__(
        self, *, cors: CORSConfig | None, with_database: bool, request_gate: RequestGate | None = None
    ) -> None:
        self.request_gate = request_gate
        super().__init__(
            cors=cors,
            enable_validation=True,
            strip_prefixes=[API_PREFIX],
        )
        # Powertools' middleware class is untyped; ours only replaces how it reads the body.
        self._request_validation_middleware = JsonRequestValidation()  # type: ignore[no-untyped-call]
        self.use(middlewares=[record_route])
        if with_database:
            self.use(middlewares=[unit_of_work])
        self.exception_handler(DomainError)(error_response)
        self.exception_handler(RequestValidationError)(self._validation_failed)
        self.exception_handler(RequestUnsupportedContentType)(self._unsupported_content_type)
        self.exception_handler(UnicodeDecodeError)(self._undecodable_body)
        self.exception_handler(UnacceptableBody)(self._unacceptable_body)
        self.exception_handler(NotFoundError)(self._no_route)
        self.exception_handler(psycopg.DataError)(self._unstorable_value)
        self.exception_handler(db.DatabaseUnavailable)(self._database_down)
        self.exception_handler(psycopg.OperationalError)(self._database_down)
        self.exception_handler(Exception)(self._unhandled)

    def _access_denied(self) -> Response[Any] | None:
        """Credentials and role are judged before the request's shape (see auth.check_access)."""
        route = self.context.get("_route")
        if route is None:
            return None
        try:
            check_access(route.func)
        except DomainError as error:
            return error_response(error)
        return None

    def _validation_failed(self, error: RequestValidationError) -> Response[Any]:
        denied = self._access_denied()
        if denied is not None:
            return denied
        issues = list(error.errors())
        if any(issue.get("type") == "json_invalid" for issue in issues):
            return error_response(InvalidRequest("The request body is not valid JSON"))
        return error_response(RequestInvalid(issues=_validation_issues(issues)))

    def _unsupported_content_type(self, _: RequestUnsupportedContentType) -> Response[Any]:
        return self._access_denied() or error_response(
            InvalidRequest("Unsupported content type; send application/json")
        )

    def _undecodable_body(self, _: UnicodeDecodeError) -> Response[Any]:
        # A binary (base64) body that is not UTF-8 text fails in Powertools' body decoding.
        return self._access_denied() or error_response(InvalidRequest("The request body is not UTF-8 JSON"))

    def _unacceptable_body(self, error: UnacceptableBody) -> Response[Any]:
        return self._access_denied() or error_response(InvalidRequest(str(error)))

    def _no_route(self, _: NotFoundError) -> Response[Any]:
        method = self.current_event.http_method.upper()
        path = self._remove_prefix(self.current_event.path)
        allowed = sorted(
            {
                route.method
                for route in self._static_routes + self._dynamic_routes
                if route.method != method and route.rule.match(path)
            }
        )
        if allowed:
            return error_response(MethodNotAllowed(allowed))
        return error_response(NotFound("No such route"))

    def _unstorable_value(self, error: psycopg.DataError) -> Response[Any]:
        # A value valid as JSON that PostgreSQL cannot hold: a NUL character in text, a number out of range.
        logger.info("unstorable value", extra={"error_type": type(error).__name__})
        return error_response(
            InvalidInput(issues=[FieldIssue("", "a value contains a NUL character or is out of range")])
        )

    def _database_down(self, error: Exception) -> Response[Any]:
        return error_response(database_down(error))

    def _unhandled(self, error: Exception) -> Response[Any]:
        error_id = new_error_id()
        state = current_request_or_none()
        matched = self.context.get("_route")
        route = (state.route if state else None) or (
            f"{matched.method} {matched.path}" if matched else "unrouted"
        )
        # Errors of one kind in one place share a fingerprint: counted together, found by it in the log.
        fingerprint = f"{route} {type(error).__name__}"
        logger.exception(
            "unhandled error",
            extra={"error_id": error_id, "error_type": type(error).__name__, "fingerprint": fingerprint},
        )
        count_unhandled_error(fingerprint)
        error_tracking.report(error, error_id, fingerprint)
        return Response(
            status_code=HTTPStatus.INTERNAL_SERVER_ERROR,
            content_type="application/json",
            body={"error": {"code": "internal_error", "message": "Internal error", "error_id": error_id}},
        )

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        started = time.perf_counter()
        request_context = event.get("requestContext") or {}
        headers = {key.lower(): value for key, value in (event.get("headers") or {}).items()}
        state = RequestState(
            request_id=str(request_context.get("requestId") or secrets.token_hex(8)),
            headers=headers,
            source_ip=(request_context.get("identity") or {}).get("sourceIp"),
            user_agent=headers.get("user-agent"),
        )
        begin_request(state)
        logger.set_correlation_id(state.request_id)
        try:
            refusal = self._gate(event, state)
            if refusal is not None:
                response = self._render_early(error_response(refusal))
            elif _body_size(event) > get_settings().max_body_bytes:
                response = self._render_early(error_response(PayloadTooLarge()))
            else:
                response = super().resolve(event, context)
            method = str(event.get("httpMethod") or "")
            path = self._remove_prefix(str(event.get("path") or ""))
            cors = guest_cors_headers(path, method, state, int(response.get("statusCode") or 0))
            _add_headers(response, {"X-Request-Id": state.request_id, **cors})
            self._log_access(event, state, response, started)
            return response
        finally:
            end_request()

    def _gate(self, event: Mapping[str, Any], state: RequestState) -> DomainError | None:
        if self.request_gate is None:
            return None
        try:
            self.request_gate(str(event.get("httpMethod") or ""), state.client_ip)
        except DomainError as refusal:
            return refusal
        except (db.DatabaseUnavailable, psycopg.OperationalError) as error:
            return database_down(error)
        return None

    def _render_early(self, response: Response[Any]) -> dict[str, Any]:
        return {
            "statusCode": response.status_code,
            "multiValueHeaders": {"Content-Type": [response.content_type or "application/json"]}
            | {name: [value] for name, value in response.headers.items() if isinstance(value, str)},
            "body": json.dumps(response.body, separators=(",", ":")),
            "isBase64Encoded": False,
        }

    @staticmethod
    def _log_access(
        event: Mapping[str, Any], state: RequestState, response: dict[str, Any], started: float
    ) -> None:
        principal = state.principal
        write_request_line(
            state.route or f"{event.get('httpMethod')} {event.get('resource') or event.get('path')}",
            int(response.get("statusCode") or 0),
            round((time.perf_counter() - started) * 1000, 2),
            method=event.get("httpMethod"),
            organization_id=str(principal.organization_id) if principal else None,
            user_id=str(principal.user_id) if principal and principal.user_id else None,
            api_key_id=str(principal.api_key_id) if principal and principal.api_key_id else None,
        )


def _body_size(event: Mapping[str, Any]) -> int:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return len(body) * 3 // 4
    return len(body.encode()) if isinstance(body, str) else 0


def _add_headers(response: dict[str, Any], extra: dict[str, str]) -> None:
    multi: dict[str, list[str]] = response.setdefault("multiValueHeaders", {})
    present = {name.lower() for name in multi} | {name.lower() for name in response.get("headers") or {}}
    for name, value in {**SECURITY_HEADERS, **extra}.items():
        if name.lower() not in present or name in extra:
            multi[name] = [value]


def create_app(*, with_database: bool = True, request_gate: RequestGate | None = None) -> LoupeResolver:
    """A resolver for one function. `with_database=False` for routes that must not touch PostgreSQL;
    `request_gate` runs before each request (see RequestGate)."""
    settings = get_settings()
    settings.signing_keys  # noqa: B018  # an API function fails at cold start, not at the first login
    cors = None
    if settings.cors_origins:
        first, *rest = settings.cors_origins
        cors = CORSConfig(
            allow_origin=first,
            extra_origins=rest or None,
            allow_headers=CORS_ALLOWED_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
    return LoupeResolver(cors=cors, with_database=with_database, request_gate=request_gate)
