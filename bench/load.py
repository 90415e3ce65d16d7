"""`make load`: LOAD_USERS locust users drive a local stack from a second process for LOAD_REQUESTS requests;
per-route latency, errors and the stack's most database connections, printed and in bench/load.json."""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psycopg

from bench import out
from infra.local.devstack import DEMO_DATASOURCE
from infra.local.invokers import CONCURRENCY_VARIABLE
from infra.local.stack_process import StackFailed, StackProcess, running_stack
from infra.local.template_routes import ROOT, functions
from loupe.api.prefix import API_PREFIX

RESULTS = ROOT / "bench" / "load.json"
SPAWN_RATE = 10
# Every simulated user comes from 127.0.0.1, where 50 people would come from 50 addresses: the limit on
# auth requests per address (60 a minute, against password guessing) would refuse the crowd's sign-ins.
# The other limits hold as they are: each user has an account of its own and one run at a time.
# Each user waits for its runs with long polls, and a waiting request holds a worker of the runs function
# to its end, as it holds a Lambda instance in AWS (where the account's concurrency is in the hundreds):
# the stack gets workers enough for the crowd's waits and its reads of the same function.
LOAD_CONCURRENCY = 12
STACK_ENVIRONMENT = {
    "LOUPE_RATE_LIMIT_AUTH_PER_IP_PER_MINUTE": "100000",
    CONCURRENCY_VARIABLE: str(LOAD_CONCURRENCY),
}
# A safety net: the budget of requests ends the crowd's process long before.
CROWD_TIMEOUT_SECONDS = 1800
SAMPLE_SECONDS = 0.5
# Client connections to every database of the stack's server (the runner's sessions to the sample
# database too), not counting the sampler's own.
CONNECTIONS_SQL = (
    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
)
# The request whose latency under load is set against its latency on the idle stack, where one client
# sends it with a pause between calls, as a user of the workload thinks between requests.
BASELINE_ROUTE = f"GET {API_PREFIX}/queries"
# A cheap route of each function the workload calls: before the crowd, as many of each at once as the
# function may have workers, so that the crowd meets a warm stack (cold starts are the cold-start
# figure's matter; here each would take a core from the crowd's requests for most of a second).
WARM_UP_PATHS = tuple(f"{API_PREFIX}/{path}" for path in ("auth/me", "queries", "runs", "dashboards"))
BASELINE_WARMUP = 5
BASELINE_CALLS = 40
BASELINE_PAUSE_SECONDS = 0.1


class LoadError(RuntimeError):
    """The load could not run as designed (the stack or the crowd's process failed, say)."""


@dataclass(frozen=True)
class Config:
    """LOAD_USERS concurrent users, stopping after LOAD_REQUESTS requests in all."""

    users: int
    requests: int

    @classmethod
    def from_env(cls) -> Config:
        def number(name: str, default: int) -> int:
            value = int(os.environ.get(name) or default)
            if value < 1:
                raise LoadError(f"{name} must be at least 1")
            return value

        return cls(users=number("LOAD_USERS", 50), requests=number("LOAD_REQUESTS", 5000))


@dataclass(frozen=True)
class Route:
    """One route's figures as locust counts them (percentiles in whole milliseconds below 100 ms, to two
    significant digits above)."""

    route: str
    count: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class LoadResult:
    users: int
    budget: int
    seconds: float
    routes: list[Route]
    total: Route
    failures: list[str]
    exceptions: list[str]
    connections_before: int
    max_connections: int
    connection_bound: int
    baseline_ms: list[float]

    @property
    def unanswered(self) -> int:
        """Requests of the budget never sent: every user stopped early (none could sign in, say)."""
        return self.budget - self.total.count

    @property
    def errors(self) -> int:
        """Failed requests, exceptions in the workload's own code and unanswered requests: none allowed."""
        return self.total.errors + len(self.exceptions) + self.unanswered

    @property
    def baseline_p50_ms(self) -> float:
        return statistics.median(self.baseline_ms)

    @property
    def problems(self) -> list[str]:
        found = [*self.failures, *self.exceptions]
        if self.unanswered:
            found.append(f"{self.unanswered} requests of the budget of {self.budget} never sent")
        if self.max_connections > self.connection_bound:
            found.append(
                f"{self.max_connections} database connections, over the bound {self.connection_bound}"
            )
        return found

    def route(self, name: str) -> Route:
        return next(route for route in self.routes if route.route == name)

    def as_json(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "spawn_rate": SPAWN_RATE,
            "budget": self.budget,
            "requests": self.total.count,
            "errors": self.errors,
            "seconds": self.seconds,
            "requests_per_second": self.total.count / self.seconds,
            "stack_environment": STACK_ENVIRONMENT,
            "routes": [asdict(route) for route in self.routes],
            "total": asdict(self.total),
            "failures": self.failures,
            "exceptions": self.exceptions,
            "db_connections": {
                "before_load": self.connections_before,
                "max": self.max_connections,
                "bound": self.connection_bound,
                "sample_seconds": SAMPLE_SECONDS,
            },
            "baseline": {
                "route": BASELINE_ROUTE,
                "note": "one client on the idle stack after the load, with a pause between calls",
                "pause_seconds": BASELINE_PAUSE_SECONDS,
                "p50_ms": self.baseline_p50_ms,
                "samples_ms": self.baseline_ms,
            },
            "passed": not self.problems,
        }


