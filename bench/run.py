"""`make bench`: cold start and warm latency of the auth handler, each as a ratio to a same-run baseline.

Prints a table, writes bench/results.json, and exits 1 when a ratio misses its target.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.abc import Params, Query

from bench import (
    artifacts,
    dev_run,
    exports,
    importtime,
    layer,
    load,
    out,
    queries_list,
    render,
    runs,
    statements,
)
from bench.cold import RESULT_MARKER
from loupe.api.prefix import API_PREFIX

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "loupe"
RESULTS = ROOT / "bench" / "results.json"
# The cold-start processes' bytecode (PYTHONPYCACHEPREFIX): checked against the sources, kept between runs.
BYTECODE_CACHE = ROOT / ".loupe" / "bench-bytecode"
FUNCTION = "AuthFunction"
ME_PATH = f"{API_PREFIX}/auth/me"
COLD_TARGET = 1.3
WARM_TARGET = 1.5
LIST_TARGET = 1.5
TRANSFER_TARGET = 2.0
RUNNER_MEMORY_MB = 256.0
# Memory "unchanged" as rows grow tenfold: within 10% of the smallest run's peak.
MEMORY_GROWTH_TARGET = 1.1
PAGE_BUDGET_MS = 100.0
TICK_BUDGET_SECONDS = 10.0
# The built layer plus the largest function, unzipped (Lambda's limit for both is 250 MB).
DEPLOYED_BUDGET_MB = 100.0
# The export function carries DuckDB's layer too (ADR 11): it is held to Lambda's own limit.
LAMBDA_UNZIPPED_MB = 250.0
# Modules whose cumulative import time the report names (the usual suspects of a slow cold start).
WATCHED_IMPORTS = (
    "loupe.observability",
    "loupe.api.openapi",
    "loupe.api.routes",
    "loupe.models.auth",
    "loupe.security.tokens",
    "loupe.config",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.event_handler.openapi.models",
    "aws_lambda_powertools.tracing",
    "aws_xray_sdk",
    "pydantic",
    "email_validator",
    "jwt",
    "cryptography",
    "argon2",
    "psycopg",
    "boto3",
    "botocore",
)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
EventFactory = Callable[[], dict[str, Any]]


class BenchError(RuntimeError):
    """The benchmark could not run as designed (its numbers would mean nothing)."""


@dataclass(frozen=True)
class Config:
    """Run sizes from BENCH_COLD_RUNS, BENCH_WARM_CALLS, BENCH_WARM_BLOCKS and BENCH_WARMUP_CALLS.

    Other knobs: BENCH_DATABASE_URL (a server to use instead of an embedded one), BENCH_LAMBDA_ENV=0
    (do not set the Lambda runtime's variables), BENCH_LAYER_ONLY=0 (let the dev venv's extra packages in),
    BENCH_REQUESTS_ONLY=1 (only cold start, warm /auth/me and the list page: no load, runs or sam build),
    BENCH_DEV_RUN_ROWS (the dev end-to-end run's rows, 1,000,000).
    """

    cold_runs: int
    warm_calls: int
    warm_blocks: int
    warmup_calls: int
    requests_only: bool = False

    @classmethod
    def from_env(cls) -> Config:
        def number(name: str, default: int) -> int:
            value = int(os.environ.get(name, default))
            if value < 1:
                raise BenchError(f"{name} must be at least 1")
            return value

        blocks = number("BENCH_WARM_BLOCKS", 10)
        calls = number("BENCH_WARM_CALLS", 1000)
        return cls(
            cold_runs=number("BENCH_COLD_RUNS", 15),
            warm_calls=max(blocks, calls // blocks * blocks),
            warm_blocks=blocks,
            warmup_calls=number("BENCH_WARMUP_CALLS", 50),
            requests_only=os.environ.get("BENCH_REQUESTS_ONLY", "0") == "1",
        )


@dataclass(frozen=True)
class Figure:
    """One reported number and the same-run baseline it is judged against."""

    name: str
    unit: str
    value: float
    baseline: float
    target: float | None

    @property
    def ratio(self) -> float:
        return self.value / self.baseline

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.ratio <= self.target

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "value": self.value,
            "baseline": self.baseline,
            "ratio": self.ratio,
            "target_max_ratio": self.target,
            "passed": self.passed,
        }


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) with linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "min": min(values),
        "p50": percentile(values, 0.5),
        "p90": percentile(values, 0.9),
        "p99": percentile(values, 0.99),
        "max": max(values),
    }


@contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send fd 1 to /dev/null: the handler's JSON logs are part of its cost, not of the report."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


# --- database -----------------------------------------------------------------------------------------


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


@contextmanager
def postgres_server() -> Iterator[str]:
    """BENCH_DATABASE_URL's server, or an embedded PostgreSQL in a temporary folder for this run."""
    configured = os.environ.get("BENCH_DATABASE_URL")
    if configured:
        yield configured
        return
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server

    with tempfile.TemporaryDirectory(prefix="loupe-bench-pg-") as data_dir:
        server = get_server(data_dir, cleanup_mode="stop")
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()


@contextmanager
def bench_database(server_url: str) -> Iterator[str]:
    """A fresh, migrated database, dropped at the end."""
    from loupe import migrations

    name = f"loupe_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = with_database(server_url, name)
        migrations.apply(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def template_constants() -> dict[str, str]:
    """The functions' environment variables that template.yaml's Globals set to plain values."""
    from infra.local.template_routes import template

    variables = template()["Globals"]["Function"]["Environment"]["Variables"]
    return {name: value for name, value in variables.items() if isinstance(value, str)}


def configure_environment(database_url: str) -> None:
    """What the function's environment holds in AWS, pointed at the benchmark database."""
    python_path = [str(LAYER), str(ROOT)]
    existing = os.environ.get("PYTHONPATH")
    os.environ.update(template_constants())
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "LOUPE_ENV": "test",
            "LOUPE_JWT_SECRET": secrets.token_urlsafe(36),  # 48 characters
            "LOUPE_RATE_LIMIT_USER_PER_MINUTE": str(statements.USER_REQUESTS_PER_MINUTE),
            "POWERTOOLS_SERVICE_NAME": "auth",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "LoupeBench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONPATH": os.pathsep.join([*python_path, *([existing] if existing else [])]),
        }
    )
    if os.environ.get("BENCH_LAMBDA_ENV", "1") != "0":
        # What the Lambda runtime sets. It matters: outside Lambda the X-Ray SDK, which the Tracer imports
        # even when disabled, builds a botocore client for centralized sampling at import time.
        os.environ.update(
            {
                "LAMBDA_TASK_ROOT": str(handler_location()[0].parent),
                "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
                "AWS_REGION": "us-east-1",
            }
        )
    for entry in reversed(python_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)


