"""`make dev` end to end over real HTTP (the stack runs as a subprocess in a temporary LOUPE_HOME),
and the local gateway's HTTP ↔ API Gateway event translation."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest

from infra.local.gateway import (
    MAX_EVENT_BYTES,
    MAX_REQUEST_BYTES,
    MAX_RESPONSE_BYTES,
    Gateway,
    GatewayServer,
    HttpRequest,
    serve,
    shutdown,
)
from infra.local.stack_process import StackFailed, StackProcess, running_stack
from infra.local.template_routes import find_route
from loupe.api import resolver
from loupe.config import Settings

pytestmark = pytest.mark.e2e

WORKER_STARTED = re.compile(r"\w+Function: worker (\d+) initialized")

SECURITY_HEADERS = {
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "content-security-policy",
}


@pytest.fixture(scope="module")
def stack() -> Iterator[StackProcess]:
    # Quick enough for the end-to-end tests of cancelling and reaping runs.
    quick = {
        "LOUPE_LOCAL_REAPER_SECONDS": "1",
        "LOUPE_LOCAL_SCHEDULER_SECONDS": "1",
        "LOUPE_RUN_CANCEL_POLL_SECONDS": "0.2",
    }
    try:
        with running_stack(quick) as running:
            yield running
    except StackFailed as failure:
        pytest.fail(str(failure))


@pytest.fixture
def client(stack: StackProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        yield http


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _gone(pid: int, timeout: float = 10.0) -> bool:
    """True once the process has exited: pg_ctl returns when the pid file is gone, a moment before."""
    deadline = time.monotonic() + timeout
    while _process_exists(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _port_is_free(port: int) -> bool:
    """True when a server may listen on `port`: bound the way servers bind, with SO_REUSEADDR, so a
    port left in TIME_WAIT by a closed connection counts as free and only a live listener does not."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_health_has_request_id_and_security_headers(client: httpx.Client) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["X-Request-Id"]
    assert {name.lower() for name in response.headers} >= SECURITY_HEADERS
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_readiness_reaches_the_database(client: httpx.Client) -> None:
    response = client.get("/api/v1/health/ready")
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["database"] == "ok"


def test_openapi_document(client: httpx.Client) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert any(path.endswith("/auth/register") for path in document["paths"])


def test_register_login_and_me(client: httpx.Client) -> None:
    email = f"e2e-{secrets.token_hex(4)}@example.com"
    password = "correct horse battery staple"
    registered = client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": password, "name": "E2E", "organization_name": "E2E Org"},
    )
    assert registered.status_code == 201, registered.text
    assert registered.headers["Location"] == "/api/v1/auth/me"

    login = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]

    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    assert me.json()["email"] == email
    assert me.json()["organization_name"] == "E2E Org"
    assert client.get("/api/v1/auth/me").status_code == 401


def test_demo_login_printed_at_startup_works(stack: StackProcess, client: httpx.Client) -> None:
    login = client.post(
        "/api/v1/auth/login", json={"email": stack.demo_email, "password": stack.demo_password}
    )
    assert login.status_code == 200, login.text
    assert login.json()["user"]["role"] == "admin"
    assert stack.stored_secrets()["demo_password"] == stack.demo_password


