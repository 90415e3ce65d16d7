"""The local API Gateway: HTTP request → the REST proxy event Lambda receives → handler → HTTP response."""

from __future__ import annotations

import base64
import contextlib
import contextvars
import json
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from infra.local.console import Console, capturing, note_failure
from infra.local.events import rest_api_event
from infra.local.invokers import FunctionError, HandlerLoader, InProcess, Invoker
from infra.local.template_routes import ApiRoute, find_route, load_handler, template

RouteFinder = Callable[[str, str], tuple[ApiRoute, dict[str, str]] | None]

# API Gateway's own limit on a request payload (REST APIs).
MAX_REQUEST_BYTES = 10 * 1024 * 1024
# Lambda's limits on a synchronous invocation: the event as JSON, and the proxy response as JSON.
MAX_EVENT_BYTES = 6 * 1024 * 1024
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100
# API Gateway stops waiting for a Lambda integration after 29 seconds (REST APIs' default).
INTEGRATION_TIMEOUT_SECONDS = 29.0
# The status API Gateway gives each of its own error types unless the template overrides it.
GATEWAY_STATUS = {
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "REQUEST_TOO_LARGE": 413,
    "DEFAULT_5XX": 502,
    "INTEGRATION_TIMEOUT": 504,
}
GATEWAY_ERROR_TYPES = {
    "MISSING_AUTHENTICATION_TOKEN": "MissingAuthenticationTokenException",
    "REQUEST_TOO_LARGE": "RequestTooLargeException",
    "DEFAULT_5XX": "InternalServerErrorException",
    "INTEGRATION_TIMEOUT": "IntegrationTimeout",
}
# Hop-by-hop headers belong to this HTTP connection, not to the response Lambda described.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade"})


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str  # the path and query string as sent, still percent-encoded
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    source_ip: str = "127.0.0.1"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    function: str | None = None


def gateway_response(kind: str, message: str, request_id: str) -> HttpResponse:
    """An error API Gateway answers itself, rendered with the template's GatewayResponses like AWS does."""
    responses = template()["Resources"]["LoupeApi"]["Properties"].get("GatewayResponses") or {}
    family = "DEFAULT_5XX" if GATEWAY_STATUS[kind] >= 500 else "DEFAULT_4XX"
    configured = responses.get(kind) or responses.get(family) or {}
    status = int(configured.get("StatusCode") or GATEWAY_STATUS[kind])
    body_template = (configured.get("ResponseTemplates") or {}).get("application/json")
    body = (
        json.dumps({"message": message})
        if body_template is None
        else render_template(body_template, message, request_id)
    )
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", request_id),
        ("x-amzn-ErrorType", GATEWAY_ERROR_TYPES[kind]),
    ]
    for name, value in ((configured.get("ResponseParameters") or {}).get("Headers") or {}).items():
        if value == "context.requestId":
            headers.append((name, request_id))
        elif value.startswith("'") and value.endswith("'"):
            headers.append((name, value[1:-1]))
    return HttpResponse(status, headers, body.encode())


def render_template(body_template: str, message: str, request_id: str) -> str:
    """The `$context` variables Loupe's GatewayResponses use, substituted as API Gateway does."""
    return (
        body_template.replace("$context.error.messageString", json.dumps(message))
        .replace("$context.error.message", message)
        .replace("$context.requestId", request_id)
    )


def binary_media_types() -> frozenset[str]:
    """The template's BinaryMediaTypes, `~1` read as the `/` it escapes."""
    declared = template()["Resources"]["LoupeApi"]["Properties"].get("BinaryMediaTypes") or []
    return frozenset(str(item).replace("~1", "/").lower() for item in declared)


def first_accepted(headers: Iterable[tuple[str, str]]) -> str:
    """The first media type of the request's Accept header: the one API Gateway matches."""
    accept = next((value for name, value in headers if name.lower() == "accept"), "")
    return accept.split(",", 1)[0].split(";", 1)[0].strip().lower()