# --- requests -----------------------------------------------------------------------------------------


def api_event(method: str, path: str, *, token: str | None = None, body: str | None = None) -> dict[str, Any]:
    """The REST proxy event API Gateway would send for this request (as tests/conftest.py builds it)."""
    from infra.local.events import rest_api_event
    from infra.local.template_routes import find_route

    found = find_route(method, path)
    if found is None or found[0].function != FUNCTION:
        raise BenchError(f"{method} {path} is not routed to {FUNCTION}")
    route, parameters = found
    headers = {"User-Agent": "loupe-bench"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        headers["Content-Type"] = "application/json"
    return rest_api_event(
        method,
        path,
        resource=route.path,
        path_parameters=parameters,
        headers=headers,
        body=body,
        source_ip="198.51.100.7",
    )


def handler_location() -> tuple[Path, str]:
    """The source file and attribute of the function's handler, as load_handler resolves them."""
    from infra.local.template_routes import functions

    properties = functions()[FUNCTION]
    module_path, handler_name = properties["Handler"].rsplit(".", 1)
    return ROOT / properties["CodeUri"] / (module_path.replace(".", "/") + ".py"), handler_name


def register(handler: Handler, context: Any) -> tuple[str, statements.Caller]:
    """One account through the real registration route: its access token and the ids it names."""
    body = json.dumps(
        {
            "email": f"bench-{secrets.token_hex(4)}@example.com",
            "password": secrets.token_urlsafe(18),
            "name": "Bench User",
            "organization_name": "Bench",
        }
    )
    with quiet_stdout():
        response = handler(api_event("POST", f"{API_PREFIX}/auth/register", body=body), context)
    if response["statusCode"] != 201:
        raise BenchError(f"registration failed: {response['statusCode']} {response.get('body')}")
    data = json.loads(response["body"])
    token: str = data["access_token"]
    claims_segment = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(claims_segment + "=" * (-len(claims_segment) % 4)))
    caller = statements.Caller(
        user_id=UUID(data["user"]["id"]),
        session_id=UUID(claims["sid"]),
        organization_id=UUID(data["user"]["organization_id"]),
    )
    return token, caller