def connection_bound() -> int:
    """The most metadata and datasource connections the stack may hold, whatever its load: each function
    has at most LOAD_CONCURRENCY workers, each a process with a connection of its own (as a Lambda
    instance has, see loupe.db); a runner worker has its watchdog thread's too, and a runner or
    datasources worker one datasource session (the sample database is on the same server)."""
    invoked = [name for name, properties in functions().items() if properties.get("Events")]
    return LOAD_CONCURRENCY * (len(invoked) + 3)


class ConnectionSampler:
    """Counts the stack's client connections every SAMPLE_SECONDS on a thread while the block runs,
    through the server's socket as its superuser."""

    def __init__(self, stack: StackProcess) -> None:
        self._url = stack.metadata_url
        self.counts: list[int] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="connection-sampler", daemon=True)
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def __enter__(self) -> ConnectionSampler:
        self._conn = psycopg.connect(self._url, autocommit=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stopping.set()
        self._thread.join()
        if self._conn is not None:
            self._conn.close()

    def _sample(self) -> None:
        assert self._conn is not None
        while True:
            row = self._conn.execute(CONNECTIONS_SQL).fetchone()
            self.counts.append(int(row[0]) if row else 0)
            if self._stopping.wait(SAMPLE_SECONDS):
                return


def expect(response: httpx.Response, status: int) -> dict[str, Any]:
    if response.status_code != status:
        request = response.request
        raise LoadError(f"{request.method} {request.url.path}: {response.status_code} {response.text}")
    body: dict[str, Any] = response.json()
    return body


def demo_admin(http: httpx.Client, stack: StackProcess) -> dict[str, str]:
    credentials = {"email": stack.demo_email, "password": stack.demo_password}
    token = expect(http.post(f"{API_PREFIX}/auth/login", json=credentials), 200)["access_token"]
    return {"Authorization": f"Bearer {token}"}


def invite(stack: StackProcess, users: int, accounts: Path) -> None:
    """One editor invitation of the demo organization per user, written where the locustfile reads them:
    each user then has an account of its own, in the organization that holds the demo datasource."""
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        headers = demo_admin(http, stack)
        listed = expect(
            http.get(f"{API_PREFIX}/datasources", headers=headers, params={"q": DEMO_DATASOURCE}), 200
        )
        datasource_id = next(item["id"] for item in listed["items"] if item["name"] == DEMO_DATASOURCE)
        invitations = []
        for index in range(users):
            email = f"load-{index}-{secrets.token_hex(4)}@example.com"
            body = {"email": email, "role": "editor"}
            created = expect(
                http.post(f"{API_PREFIX}/organizations/invitations", headers=headers, json=body), 201
            )
            invitations.append(
                {
                    "email": email,
                    "password": secrets.token_urlsafe(12),
                    "token": created["token"],
                    "datasource_id": datasource_id,
                }
            )
    accounts.write_text(json.dumps(invitations), encoding="utf-8")


def warm_up(stack: StackProcess, users: int) -> None:
    """Each function of WARM_UP_PATHS with as many workers as the crowd can use (its users, up to the
    function's most): that many requests at once, all sent before the first worker's cold start ends."""
    workers = min(LOAD_CONCURRENCY, users)
    with (
        httpx.Client(base_url=stack.url, timeout=60, limits=httpx.Limits(max_connections=workers)) as http,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        headers = demo_admin(http, stack)
        for path in WARM_UP_PATHS:
            for response in pool.map(lambda path: http.get(path, headers=headers), [path] * workers):
                expect(response, 200)


def run_crowd(stack: StackProcess, config: Config, accounts: Path, report: Path) -> dict[str, Any]:
    """bench/locustfile.py in a process of its own (locust's gevent patches stay out of this one): the
    crowd until the budget is spent; returns the figures it reported."""
    command = [
        sys.executable,
        "-m",
        "bench.locustfile",
        f"--host={stack.url}",
        f"--users={config.users}",
        f"--spawn-rate={SPAWN_RATE}",
        f"--requests={config.requests}",
        f"--accounts={accounts}",
        f"--report={report}",
    ]
    try:
        process = subprocess.run(  # noqa: S603  # our own interpreter and module
            command, cwd=ROOT, capture_output=True, text=True, timeout=CROWD_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise LoadError(f"the crowd was still running after {CROWD_TIMEOUT_SECONDS} s") from None
    if process.returncode != 0 or not report.exists():
        output = (process.stdout + process.stderr)[-4000:]
        raise LoadError(f"the crowd's process exited with {process.returncode}:\n{output}")
    figures: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return figures


def unloaded_latencies(stack: StackProcess) -> list[float]:
    """BASELINE_ROUTE one request at a time on the idle stack, after the load: its organization then lists
    as many queries as the crowd left, so each page holds what pages held under load."""
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        headers = demo_admin(http, stack)
        path = BASELINE_ROUTE.split(" ", 1)[1]
        samples = []
        for call in range(BASELINE_WARMUP + BASELINE_CALLS):
            time.sleep(BASELINE_PAUSE_SECONDS)
            started = time.perf_counter()
            expect(http.get(path, headers=headers, params={"limit": 50}), 200)
            if call >= BASELINE_WARMUP:
                samples.append((time.perf_counter() - started) * 1000)
    return samples


def measure(config: Config) -> LoadResult:
    """Start a stack, invite the users, let the crowd loose on it while sampling its database connections,
    then measure the baseline; the stack is stopped and its folder removed at the end."""
    try:
        with (
            running_stack(STACK_ENVIRONMENT) as stack,
            tempfile.TemporaryDirectory(prefix="loupe-load-") as folder,
        ):
            accounts = Path(folder) / "accounts.json"
            invite(stack, config.users, accounts)
            warm_up(stack, config.users)
            started = time.monotonic()
            with ConnectionSampler(stack) as sampler:
                figures = run_crowd(stack, config, accounts, Path(folder) / "report.json")
            seconds = time.monotonic() - started
            baseline = unloaded_latencies(stack)
    except StackFailed as failure:
        raise LoadError(str(failure)) from None
    return LoadResult(
        users=config.users,
        budget=config.requests,
        seconds=seconds,
        routes=[Route(**route) for route in figures["routes"]],
        total=Route(**figures["total"]),
        failures=figures["failures"],
        exceptions=figures["exceptions"],
        connections_before=sampler.counts[0],
        max_connections=max(sampler.counts),
        connection_bound=connection_bound(),
        baseline_ms=baseline,
    )


def print_report(result: LoadResult) -> None:
    header = f"{'route':<36} {'count':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
    out(header)
    out("-" * len(header))
    for route in [*result.routes, result.total]:
        out(
            f"{route.route:<36} {route.count:>6} {route.errors:>6}"
            f" {route.p50_ms:>8.0f} {route.p95_ms:>8.0f} {route.p99_ms:>8.0f}"
        )
    out(
        f"\n{result.users} users, {result.total.count} requests in {result.seconds:.1f} s"
        f" ({result.total.count / result.seconds:.1f}/s), {result.errors} errors"
    )
    out(
        f"database connections: at most {result.max_connections}, {result.connections_before} before the"
        f" load; bound {result.connection_bound}"
    )
    out(f"{BASELINE_ROUTE} on the idle stack: p50 {result.baseline_p50_ms:.1f} ms")


def main() -> int:
    try:
        config = Config.from_env()
        out(f"load: {config.users} users, {config.requests} requests against a local stack ...")
        result = measure(config)
    except LoadError as error:
        sys.stderr.write(f"load: {error}\n")
        return 2
    out()
    print_report(result)
    RESULTS.write_text(json.dumps(result.as_json(), indent=2) + "\n", encoding="utf-8")
    out(f"\nwrote {RESULTS.relative_to(ROOT)}")
    if result.problems:
        out("failed:\n  " + "\n  ".join(result.problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