def merged_headers(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A proxy result's headers: every multiValueHeaders value, then `headers` values not already given."""
    merged: list[tuple[str, str]] = []
    multi: Mapping[str, Iterable[Any]] = result.get("multiValueHeaders") or {}
    for name, values in multi.items():
        merged.extend((name, str(value)) for value in values)
    for name, value in (result.get("headers") or {}).items():
        if (name, str(value)) not in merged:
            merged.append((name, str(value)))
    return merged


class Gateway:
    """Routes like API Gateway and invokes like Lambda: through `invoker`, in worker processes of their own
    (`make dev`), or else in this process with `handler_for`'s handlers, one event at a time."""

    def __init__(
        self,
        route: RouteFinder = find_route,
        handler_for: HandlerLoader = load_handler,
        stage: str = "local",
        integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS,
        invoker: Invoker | None = None,
    ) -> None:
        self._route = route
        self._invoker = InProcess(handler_for) if invoker is None else invoker
        self._stage = stage
        self._integration_timeout = integration_timeout

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """One event through the function, as the gateway, the queue pollers and the schedules invoke it."""
        return self._invoker.invoke(function, event)

    def idle(self, timeout: float) -> bool:
        """Wait until no function is serving an event; False if one still is after `timeout` seconds."""
        return self._invoker.idle(timeout)

    def event(self, request: HttpRequest, route: ApiRoute, parameters: Mapping[str, str]) -> dict[str, Any]:
        target = urlsplit(request.target)
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers:
            headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        event = rest_api_event(
            request.method,
            target.path,
            resource=route.path,
            # REST APIs pass `path` still encoded but the path parameters decoded.
            path_parameters={name: unquote(value) for name, value in parameters.items()},
            headers=headers,
            query=parse_qs(target.query, keep_blank_values=True),
            body=request.body or None,
            source_ip=request.source_ip,
            stage=self._stage,
        )
        if multi_headers:
            event["multiValueHeaders"] = multi_headers
        return event

    def handle(self, request: HttpRequest) -> HttpResponse:
        path = urlsplit(request.target).path
        found = self._route(request.method, path)
        if found is None:
            return gateway_response(
                "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", str(uuid.uuid4())
            )
        route, parameters = found
        event = self.event(request, route, parameters)
        request_id: str = event["requestContext"]["requestId"]
        if len(json.dumps(event).encode()) > MAX_EVENT_BYTES:
            # Lambda refuses the invocation; API Gateway answers as for a body over its own limit.
            return gateway_response("REQUEST_TOO_LARGE", "Request Too Long", request_id)
        outcome: list[Any] = []

        def invoke() -> None:
            try:
                outcome.append(self.invoke(route.function, event))
            except Exception as error:
                outcome.append(error)

        # As in AWS, the gateway stops waiting at its integration timeout (a 504) while the function
        # runs on to its end, or to its own timeout (the API functions': template Globals).
        invocation = threading.Thread(
            target=contextvars.copy_context().run,
            args=(invoke,),
            name=f"invoke-{route.function}",
            daemon=True,
        )
        invocation.start()
        invocation.join(self._integration_timeout)
        if not outcome:
            return gateway_response("INTEGRATION_TIMEOUT", "Endpoint request timed out", request_id)
        result = outcome[0]
        try:
            if isinstance(result, Exception):
                raise result
            response = self._to_http(result, route.function, first_accepted(request.headers))
        except FunctionError as error:
            # The worker wrote the traceback to the function's log; the client only learns it failed.
            note_failure(str(error))
            return gateway_response("DEFAULT_5XX", "Internal server error", request_id)
        except Exception:
            # What Lambda would write to the function's log.
            note_failure(traceback.format_exc().rstrip("\n"))
            return gateway_response("DEFAULT_5XX", "Internal server error", request_id)
        return HttpResponse(
            response.status,
            [*response.headers, ("x-amzn-RequestId", request_id)],
            response.body,
            route.function,
        )

    @staticmethod
    def _to_http(result: Any, function: str, accepted: str) -> HttpResponse:
        if not isinstance(result, Mapping) or "statusCode" not in result:
            raise TypeError(f"{function} returned no proxy response (statusCode missing)")
        size = len(json.dumps(result).encode())
        if size > MAX_RESPONSE_BYTES:
            raise ValueError(f"{function}: response payload of {size} bytes exceeds {MAX_RESPONSE_BYTES}")
        body = result.get("body") or ""
        # As API Gateway does: a base64 body becomes bytes only for a client that accepts a binary media
        # type first; any other gets the base64 text.
        binary = result.get("isBase64Encoded") and accepted in binary_media_types()
        raw = base64.b64decode(body) if binary else str(body).encode()
        headers = [(name, value) for name, value in merged_headers(result) if name.lower() not in HOP_BY_HOP]
        return HttpResponse(int(result["statusCode"]), headers, raw, function)


class GatewayServer(ThreadingHTTPServer):
    """A threaded HTTP server that feeds a Gateway, and can drop its idle keep-alive connections on stop.
    With a `console`, each request gets its line there."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], gateway: Gateway, *, console: Console | None = None) -> None:
        self.gateway = gateway
        self.console = console
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, GatewayRequestHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                # OSError: the client closed it already.
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._connections.clear()


class GatewayRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A response goes out in two writes (head, body): with Nagle's algorithm the second waits for the
    # client's ACK of the first, about 40 ms per request on a kept-open connection.
    disable_nagle_algorithm = True
    server_version = "loupe-local-gateway"
    server: GatewayServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        super().finish()

    def _serve(self) -> None:
        started = time.perf_counter()
        with capturing() as capture:
            body = self._read_body()
            if body is None:
                response = gateway_response("REQUEST_TOO_LARGE", "Request Too Long", str(uuid.uuid4()))
                self.close_connection = True
            else:
                request = HttpRequest(
                    method=self.command,
                    target=self.path,
                    headers=self._forwarded_headers(),
                    body=body,
                    source_ip=self.client_address[0],
                )
                response = self.server.gateway.handle(request)
        self._write(response)
        if self.server.console is not None:
            # The path only: query strings and bodies can carry tokens, and headers carry credentials.
            self.server.console.request(
                response.function or "gateway",
                self.command,
                urlsplit(self.path).path,
                response.status,
                (time.perf_counter() - started) * 1000,
                next((value for name, value in response.headers if name == "x-amzn-RequestId"), "-"),
                capture,
            )

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

    if not TYPE_CHECKING:  # so that mypy still catches a misspelt attribute of the handler

        def __getattr__(self, name: str) -> Any:
            # API Gateway answers every method (TRACE, CONNECT, made-up ones) itself, with a 4xx when no
            # route takes it; http.server would answer 501 for a method it has no do_ handler for.
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

    def _forwarded_headers(self) -> list[tuple[str, str]]:
        """The client's headers plus the X-Forwarded-* ones API Gateway adds (appending to a sent chain)."""
        client = self.client_address[0]
        sent_chain = self.headers.get("X-Forwarded-For")
        headers = [
            (name, value)
            for name, value in self.headers.items()
            if not name.lower().startswith("x-forwarded-")
        ]
        return [
            *headers,
            ("X-Forwarded-For", f"{sent_chain}, {client}" if sent_chain else client),
            ("X-Forwarded-Port", str(self.server.port)),
            ("X-Forwarded-Proto", "http"),
        ]

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_REQUEST_BYTES:
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _write(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        has_body = response.status not in (204, 304) and not 100 <= response.status < 200
        if has_body:
            self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if has_body and self.command != "HEAD":
            self.wfile.write(response.body)

    def version_string(self) -> str:
        return self.server_version

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Replaced by the access line of _serve, which leaves the query string out."""

    def log_error(self, format: str, *args: Any) -> None:
        if self.server.console is not None:
            print(f"gateway: {format % args}", file=sys.stderr)


def serve(
    gateway: Gateway, host: str = "127.0.0.1", port: int = 3000, *, console: Console | None = None
) -> GatewayServer:
    """Bind the gateway's HTTP server (port 0 picks a free one) and serve it on a background thread; with a
    `console`, each request gets its line there."""
    server = GatewayServer((host, port), gateway, console=console)
    threading.Thread(target=server.serve_forever, name="loupe-gateway", daemon=True).start()
    return server


def shutdown(server: GatewayServer) -> None:
    server.shutdown()
    server.server_close()
    server.close_connections()