class RecordingCursor(psycopg.Cursor[statements.Row]):
    """Notes each statement and its parameters, so the baseline can be checked against the handler."""

    executed: ClassVar[list[tuple[str, Any]]] = []

    def execute(
        self,
        query: Query,
        params: Params | None = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> Self:
        if isinstance(query, sql.Composable):
            text = query.as_string(self.connection)
        elif isinstance(query, bytes):
            text = query.decode()
        else:
            text = str(query)
        RecordingCursor.executed.append((text, tuple(params) if isinstance(params, list) else params))
        execute: Any = super().execute  # one call for both of psycopg's overloads
        result: Self = execute(query, params, prepare=prepare, binary=binary)
        return result


def capture_statements(handler: Handler, event: dict[str, Any], context: Any) -> list[tuple[str, Any]]:
    """The statements (and parameters) one handler request executes, in order."""
    from loupe import db

    with db.transaction() as conn:  # the handler's shared connection
        pass
    RecordingCursor.executed.clear()
    conn.cursor_factory = RecordingCursor
    try:
        with quiet_stdout():
            response = handler(event, context)
    finally:
        conn.cursor_factory = psycopg.Cursor
    if response["statusCode"] != 200:
        raise BenchError(f"{event['path']} answered {response['statusCode']}: {response.get('body')}")
    return list(RecordingCursor.executed)


def verify_statements(handler: Handler, event: EventFactory, context: Any, caller: statements.Caller) -> None:
    """Fail unless one handler request executes exactly the baseline's statements and parameters."""
    capture_statements(handler, event(), context)
    expected = [(statement.query, statement.params) for statement in statements.statements(caller)]
    if RecordingCursor.executed != expected:
        pairs = enumerate(zip_longest(RecordingCursor.executed, expected))
        lines = "\n".join(
            f"  #{index} handler:  {got}\n  #{index} baseline: {want}"
            for index, (got, want) in pairs
            if got != want
        )
        raise BenchError(f"bench/statements.py no longer matches what the handler runs:\n{lines}")


# --- cold start ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColdRun:
    mode: str
    wall_s: float
    import_s: float
    request_s: float
    total_s: float


def cold_once(mode: str, payload: str, *, import_profile: bool = False) -> tuple[ColdRun, str]:
    """Start a fresh interpreter for one request; returns its timings and its stderr."""
    command = [sys.executable, *(["-X", "importtime"] if import_profile else []), "-m", "bench.cold", mode]
    environment = os.environ.copy()
    # Bytecode for every module, as the built layer ships it (layers/loupe/Makefile), written by the
    # untimed first pair: with PYTHONDONTWRITEBYTECODE each start would compile whatever lacks a .pyc.
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    environment["PYTHONPYCACHEPREFIX"] = str(BYTECODE_CACHE)
    started = time.perf_counter()
    process = subprocess.run(  # noqa: S603  # our own interpreter and module
        command, input=payload, capture_output=True, text=True, cwd=ROOT, env=environment, check=False
    )
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise BenchError(f"the {mode} cold start failed:\n{process.stderr[-3000:]}")
    lines = [line for line in process.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if not lines:
        raise BenchError(f"the {mode} cold start printed no result:\n{process.stdout[-3000:]}")
    result = json.loads(lines[-1][len(RESULT_MARKER) :])
    run = ColdRun(mode, wall, result["import_s"], result["request_s"], result["total_s"])
    return run, process.stderr


def measure_cold(payload: str, runs: int) -> dict[str, list[ColdRun]]:
    """Alternate candidate and floor processes (the order flips each round) after one untimed pair."""
    modes = ("candidate", "floor")
    for mode in modes:  # compiles bytecode and fills the page cache; not counted
        cold_once(mode, payload)
    results: dict[str, list[ColdRun]] = {mode: [] for mode in modes}
    for round_number in range(runs):
        for mode in modes if round_number % 2 == 0 else reversed(modes):
            results[mode].append(cold_once(mode, payload)[0])
    return results


def profile_imports(payload: str) -> dict[str, Any]:
    """One `-X importtime` start of each: self time per package and the watched modules' cumulative time."""
    profile: dict[str, Any] = {}
    for mode in ("candidate", "floor"):
        _, stderr = cold_once(mode, payload, import_profile=True)
        profile[mode] = {
            "self_ms_by_package": importtime.self_time_by_package(stderr),
            "cumulative_ms": importtime.cumulative_by_module(stderr, WATCHED_IMPORTS),
        }
    return profile


# --- warm ---------------------------------------------------------------------------------------------


def measure_warm(
    handler: Handler, event: EventFactory, context: Any, caller: statements.Caller, config: Config
) -> tuple[list[float], list[float]]:
    """Per-call seconds of the handler and of the raw SQL on one connection, interleaved in blocks."""
    conn = statements.connect(os.environ["DATABASE_URL"])
    try:
        with quiet_stdout():
            for _ in range(config.warmup_calls):
                handler(event(), context)
                statements.run(conn, caller)
        per_block = config.warm_calls // config.warm_blocks
        handler_s: list[float] = []
        raw_s: list[float] = []

        def handler_block() -> None:
            events = [event() for _ in range(per_block)]
            with quiet_stdout():
                for request in events:
                    started = time.perf_counter()
                    response = handler(request, context)
                    handler_s.append(time.perf_counter() - started)
                    if response["statusCode"] != 200:
                        raise BenchError(f"GET {ME_PATH} answered {response['statusCode']}")

        def raw_block() -> None:
            for _ in range(per_block):
                started = time.perf_counter()
                statements.run(conn, caller)
                raw_s.append(time.perf_counter() - started)

        for block in range(config.warm_blocks):
            first, second = (handler_block, raw_block) if block % 2 == 0 else (raw_block, handler_block)
            statements.forget_hits(conn, caller)
            first()
            statements.forget_hits(conn, caller)
            second()
        return handler_s, raw_s
    finally:
        conn.close()


# --- report -------------------------------------------------------------------------------------------


def machine(server_version: int) -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "postgres_server_version": server_version,
    }


def print_table(figures: list[Figure]) -> None:
    header = f"{'figure':<34} {'value':>10} {'baseline':>10} {'ratio':>7} {'target':>8}  result"
    out(header)
    out("-" * len(header))
    for figure in figures:
        target = f"<= {figure.target:.1f}" if figure.target is not None else "-"
        result = {True: "PASS", False: "FAIL", None: "info"}[figure.passed]
        out(
            f"{figure.name:<34} {figure.value:>7.2f} {figure.unit} {figure.baseline:>7.2f} {figure.unit}"
            f" {figure.ratio:>6.2f}x {target:>8}  {result}"
        )


def print_import_profile(profile: dict[str, Any], top: int = 12) -> None:
    candidate = profile["candidate"]["self_ms_by_package"]
    floor = profile["floor"]["self_ms_by_package"]
    out(f"\nImport self time per top-level package (one -X importtime start; the probe inflates), top {top}:")
    out(f"  {'package':<28} {'candidate':>10} {'floor':>10}")
    for package, milliseconds in list(candidate.items())[:top]:
        out(f"  {package:<28} {milliseconds:>7.1f} ms {floor.get(package, 0.0):>7.1f} ms")
    out("Import time of watched packages, with what they pulled in:")
    out(f"  {'module':<52} {'candidate':>10} {'floor':>10}")
    floor_cumulative = profile["floor"]["cumulative_ms"]
    for module, milliseconds in profile["candidate"]["cumulative_ms"].items():
        out(f"  {module:<52} {milliseconds:>7.1f} ms {floor_cumulative.get(module, 0.0):>7.1f} ms")


@contextmanager
def xray_touch_file_removed() -> Iterator[None]:
    """In Lambda mode the X-Ray SDK marks its start in /tmp/.aws-xray; remove it if this run made it."""
    touch_dir = Path("/tmp/.aws-xray")  # noqa: S108  # the SDK's fixed path
    existed = touch_dir.exists()
    try:
        yield
    finally:
        if not existed:
            shutil.rmtree(touch_dir, ignore_errors=True)


def runs_table(figures: runs.RunsFigures) -> list[Figure]:
    """The runs figures: transfer time against psql, peak memory against the budget and across sizes,
    the deep page against one chunk's read (and the 100 ms budget), a trivial run against a connect."""
    table = []
    smallest = figures.transfers[0]
    for transfer in figures.transfers:
        label = f"{transfer.rows:,} rows x 6 to result"
        table.append(Figure(label, "s", transfer.runner_s, transfer.baseline_s, TRANSFER_TARGET))
        table.append(
            Figure(f"runner peak RSS, {transfer.rows:,}", "MB", transfer.peak_rss_mb, RUNNER_MEMORY_MB, 1.0)
        )
        if transfer is not smallest:
            table.append(
                Figure(
                    f"peak RSS {transfer.rows:,} vs {smallest.rows:,}",
                    "MB",
                    transfer.peak_rss_mb,
                    smallest.peak_rss_mb,
                    MEMORY_GROWTH_TARGET,
                )
            )
    if figures.page_chunks:
        table.append(Figure("page 1000 @ 5M of 10M", "ms", figures.page_ms, figures.page_floor_ms, None))
        table.append(Figure("page 1000 @ 5M, 100 ms budget", "ms", figures.page_ms, PAGE_BUDGET_MS, 1.0))
    table.append(Figure("trivial run via queue", "ms", figures.run_ms, figures.run_floor_ms, None))
    tick = figures.tick
    label = f"tick: {tick.due:,} due of {tick.schedules:,}"
    table.append(Figure(label, "s", tick.seconds, TICK_BUDGET_SECONDS, 1.0))
    # A count: sequential scans in the due query's plan at 100,000 schedules; the target is none.
    table.append(Figure("due query seq scans", "scans", len(tick.due_plan_seq_scans), 1, 0.0))
    return table


def load_table(result: load.LoadResult) -> list[Figure]:
    """The load's figures: its errors (none allowed), the stack's most database connections against their
    bound, and the list request's latency in the crowd against the same request on the idle stack."""
    listing = result.route(load.BASELINE_ROUTE)
    return [
        # A count: failed requests; the target is none.
        Figure("load: errors", "req", result.errors, 1, 0.0),
        Figure("load: max DB connections", "conn", result.max_connections, result.connection_bound, 1.0),
        Figure("load: GET /queries p50 vs idle", "ms", listing.p50_ms, result.baseline_p50_ms, None),
        Figure("load: GET /queries p95 vs idle", "ms", listing.p95_ms, result.baseline_p50_ms, None),
    ]


def measure_load() -> load.LoadResult:
    try:
        load_config = load.Config.from_env()
        out(f"load: {load_config.users} users, {load_config.requests} requests against a local stack ...")
        return load.measure(load_config)
    except load.LoadError as error:
        raise BenchError(f"the load could not run: {error}") from None


def measure_dev_run() -> dev_run.DevRun:
    try:
        out(f"dev end-to-end: {dev_run.row_count():,} rows x 6 through a local stack ...")
        return dev_run.measure()
    except dev_run.DevRunError as error:
        raise BenchError(f"the dev end-to-end run could not run: {error}") from None


def measure_runs(server_url: str, database_url: str) -> runs.RunsFigures:
    """The runs figures; the environment they change (moto's) is put back afterwards."""
    out("runs: rows to a stored result, a deep page, trivial runs through the queue ...")
    saved_environment = dict(os.environ)
    try:
        return runs.measure(server_url, database_url)
    finally:
        os.environ.clear()
        os.environ.update(saved_environment)


def measure_exports(server_url: str, database_url: str) -> list[exports.ExportFigure]:
    """The exports figures; the environment they change (moto's) is put back afterwards."""
    out(f"exports: {', '.join(f'{rows:,}' for rows in exports.row_counts())} rows to CSV in S3 ...")
    saved_environment = dict(os.environ)
    try:
        return exports.measure(server_url, database_url)
    finally:
        os.environ.clear()
        os.environ.update(saved_environment)


def measure_sizes() -> artifacts.ArtifactSizes:
    out("deployable size: sam build ...")
    try:
        return artifacts.measure()
    except artifacts.BuildUnavailable as error:
        raise BenchError(f"the deployable size cannot be measured: {error}") from None


def runs_details(run_figures: runs.RunsFigures) -> dict[str, Any]:
    return {
        "baselines": {
            "transfer": 'psql -c "\\copy (same SQL) to stdout csv" | gzip, same server and port',
            "peak_memory": f"the {RUNNER_MEMORY_MB} MB budget, then the smallest row count's peak",
            "page": "one S3 GET of the chunk holding the offset, decompressed",
            "trivial_run": "a fresh psycopg connection and SELECT 1",
        },
        "transfers": [asdict(transfer) for transfer in run_figures.transfers],
        "page_ms": run_figures.page_ms,
        "page_floor_ms": run_figures.page_floor_ms,
        "page_chunks_read": run_figures.page_chunks,
        "trivial_run_ms": run_figures.run_ms,
        "trivial_runs_per_second": 1000 / run_figures.run_ms,
        "trivial_run_floor_ms": run_figures.run_floor_ms,
        "scheduler_tick": asdict(run_figures.tick),
        "scheduler_tick_note": "SendMessageBatch answered by a stand-in that accepts every batch:"
        " moto's slows with each message its queue holds",
    }


def sizes_details(sizes: artifacts.ArtifactSizes) -> dict[str, Any]:
    return {
        "layer_mb": sizes.layer_mb,
        "largest_function": sizes.largest_function,
        "largest_function_mb": sizes.largest_function_mb,
        "export_layer_mb": sizes.export_layer_mb,
        "export_function_with_layers_mb": sizes.export_deployed_mb,
        "render_layer_mb": sizes.render_layer_mb,
        "render_function_with_layers_mb": sizes.render_deployed_mb,
        "budget_mb": DEPLOYED_BUDGET_MB,
        "lambda_limit_mb": LAMBDA_UNZIPPED_MB,
    }


def bench(config: Config) -> tuple[list[Figure], dict[str, Any]]:
    """Set up, measure, and return the figures with everything behind them."""
    # First, while the environment is this process's own: the load's stack inherits it, and what follows
    # sets the Lambda runtime's variables.
    load_result = None if config.requests_only else measure_load()
    dev_result = None if config.requests_only else measure_dev_run()
    with (
        xray_touch_file_removed(),
        postgres_server() as server_url,
        bench_database(server_url) as database_url,
    ):
        configure_environment(database_url)
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        # First, while moto (a dev dependency the layer lacks) may still be imported.
        run_figures = None if config.requests_only else measure_runs(server_url, database_url)
        export_figures = None if config.requests_only else measure_exports(server_url, database_url)
        render_figures = None if config.requests_only else render.measure()
        from loupe.config import get_settings

        get_settings.cache_clear()
        from infra.local.events import LocalLambdaContext
        from infra.local.template_routes import load_handler

        blocked = layer.modules_outside() if os.environ.get("BENCH_LAYER_ONLY", "1") != "0" else []
        os.environ[layer.ENV_VAR] = ",".join(blocked)  # for the cold-start processes
        layer.block(blocked)  # for this one, from here on (the harness's own imports are done)
        from loupe import db

        try:
            handler: Handler = load_handler(FUNCTION)
            context = LocalLambdaContext(FUNCTION)
            token, caller = register(handler, context)

            def me_event() -> dict[str, Any]:
                return api_event("GET", ME_PATH, token=token)

            verify_statements(handler, me_event, context, caller)
            handler_path, handler_name = handler_location()
            payload = json.dumps(
                {
                    "handler_path": str(handler_path),
                    "handler_name": handler_name,
                    "event": me_event(),
                    "user_id": str(caller.user_id),
                    "session_id": str(caller.session_id),
                    "organization_id": str(caller.organization_id),
                }
            )
            load_before = os.getloadavg()
            out(f"cold start: {config.cold_runs} alternating pairs of fresh processes ...")
            cold = measure_cold(payload, config.cold_runs)
            out(f"warm: {config.warm_calls} calls each, in {config.warm_blocks} interleaved blocks ...")
            handler_s, raw_s = measure_warm(handler, me_event, context, caller, config)
            out(f"list: GET /queries?limit=50 over {queries_list.ORGANIZATION_QUERIES:,} queries ...")
            with quiet_stdout():
                listing = queries_list.measure(
                    database_url,
                    caller,
                    token,
                    capture_statements,
                    blocks=config.warm_blocks,
                    calls=config.warm_calls,
                    warmup=config.warmup_calls,
                )
            out("import profile ...")
            imports = profile_imports(payload)
            load_after = os.getloadavg()
            with statements.connect(database_url) as conn:
                server_version = conn.info.server_version
        finally:
            db.close()

    def cold_ms(mode: str, field: str) -> list[float]:
        return [getattr(run, field) * 1000 for run in cold[mode]]

    cold_wall = {mode: summary(cold_ms(mode, "wall_s")) for mode in cold}
    warm_handler = summary([seconds * 1000 for seconds in handler_s])
    warm_raw = summary([seconds * 1000 for seconds in raw_s])
    list_handler = summary([seconds * 1000 for seconds in listing.handler_s])
    list_raw = summary([seconds * 1000 for seconds in listing.raw_s])
    figures = [
        Figure(
            "cold start, median wall",
            "ms",
            cold_wall["candidate"]["p50"],
            cold_wall["floor"]["p50"],
            COLD_TARGET,
        ),
        Figure("cold start, p90 wall", "ms", cold_wall["candidate"]["p90"], cold_wall["floor"]["p90"], None),
        Figure(
            "cold start, median in-process",
            "ms",
            summary(cold_ms("candidate", "total_s"))["p50"],
            summary(cold_ms("floor", "total_s"))["p50"],
            None,
        ),
        Figure("warm GET /auth/me p50", "ms", warm_handler["p50"], warm_raw["p50"], WARM_TARGET),
        Figure("warm GET /auth/me p99", "ms", warm_handler["p99"], warm_raw["p99"], None),
        Figure("GET /queries?limit=50 p50", "ms", list_handler["p50"], list_raw["p50"], LIST_TARGET),
        Figure("GET /queries?limit=50 p99", "ms", list_handler["p99"], list_raw["p99"], None),
        # A count, not a time: sequential scans in the page plan at 100,000 rows; the target is none.
        Figure("page plan seq scans, 100k rows", "scans", len(listing.seq_scans), 1, 0.0),
        *(runs_table(run_figures) if run_figures is not None else []),
        *(exports.table(export_figures, Figure) if export_figures is not None else []),
        *(render.table(render_figures, Figure) if render_figures is not None else []),
        *(load_table(load_result) if load_result is not None else []),
    ]
    if dev_result is not None:
        label = f"dev end-to-end, {dev_result.rows:,} rows x 6"
        figures.append(Figure(label, "s", dev_result.seconds, dev_result.baseline_seconds, dev_run.TARGET))
    sizes = None if config.requests_only else measure_sizes()
    if sizes is not None:
        figures.append(
            Figure(
                f"layer + largest function ({sizes.largest_function})",
                "MB",
                sizes.deployed_mb,
                DEPLOYED_BUDGET_MB,
                1.0,
            )
        )
        figures.append(
            Figure("export function + both layers", "MB", sizes.export_deployed_mb, LAMBDA_UNZIPPED_MB, 1.0)
        )
        figures.append(
            Figure("render function + both layers", "MB", sizes.render_deployed_mb, LAMBDA_UNZIPPED_MB, 1.0)
        )
    details: dict[str, Any] = {
        "machine": {**machine(server_version), "loadavg_before": load_before, "loadavg_after": load_after},
        "lambda_environment": "LAMBDA_TASK_ROOT" in os.environ,
        "blocked_modules": blocked,
        "config": {
            "cold_runs": config.cold_runs,
            "warm_calls": config.warm_calls,
            "warm_blocks": config.warm_blocks,
            "warmup_calls": config.warmup_calls,
            "requests_only": config.requests_only,
        },
        "baselines": {
            "cold_floor": "fresh process importing psycopg, pydantic and APIGatewayRestResolver, running the "
            "handler's SQL (bench/statements.py) and validating the row with pydantic",
            "warm_raw": "the handler's SQL on one psycopg connection, same connect options",
            "load_latency": f"{load.BASELINE_ROUTE} one at a time on the idle stack after the load",
            "dev_run": 'psql -c "\\copy (same SQL) to stdout csv" | gzip, through the port the demo'
            " datasource reaches the sample database by",
            "load_connections": "one per worker of the stack (LOUPE_LOCAL_CONCURRENCY per function), and per"
            " runner worker its watchdog's, and per runner or datasources worker a datasource session",
        },
        "cold": {
            mode: {
                "wall_ms": cold_wall[mode],
                "in_process_total_ms": summary(cold_ms(mode, "total_s")),
                "import_ms": summary(cold_ms(mode, "import_s")),
                "request_ms": summary(cold_ms(mode, "request_s")),
                "runs": [asdict(run) for run in cold[mode]],
            }
            for mode in cold
        },
        "warm": {
            "handler_ms": warm_handler,
            "raw_sql_ms": warm_raw,
            "handler_samples_ms": [seconds * 1000 for seconds in handler_s],
            "raw_sql_samples_ms": [seconds * 1000 for seconds in raw_s],
        },
        "import_profile": imports,
        "queries_list": {
            "organization_queries": queries_list.ORGANIZATION_QUERIES,
            "table_rows_for_plan": queries_list.TABLE_ROWS,
            "handler_ms": list_handler,
            "raw_sql_ms": list_raw,
            "plan_nodes": listing.plan_nodes,
            "seq_scans": listing.seq_scans,
        },
    }
    if run_figures is not None:
        details["runs"] = runs_details(run_figures)
    if export_figures is not None:
        details["exports"] = exports.details(export_figures)
    if render_figures is not None:
        details["render"] = render.details(render_figures.types, render_figures.cold)
    if sizes is not None:
        details["deployable_size"] = sizes_details(sizes)
    if load_result is not None:
        details["load"] = load_result.as_json()
    if dev_result is not None:
        details["dev_run"] = dev_result.as_json()
    return figures, details


def main() -> int:
    for entry in (str(ROOT), str(LAYER)):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    try:
        figures, details = bench(Config.from_env())
    except BenchError as error:
        sys.stderr.write(f"bench: {error}\n")
        return 2
    out()
    print_table(figures)
    cold = details["cold"]
    parts = [
        f"{mode} import {cold[mode]['import_ms']['p50']:.1f} ms"
        f" + request {cold[mode]['request_ms']['p50']:.1f} ms"
        for mode in ("candidate", "floor")
    ]
    out("\ncold start, in-process medians: " + "; ".join(parts))
    print_import_profile(details["import_profile"])
    failed = [figure.name for figure in figures if figure.passed is False]
    details["figures"] = [figure.as_json() for figure in figures]
    details["passed"] = not failed
    RESULTS.write_text(json.dumps(details, indent=2) + "\n", encoding="utf-8")
    out(f"\nwrote {RESULTS.relative_to(ROOT)}")
    if failed:
        out("missed targets: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
