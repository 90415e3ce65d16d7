"""Benchmarks of runs: rows streamed from PostgreSQL into a stored result against `psql \\copy | gzip`, the
runner's peak memory as the row count grows, a page deep inside a large result, and runs per second.

Every figure is judged against a baseline measured in the same run, on the same server and port.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit
from uuid import UUID

import psycopg
from psycopg import sql

from loupe.api.prefix import API_PREFIX

ROOT = Path(__file__).resolve().parents[1]
RESULT_MARKER = "BENCH_RESULT "
SOURCE_DATABASE = "loupe_bench_source"
SOURCE_TABLE = "bench_rows"
# Six columns of the everyday types: integer, decimal, text, timestamp, boolean, float.
SOURCE_SQL = "SELECT id, amount, label, created_at, active, score FROM bench_rows WHERE id <= {rows}"
SCHEDULES = 100_000
DUE_SCHEDULES = 10_000
PAGE_OFFSET = 5_000_000
PAGE_LIMIT = 1_000
PAGE_REPEATS = 15
TRIVIAL_RUNS = 100


class RunsBenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Transfer:
    rows: int
    runner_s: float
    baseline_s: float
    peak_rss_mb: float
    stored_bytes: int
    baseline_bytes: int


@dataclass(frozen=True)
class SchedulerTick:
    schedules: int
    due: int
    fired: int
    sent: int
    seconds: float
    due_plan_seq_scans: list[str]


@dataclass(frozen=True)
class RunsFigures:
    tick: SchedulerTick
    transfers: list[Transfer]
    page_ms: float
    page_floor_ms: float
    page_chunks: int
    run_ms: float
    run_floor_ms: float


def _row_counts() -> list[int]:
    configured = os.environ.get("BENCH_RUN_ROWS", "1000000,10000000")
    counts = sorted({int(part) for part in configured.split(",") if part.strip()})
    if not counts or counts[0] < 1:
        raise RunsBenchError("BENCH_RUN_ROWS must list positive row counts")
    return counts


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


def _tcp_url(url: str, stack: ExitStack) -> str:
    """Datasources are reached over TCP (the policy refuses socket paths): put a port before a socket."""
    from infra.local.tcp_proxy import TcpToUnixProxy

    folder = parse_qs(urlsplit(url).query).get("host")
    if not folder:
        return url
    proxy = TcpToUnixProxy(Path(folder[0]) / ".s.PGSQL.5432").start()
    stack.callback(proxy.stop)
    parts = urlsplit(url)
    login = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{login}@127.0.0.1:{proxy.port}", query=""))


def _source_database(server_url: str, rows: int) -> str:
    """A table of `rows` rows, made once and kept between bench runs on the same server."""
    with psycopg.connect(server_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (SOURCE_DATABASE,)).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SOURCE_DATABASE)))
    url = _with_database(server_url, SOURCE_DATABASE)
    with psycopg.connect(url, autocommit=True) as conn:
        present = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (SOURCE_TABLE,)).fetchone()
        table = sql.Identifier(SOURCE_TABLE)
        have = (
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
            if present and present[0]
            else None
        )
        if have is None or have[0] != rows:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} AS SELECT n::bigint AS id,"
                    " round((n %% 100000) / 7.0, 2)::numeric(12, 2) AS amount,"
                    " 'customer ' || (n %% 50000) AS label,"
                    " timestamptz '2026-01-01' + n * interval '1 second' AS created_at,"
                    " n %% 3 = 0 AS active, (n %% 1000) / 3.0::float8 AS score"
                    " FROM generate_series(1, %s) AS n"
                ).format(table),
                (rows,),
            )
            conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (id)").format(table))
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(table))
    return url


def _psql() -> str:
    found = shutil.which("psql")
    if found is None:
        raise RunsBenchError("psql is needed for the baseline: install the PostgreSQL client")
    return found


def _gzip() -> str:
    found = shutil.which("gzip")
    if found is None:
        raise RunsBenchError("gzip is needed for the baseline")
    return found


def baseline_copy(url: str, rows: int) -> tuple[float, int]:
    """`psql -c "\\copy (SQL) to stdout csv" | gzip` of the source SQL over `rows` rows."""
    return copy_to_gzip(url, SOURCE_SQL.format(rows=rows))


def copy_to_gzip(url: str, query: str) -> tuple[float, int]:
    """`psql -c "\\copy (query) to stdout csv" | gzip`: the wall time and the compressed size."""
    copy = f"\\copy ({query}) to stdout csv"
    started = time.perf_counter()
    psql = subprocess.Popen([_psql(), url, "-X", "-q", "-c", copy], stdout=subprocess.PIPE)  # noqa: S603
    gzip = subprocess.run([_gzip(), "-c"], stdin=psql.stdout, capture_output=True, check=True)  # noqa: S603
    assert psql.stdout is not None
    psql.stdout.close()
    if psql.wait() != 0:
        raise RunsBenchError("psql \\copy failed")
    return time.perf_counter() - started, len(gzip.stdout)


class LocalApi:
    """The HTTP API in this process, through the local gateway, as one registered user."""

    def __init__(self) -> None:
        from infra.local.gateway import Gateway

        self.gateway = Gateway()
        self.token = ""

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        from infra.local.gateway import HttpRequest

        headers = [("Content-Type", "application/json")]
        if self.token:
            headers.append(("Authorization", f"Bearer {self.token}"))
        raw = json.dumps(body).encode() if body is not None else b""
        response = self.gateway.handle(HttpRequest(method, path, headers, raw))
        if response.status >= 400:
            raise RunsBenchError(f"{method} {path}: {response.status} {response.body[:300]!r}")
        parsed: dict[str, Any] = json.loads(response.body) if response.body else {}
        return parsed


def _child(queue_url: str, function: str) -> dict[str, Any]:
    """One batch of the queue through `function` in a fresh process (bench.runner_child)."""
    completed = subprocess.run(  # noqa: S603  # our own interpreter and module
        [sys.executable, "-m", "bench.runner_child", queue_url, function],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            return result
    raise RunsBenchError(f"the {function} process failed:\n{completed.stderr[-3000:]}")


def _wait_finished(api: LocalApi, run_id: str) -> dict[str, Any]:
    run = api.call("GET", f"{API_PREFIX}/runs/{run_id}")
    if run["status"] != "succeeded":
        raise RunsBenchError(f"run {run_id} ended {run['status']}: {run.get('error')}")
    return run


def _page(api: LocalApi, run_id: str, bucket: str, organization_id: str) -> tuple[float, float, int]:
    """A page at PAGE_OFFSET through the runs function, against the floor of reading one chunk from S3."""
    from loupe.results.store import ResultReader, s3_client

    path = f"{API_PREFIX}/runs/{run_id}/results?offset={PAGE_OFFSET}&limit={PAGE_LIMIT}"
    timings = []
    for _ in range(PAGE_REPEATS):
        started = time.perf_counter()
        page = api.call("GET", path)
        timings.append(time.perf_counter() - started)
        if len(page["rows"]) != PAGE_LIMIT or page["rows"][0][0] != PAGE_OFFSET + 1:
            raise RunsBenchError("the page at the offset holds the wrong rows")
    manifest = ResultReader.for_run(bucket, UUID(organization_id), UUID(run_id)).manifest
    chunks = [
        chunk
        for chunk in manifest.chunks
        if chunk.first_row < PAGE_OFFSET + PAGE_LIMIT and chunk.first_row + chunk.rows > PAGE_OFFSET
    ]
    floors = []
    for _ in range(PAGE_REPEATS):
        started = time.perf_counter()
        body = s3_client().get_object(Bucket=bucket, Key=chunks[0].key)["Body"].read()
        zlib.decompress(body, 31)
        floors.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000, statistics.median(floors) * 1000, len(chunks)


def _scheduler_tick(
    database_url: str, organization_id: str, datasource_id: str, api: LocalApi
) -> SchedulerTick:
    """SCHEDULES schedules of which DUE_SCHEDULES are due: one tick, timed, turns those into runs and
    sends them; and the plan of the due query must use its index."""
    from datetime import UTC, datetime

    from loupe.repositories import schedules as scheduling
    from loupe.services.scheduler import BATCH_SIZE, tick

    query = api.call(
        "POST",
        f"{API_PREFIX}/queries",
        {"name": "scheduled", "datasource_id": datasource_id, "sql": "SELECT 1"},
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schedules (organization_id, query_id, name, cron, next_run_at)"
            " SELECT %s, %s, 'bench ' || n, '0 * * * *',"
            " CASE WHEN n <= %s THEN now() - interval '1 minute' ELSE now() + interval '1 hour' END"
            " FROM generate_series(1, %s) AS n",
            (organization_id, query["id"], DUE_SCHEDULES, SCHEDULES),
        )
        conn.execute("ANALYZE schedules")
        plan = conn.execute(
            "EXPLAIN (FORMAT JSON) " + scheduling.DUE_SQL, (datetime.now(UTC), BATCH_SIZE)
        ).fetchone()
    seq_scans = sorted(
        node["Relation Name"]
        for node in _plan_nodes(plan[0][0]["Plan"] if plan else {})
        if node["Node Type"] == "Seq Scan"
    )
    with _sqs_accepting_batches():
        started = time.perf_counter()
        counts = tick(datetime.now(UTC))
        seconds = time.perf_counter() - started
    return SchedulerTick(SCHEDULES, DUE_SCHEDULES, counts.fired, counts.sent, seconds, seq_scans)


class _AcceptingSqs(BaseHTTPRequestHandler):
    """Answers SendMessageBatch as SQS does, accepting every entry."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers.get("X-Amz-Target") != "AmazonSQS.SendMessageBatch":
            self.send_error(400)
            return
        answer = {
            "Successful": [
                {
                    "Id": entry["Id"],
                    "MessageId": f"bench-{entry['Id']}",
                    "MD5OfMessageBody": hashlib.md5(entry["MessageBody"].encode()).hexdigest(),  # noqa: S324  # SQS's own checksum
                }
                for entry in body["Entries"]
            ],
            "Failed": [],
        }
        raw = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def _sqs_accepting_batches() -> Iterator[None]:
    """SQS for the scheduler's tick: moto's SendMessageBatch slows with every message its queue holds
    (minutes for 10,000), which would time moto, not the tick. A stand-in that accepts every batch."""
    from loupe.queue import sqs_client

    server = ThreadingHTTPServer(("127.0.0.1", 0), _AcceptingSqs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    os.environ["AWS_ENDPOINT_URL_SQS"] = f"http://127.0.0.1:{server.server_address[1]}"
    sqs_client.cache_clear()
    try:
        yield
    finally:
        del os.environ["AWS_ENDPOINT_URL_SQS"]
        sqs_client.cache_clear()
        server.shutdown()
        server.server_close()


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


def _trivial_runs(api: LocalApi, datasource_id: str, queue_url: str, tcp_url: str) -> tuple[float, float]:
    """Milliseconds per `SELECT 1` run through the queue and the runner (in batches, as the event source
    sends them), against a fresh psycopg connection and `SELECT 1` per run."""
    from infra.local.queue_poller import QueuePoller
    from loupe.queue import sqs_client

    run_ids = [
        api.call("POST", f"{API_PREFIX}/runs", {"datasource_id": datasource_id, "sql": "SELECT 1"})["id"]
        for _ in range(TRIVIAL_RUNS)
    ]
    poller = QueuePoller(sqs_client(), queue_url, "RunnerFunction", api.gateway.invoke)
    started = time.perf_counter()
    handled = 0
    while handled < TRIVIAL_RUNS:
        handled += poller.poll_once()
    candidate = (time.perf_counter() - started) / TRIVIAL_RUNS
    for run_id in run_ids:
        _wait_finished(api, run_id)
    started = time.perf_counter()
    for _ in range(TRIVIAL_RUNS):
        with psycopg.connect(tcp_url) as conn:
            conn.execute("SELECT 1").fetchone()
    floor = (time.perf_counter() - started) / TRIVIAL_RUNS
    return candidate * 1000, floor * 1000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def _local_aws() -> Iterator[dict[str, str]]:
    """moto's server in a process of its own: in this one, its request handling would share the GIL with
    the TCP proxy both the runner and psql read through, and slow the runner's round trips alone."""
    from infra.local.devstack import create_credentials_key, create_runs_resources

    port = _free_port()
    server = subprocess.Popen(  # noqa: S603  # our own interpreter and moto's module
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RunsBenchError("moto's server did not start") from None
                time.sleep(0.1)
        variables = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # moto's placeholder credentials
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        os.environ.update(variables)
        variables["LOUPE_KMS_KEY_ID"] = create_credentials_key(endpoint)
        variables |= create_runs_resources(endpoint)
        yield variables
    finally:
        server.terminate()
        server.wait(timeout=30)


@dataclass(frozen=True)
class BenchSession:
    """A registered user's API in this process, its datasource on the source table, and moto."""

    api: LocalApi
    variables: dict[str, str]
    organization_id: str
    datasource_id: str
    source_url: str


def open_session(stack: ExitStack, server_url: str, database_url: str, rows: int) -> BenchSession:
    """The source table of `rows` rows on `server_url`, moto in its own process, the settings, and a user
    with a datasource on the table; everything closes with `stack`."""
    from loupe import db
    from loupe.config import get_settings
    from loupe.observability import logger
    from loupe.queue import sqs_client
    from loupe.results.store import s3_client
    from loupe.security import crypto

    source_url = _source_database(server_url, rows)
    tcp_source = _tcp_url(source_url, stack)
    variables = stack.enter_context(_local_aws())
    os.environ.update(variables)
    os.environ.update(
        {
            "LOUPE_ALLOW_PRIVATE_DATASOURCE_HOSTS": "true",
            "LOUPE_MAX_ACTIVE_RUNS_PER_USER": str(TRIVIAL_RUNS + 10),
            "POWERTOOLS_LOG_LEVEL": "WARNING",  # the child processes'
            "DATABASE_URL": database_url,
        }
    )
    # Clients made for an earlier stage's moto (a stack the bench started and stopped) are dropped.
    get_settings.cache_clear()
    s3_client.cache_clear()
    sqs_client.cache_clear()
    crypto.kms_client.cache_clear()
    stack.callback(db.close)
    # The access log of every API call would drown the table.
    level = logger.log_level
    logger.setLevel("WARNING")
    stack.callback(logger.setLevel, level)
    api = LocalApi()
    registered = api.call(
        "POST",
        f"{API_PREFIX}/auth/register",
        {
            "email": f"runs-bench-{os.getpid()}-{time.monotonic_ns()}@example.com",
            "password": "bench-password-long-enough",
            "name": "Runs Bench",
            "organization_name": "Runs Bench",
        },
    )
    api.token = registered["access_token"]
    datasource = api.call(
        "POST",
        f"{API_PREFIX}/datasources",
        # The bench's own server, reached as its superuser: a risk accepted for a throwaway source.
        {
            "name": "bench source",
            "type": "postgres",
            "connection_string": tcp_source,
            "accepted_risks": ["superuser"],
        },
    )
    return BenchSession(api, variables, registered["user"]["organization_id"], datasource["id"], tcp_source)


def stored_run(session: BenchSession, rows: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run of the source SQL over `rows` rows, executed by the runner in a process of its own: the
    finished run and the child's report."""
    run = session.api.call(
        "POST",
        f"{API_PREFIX}/runs",
        {"datasource_id": session.datasource_id, "sql": SOURCE_SQL.format(rows=rows)},
    )
    child = _child(session.variables["LOUPE_RUNS_QUEUE_URL"], "RunnerFunction")
    finished = _wait_finished(session.api, run["id"])
    if finished["row_count"] != rows or finished["truncated"]:
        raise RunsBenchError(f"the run stored {finished['row_count']} rows, not {rows}")
    return finished, child


def measure(server_url: str, database_url: str) -> RunsFigures:
    """Everything on `server_url`: the metadata database `database_url` and the source table beside it."""
    from loupe.queue import sqs_client
    from loupe.results.store import s3_client

    counts = _row_counts()
    with ExitStack() as stack:
        session = open_session(stack, server_url, database_url, counts[-1])
        api, organization_id, datasource_id = session.api, session.organization_id, session.datasource_id
        tcp_source = session.source_url
        queue_url = session.variables["LOUPE_RUNS_QUEUE_URL"]
        bucket = session.variables["LOUPE_RESULTS_BUCKET"]
        transfers = []
        largest_run = ""
        for rows in counts:
            baseline_s, baseline_bytes = baseline_copy(tcp_source, rows)
            finished, child = stored_run(session, rows)
            transfers.append(
                Transfer(
                    rows=rows,
                    runner_s=child["seconds"],
                    baseline_s=baseline_s,
                    peak_rss_mb=child["peak_rss_mb"],
                    stored_bytes=finished["byte_size"],
                    baseline_bytes=baseline_bytes,
                )
            )
            largest_run = finished["id"]
        if counts[-1] >= PAGE_OFFSET + PAGE_LIMIT:
            page_ms, page_floor_ms, page_chunks = _page(api, largest_run, bucket, organization_id)
        else:
            page_ms = page_floor_ms = float("nan")
            page_chunks = 0
        run_ms, run_floor_ms = _trivial_runs(api, datasource_id, queue_url, tcp_source)
        s3_client.cache_clear()
        sqs_client.cache_clear()
        scheduler_tick = _scheduler_tick(database_url, organization_id, datasource_id, api)
    return RunsFigures(scheduler_tick, transfers, page_ms, page_floor_ms, page_chunks, run_ms, run_floor_ms)