def test_demo_datasource_runs_a_saved_query_end_to_end(stack: StackProcess, client: httpx.Client) -> None:
    """Through the HTTP API only: the demo datasource, a query with a parameter, a run through the
    queue and the runner, then a page of its results."""
    login = client.post(
        "/api/v1/auth/login", json={"email": stack.demo_email, "password": stack.demo_password}
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    datasources = client.get("/api/v1/datasources", headers=headers).json()["items"]
    demo = next(item for item in datasources if item["name"].startswith("Demo shop"))
    # The sample's reader is a read-only login: the audit finds nothing.
    assert (demo["login_audit"]["status"], demo["login_audit"]["findings"]) == ("passed", [])
    assert client.post(f"/api/v1/datasources/{demo['id']}/test", headers=headers).json()["ok"] is True
    query = client.post(
        "/api/v1/queries",
        headers=headers,
        json={
            "name": "Customers by country",
            "datasource_id": demo["id"],
            "sql": "SELECT country, count(*) AS customers FROM customers"
            " WHERE signed_up_at < {{ before }} GROUP BY 1 ORDER BY 2 DESC, 1",
            "parameters": [{"name": "before", "type": "datetime", "default": "2030-01-01T00:00:00Z"}],
        },
    )
    assert query.status_code == 201, query.text
    started = client.post(f"/api/v1/queries/{query.json()['id']}/runs", headers=headers, json={})
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    for _ in range(100):
        run = client.get(f"/api/v1/runs/{run_id}", headers=headers).json()
        if run["status"] not in ("queued", "running"):
            break
        time.sleep(0.1)
    assert run["status"] == "succeeded", run
    assert run["row_count"] > 0
    page = client.get(f"/api/v1/runs/{run_id}/results", headers=headers, params={"limit": 2}).json()
    assert [column["name"] for column in page["columns"]] == ["country", "customers"]
    assert len(page["rows"]) == 2
    assert page["total_rows"] == run["row_count"]


def test_unknown_api_path_gets_the_api_404_envelope(client: httpx.Client) -> None:
    response = client.get("/api/v1/no-such-resource/42")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert error["error_id"]


def test_path_outside_every_route_gets_api_gateways_404(client: httpx.Client) -> None:
    """API Gateway's MISSING_AUTHENTICATION_TOKEN (its answer for a path no route takes), rendered by the
    template as a 404 in the API's envelope."""
    for method, path in (("GET", "/"), ("POST", "/api/v2/health"), ("GET", "/api")):
        response = client.request(method, path)
        assert response.status_code == 404, path
        assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
        assert response.json()["error"]["code"] == "not_found"


def test_every_method_gets_an_answer_from_the_api_never_a_501(client: httpx.Client) -> None:
    for method in ("TRACE", "CONNECT", "PROPFIND"):
        response = client.request(method, "/api/v1/api-keys")
        assert 400 <= response.status_code < 500, (method, response.status_code, response.text)
        assert response.json()["error"]["message"], method


def test_log_never_shows_credentials(stack: StackProcess, client: httpx.Client) -> None:
    secret_query = "token-" + secrets.token_hex(8)
    client.get(f"/api/v1/health?reset={secret_query}", headers={"Authorization": "Bearer not-a-real-token"})
    client.post("/api/v1/auth/login", json={"email": "x@example.com", "password": "hunter2-" + secret_query})
    log = stack.log.read_text(encoding="utf-8", errors="replace")
    assert "GET /api/v1/health 200" in log
    assert secret_query not in log
    assert "not-a-real-token" not in log


def test_secrets_file_is_private(stack: StackProcess) -> None:
    mode = (stack.home / "secrets.json").stat().st_mode & 0o777
    assert mode == 0o600
    assert len(stack.stored_secrets()["jwt_secret"]) >= 64


def test_sample_database_has_two_years_of_data(stack: StackProcess) -> None:
    def scalar(conn: psycopg.Connection[Any], query: str) -> Any:
        row = conn.execute(query).fetchone()
        assert row is not None
        return row[0]

    with psycopg.connect(stack.reader_url()) as conn:
        counts = {
            table: scalar(conn, f"SELECT count(*) FROM {table}")
            for table in ("customers", "products", "orders", "order_items", "events")
        }
        span = scalar(conn, "SELECT max(ordered_at) - min(ordered_at) FROM orders")
        orphans = scalar(
            conn,
            "SELECT count(*) FROM order_items i LEFT JOIN orders o ON o.id = i.order_id WHERE o.id IS NULL",
        )
        totals_match = scalar(
            conn,
            "SELECT bool_and(o.total = o.subtotal - o.discount + o.shipping) FROM orders o",
        )
    assert counts["customers"] == 2_000
    assert counts["products"] == 200
    assert counts["orders"] == 20_000
    assert 45_000 <= counts["order_items"] <= 55_000
    assert counts["events"] == 50_000
    assert span.days >= 700
    assert orphans == 0
    assert totals_match is True


def test_sample_reader_cannot_write(stack: StackProcess) -> None:
    with psycopg.connect(stack.reader_url(), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO customers (id) VALUES (9999)")
        # default_transaction_read_only is only a default: privileges must refuse writes as well.
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM events")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE stolen (id int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TEMP TABLE scratch (id int)")


def test_sample_reader_cannot_reach_loupe_metadata(stack: StackProcess) -> None:
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(stack.reader_url(database="loupe"))
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(stack.reader_url(password="wrong-password"))


def test_stops_cleanly_and_restarts_with_the_same_data(stack: StackProcess) -> None:
    first_start = stack.startup_seconds
    postgres_pid = stack.postgres_pid
    assert postgres_pid is not None
    assert _process_exists(postgres_pid)
    demo_password = stack.demo_password
    # The functions the tests above invoked run in worker processes of their own.
    workers = {int(pid) for pid in WORKER_STARTED.findall(stack.log.read_text(encoding="utf-8"))}
    assert workers
    assert stack.process is not None
    assert stack.process.pid not in workers
    assert all(_process_exists(pid) for pid in workers)

    assert stack.stop() == 0, stack.output[-4000:]
    assert "Loupe local stack stopped" in stack.output
    assert "Traceback" not in stack.output
    assert _gone(postgres_pid)
    assert all(_gone(pid) for pid in workers)
    assert _port_is_free(stack.port)
    assert _port_is_free(stack.moto_port)

    stack.start()
    assert stack.demo_password == demo_password
    assert stack.startup_seconds < first_start
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        login = http.post("/api/v1/auth/login", json={"email": stack.demo_email, "password": demo_password})
    assert login.status_code == 200, login.text
    restarted_postgres = stack.postgres_pid
    assert stack.stop() == 0, stack.output[-4000:]
    assert restarted_postgres is not None
    assert _gone(restarted_postgres)


# The gateway alone: a recording handler stands in for the functions, so no database is needed.


@dataclass
class Recorder:
    result: dict[str, Any] = field(default_factory=lambda: {"statusCode": 200, "body": "{}"})
    events: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        if self.fail:
            raise RuntimeError("handler crashed")
        return self.result


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def gateway_url(recorder: Recorder) -> Iterator[str]:
    server: GatewayServer = serve(Gateway(handler_for=lambda function: recorder), port=0)
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        shutdown(server)


def test_gateway_builds_the_rest_event(recorder: Recorder, gateway_url: str) -> None:
    response = httpx.get(
        f"{gateway_url}/api/v1/things/a%20b?tag=x&tag=y&empty=&q=caf%C3%A9",
        headers=[("Accept", "application/json"), ("X-Trace", "one"), ("X-Trace", "two")],
    )
    assert response.status_code == 200
    (event,) = recorder.events
    assert event["httpMethod"] == "GET"
    assert event["resource"] == "/api/v1/{proxy+}"
    assert event["path"] == "/api/v1/things/a%20b"
    assert event["pathParameters"] == {"proxy": "things/a b"}
    assert event["multiValueQueryStringParameters"] == {"tag": ["x", "y"], "empty": [""], "q": ["café"]}
    assert event["queryStringParameters"] == {"tag": "y", "empty": "", "q": "café"}
    assert event["multiValueHeaders"]["X-Trace"] == ["one", "two"]
    assert event["headers"]["X-Trace"] == "two"
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    assert event["requestContext"]["resourcePath"] == "/api/v1/{proxy+}"
    assert event["body"] is None
    assert event["isBase64Encoded"] is False


def test_gateway_passes_text_and_binary_bodies(recorder: Recorder, gateway_url: str) -> None:
    httpx.post(f"{gateway_url}/api/v1/auth/login", json={"email": "é@example.com"})
    binary = bytes([0xFF, 0x00, 0x01, 0xFE])
    httpx.put(f"{gateway_url}/api/v1/health/upload", content=binary)
    text_event, binary_event = recorder.events
    assert json.loads(text_event["body"]) == {"email": "é@example.com"}
    assert text_event["isBase64Encoded"] is False
    assert binary_event["isBase64Encoded"] is True
    assert base64.b64decode(binary_event["body"]) == binary
    assert binary_event["pathParameters"] == {"proxy": "upload"}


def test_gateway_writes_back_headers_and_base64_bodies(recorder: Recorder, gateway_url: str) -> None:
    payload = bytes(range(256))
    recorder.result = {
        "statusCode": 201,
        "headers": {"X-Single": "1", "Content-Type": "application/octet-stream"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "Content-Type": ["application/octet-stream"]},
        "body": base64.b64encode(payload).decode(),
        "isBase64Encoded": True,
    }
    # API Gateway decodes a base64 body for a client that accepts one of its BinaryMediaTypes first.
    response = httpx.get(f"{gateway_url}/api/v1/health", headers={"Accept": "image/png"})
    assert response.status_code == 201
    assert response.content == payload
    assert httpx.get(f"{gateway_url}/api/v1/health").content == base64.b64encode(payload)
    assert response.headers.get_list("Set-Cookie") == ["a=1", "b=2"]
    assert response.headers.get_list("Content-Type") == ["application/octet-stream"]
    assert response.headers["X-Single"] == "1"

    head = httpx.head(f"{gateway_url}/api/v1/health")
    assert head.status_code == 201
    assert head.content == b""


def test_gateway_answers_itself_for_unrouted_paths_crashes_and_huge_bodies(
    recorder: Recorder, gateway_url: str
) -> None:
    unrouted = httpx.get(f"{gateway_url}/internal/admin")
    assert unrouted.status_code == 404
    assert recorder.events == []

    recorder.fail = True
    crashed = httpx.get(f"{gateway_url}/api/v1/health")
    assert crashed.status_code == 502
    assert crashed.json()["error"]["code"] == "internal_error"
    assert "handler crashed" not in crashed.text

    recorder.fail = False
    # Headers only: the gateway answers from Content-Length without reading the body.
    with socket.create_connection(("127.0.0.1", int(gateway_url.rsplit(":", 1)[1])), timeout=10) as raw:
        length = MAX_REQUEST_BYTES + 1
        raw.sendall(
            f"POST /api/v1/health HTTP/1.1\r\nHost: local\r\nContent-Length: {length}\r\n\r\n".encode()
        )
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    assert len(recorder.events) == 1


def test_gateway_runs_one_http_function_at_a_time_in_process() -> None:
    """Powertools' resolvers share the event being resolved (a class attribute): two HTTP functions
    resolving at once in this process could answer with each other's credentials. (The local stack's
    workers are processes of their own: tests/e2e/test_local_workers.py.)"""
    active: list[str] = []
    overlaps: list[tuple[str, ...]] = []
    guard = threading.Lock()

    def handler_for(function: str) -> Any:
        def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
            with guard:
                active.append(function)
                if len(active) > 1:
                    overlaps.append(tuple(active))
            time.sleep(0.02)
            with guard:
                active.remove(function)
            return {"statusCode": 200, "body": "{}"}

        return handle

    server = serve(Gateway(handler_for=handler_for), port=0)
    paths = ["/api/v1/health", "/api/v1/queries", "/api/v1/dashboards", "/api/v1/auth/me"] * 4
    try:
        with ThreadPoolExecutor(max_workers=len(paths)) as pool:
            statuses = list(
                pool.map(lambda path: httpx.get(f"http://127.0.0.1:{server.port}{path}").status_code, paths)
            )
    finally:
        shutdown(server)
    assert statuses == [200] * len(paths)
    assert overlaps == []


def request_of(body: bytes = b"") -> HttpRequest:
    return HttpRequest("POST", "/api/v1/health", [("Content-Type", "application/json")], body)


def test_a_response_over_lambdas_payload_limit_is_api_gateways_502(recorder: Recorder) -> None:
    """Lambda refuses a proxy response whose JSON is over 6,291,556 bytes; API Gateway answers 502."""
    gateway = Gateway(handler_for=lambda function: recorder)
    overhead = len(json.dumps({"statusCode": 200, "body": ""}))
    recorder.result = {"statusCode": 200, "body": "x" * (MAX_RESPONSE_BYTES - overhead)}
    assert gateway.handle(request_of()).status == 200
    recorder.result = {"statusCode": 200, "body": "x" * (MAX_RESPONSE_BYTES - overhead + 1)}
    refused = gateway.handle(request_of())
    assert refused.status == 502
    assert json.loads(refused.body)["error"]["code"] == "internal_error"
    # Escaping counts: quotes double in the serialized response.
    recorder.result = {"statusCode": 200, "body": '"' * (MAX_RESPONSE_BYTES // 2)}
    assert gateway.handle(request_of()).status == 502


def test_an_event_over_lambdas_request_limit_is_413_and_never_invoked(recorder: Recorder) -> None:
    gateway = Gateway(handler_for=lambda function: recorder)
    route, parameters = find_route("POST", "/api/v1/health") or pytest.fail("no route")
    probe = len(json.dumps(gateway.event(request_of(b"a" * 1000), route, parameters)))
    fits = b"a" * (MAX_EVENT_BYTES - (probe - 1000))
    assert gateway.handle(request_of(fits)).status == 200
    assert len(recorder.events) == 1
    refused = gateway.handle(request_of(fits + b"a"))
    assert refused.status == 413
    assert json.loads(refused.body)["error"]["code"] == "payload_too_large"
    assert len(recorder.events) == 1
    # A binary body travels base64-encoded: 4/3 of its size counts.
    assert gateway.handle(request_of(b"\xff" * (MAX_EVENT_BYTES * 3 // 4))).status == 413


def test_the_largest_body_loupe_accepts_fits_lambdas_request_limit() -> None:
    """LOUPE_MAX_BODY_BYTES may be raised at most to a size whose worst-case event still fits: each
    character of a JSON text escaped (doubled), or a binary body base64-encoded, and the rest of the event."""
    ceiling = Settings.model_fields["max_body_bytes"].metadata
    largest = next(item.le for item in ceiling if getattr(item, "le", None) is not None)
    gateway = Gateway()
    route, parameters = find_route("POST", "/api/v1/canvases") or pytest.fail("no route")
    headers = [(f"X-Header-{n}", "v" * 100) for n in range(90)]  # API Gateway's 10 KiB of headers
    event = gateway.event(HttpRequest("POST", "/api/v1/canvases", headers, b""), route, parameters)
    rest = len(json.dumps(event))
    assert 2 * largest + rest <= MAX_EVENT_BYTES
    assert 4 * -(-largest // 3) + rest <= MAX_EVENT_BYTES


def test_an_integration_over_the_timeout_is_504_and_a_quick_one_answers() -> None:
    release = threading.Event()

    def handler_for(function: str) -> Any:
        def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
            if event["path"].endswith("/slow"):
                release.wait(10)
            return {"statusCode": 200, "body": "{}"}

        return handle

    gateway = Gateway(handler_for=handler_for, integration_timeout=0.2)
    try:
        timed_out = gateway.handle(HttpRequest("GET", "/api/v1/health/slow"))
        assert timed_out.status == 504
        assert json.loads(timed_out.body)["error"]["code"] == "gateway_timeout"
        assert ("x-amzn-ErrorType", "IntegrationTimeout") in timed_out.headers
    finally:
        release.set()
    assert gateway.idle(5)
    assert gateway.handle(HttpRequest("GET", "/api/v1/health")).status == 200


def test_gateway_responses_carry_security_headers_and_cors(recorder: Recorder) -> None:
    recorder.fail = True
    crashed = Gateway(handler_for=lambda function: recorder).handle(request_of())
    headers = dict(crashed.headers)
    for name, value in resolver.SECURITY_HEADERS.items():
        assert headers[name] == value, name
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert json.loads(crashed.body)["error"]["error_id"] == headers["X-Request-Id"]
