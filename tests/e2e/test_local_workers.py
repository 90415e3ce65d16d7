"""The local stack's functions in worker processes of their own, as Lambda runs them: a pool per function,
the gateway's limits kept, crashed and timed-out workers replaced, none left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest

from infra.local.gateway import MAX_EVENT_BYTES, MAX_RESPONSE_BYTES, Gateway, HttpRequest, HttpResponse
from infra.local.invokers import CONCURRENCY_VARIABLE, WorkerPools
from infra.local.template_routes import PYTHON_PATH

pytestmark = pytest.mark.e2e

STAND_IN = "tests.e2e.local_functions:handler"
HEALTH = "/api/v1/health"  # HealthFunction
QUERIES = "/api/v1/queries"  # QueriesFunction


def pools_of(**options: object) -> WorkerPools:
    handlers = {"HealthFunction": STAND_IN, "QueriesFunction": STAND_IN}
    return WorkerPools(dict(os.environ), handlers=handlers, **options)  # type: ignore[arg-type]


@pytest.fixture
def pools() -> Iterator[WorkerPools]:
    workers = pools_of()
    try:
        yield workers
    finally:
        workers.close()


def get(gateway: Gateway, path: str, **query: str) -> HttpResponse:
    return gateway.handle(HttpRequest("GET", f"{path}?{urlencode(query)}" if query else path))


def pid_of(response: HttpResponse) -> int:
    assert response.status == 200, response.body[:300]
    pid: int = json.loads(response.body)["pid"]
    return pid


def gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


class Blocker:
    """Requests that start, say so with a file, and hold their event until released."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.release_file = folder / "release"

    def query(self, name: str) -> dict[str, str]:
        return {"do": "block", "started": str(self.folder / name), "release": str(self.release_file)}

    def wait_started(self, name: str) -> None:
        deadline = time.monotonic() + 60
        while not (self.folder / name).exists():
            assert time.monotonic() < deadline, f"{name} never started"
            time.sleep(0.01)

    def release(self) -> None:
        self.release_file.touch()


def test_a_function_runs_in_a_process_of_its_own_kept_warm(pools: WorkerPools) -> None:
    gateway = Gateway(invoker=pools)
    first = pid_of(get(gateway, HEALTH))
    assert first != os.getpid()
    assert pid_of(get(gateway, HEALTH)) == first
    assert pools.pids() == [first]
    other = pid_of(get(gateway, QUERIES))
    assert other not in (first, os.getpid())


def test_a_function_holding_an_event_holds_up_no_other(pools: WorkerPools, tmp_path: Path) -> None:
    """While HealthFunction's event waits to be released, QueriesFunction answers, and so does a second
    HealthFunction event, on a second worker."""
    gateway = Gateway(invoker=pools)
    blocker = Blocker(tmp_path)
    with ThreadPoolExecutor(max_workers=1) as background:
        held: Future[HttpResponse] = background.submit(get, gateway, HEALTH, **blocker.query("held"))
        try:
            blocker.wait_started("held")
            other_function = pid_of(get(gateway, QUERIES))
            same_function = pid_of(get(gateway, HEALTH))
            assert not held.done()
        finally:
            blocker.release()
        held_pid = pid_of(held.result(timeout=60))
    assert len({held_pid, other_function, same_function}) == 3
    assert sorted(pools.pids()) == sorted({held_pid, other_function, same_function})


def test_a_function_at_its_concurrency_waits_for_its_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONCURRENCY_VARIABLE, "1")
    workers = pools_of()
    gateway = Gateway(invoker=workers)
    blocker = Blocker(tmp_path)
    try:
        with ThreadPoolExecutor(max_workers=2) as background:
            held = background.submit(get, gateway, HEALTH, **blocker.query("held"))
            blocker.wait_started("held")
            queued = background.submit(get, gateway, HEALTH)
            (only,) = workers.pids()
            blocker.release()
            assert pid_of(held.result(timeout=60)) == pid_of(queued.result(timeout=60)) == only
        assert workers.pids() == [only]
    finally:
        workers.close()


def is_internal_error(response: HttpResponse) -> bool:
    """API Gateway's 502 for a failed invocation, which tells the client nothing of the failure."""
    error = json.loads(response.body)["error"]
    return response.status == 502 and error["code"] == "internal_error" and "crashed" not in error["message"]


def test_an_exception_is_a_502_and_the_worker_serves_on(pools: WorkerPools) -> None:
    gateway = Gateway(invoker=pools)
    warm = pid_of(get(gateway, HEALTH))
    assert is_internal_error(get(gateway, HEALTH, do="raise"))
    assert pid_of(get(gateway, HEALTH)) == warm


def test_a_crashed_worker_is_a_502_and_the_next_event_gets_a_fresh_one(pools: WorkerPools) -> None:
    gateway = Gateway(invoker=pools)
    crashing = pid_of(get(gateway, HEALTH))
    assert is_internal_error(get(gateway, HEALTH, do="crash"))
    assert gone(crashing)
    fresh = pid_of(get(gateway, HEALTH))
    assert fresh != crashing
    assert pools.pids() == [fresh]


def test_a_function_over_its_timeout_has_its_worker_replaced() -> None:
    """Lambda's "Task timed out": the worker is killed, not left running, and the next event starts one."""
    workers = pools_of(limits=lambda function: (1, 128))
    gateway = Gateway(invoker=workers)
    try:
        slow = pid_of(get(gateway, HEALTH))
        assert is_internal_error(get(gateway, HEALTH, do="sleep", seconds="600"))
        assert gone(slow)
        fresh = pid_of(get(gateway, HEALTH))
        assert fresh != slow
    finally:
        workers.close()


def test_the_gateway_answers_504_at_its_timeout_while_the_function_runs_on(
    pools: WorkerPools, tmp_path: Path
) -> None:
    warm = pid_of(get(Gateway(invoker=pools), HEALTH))
    gateway = Gateway(invoker=pools, integration_timeout=0.2)
    blocker = Blocker(tmp_path)
    try:
        timed_out = get(gateway, HEALTH, **blocker.query("held"))
        assert timed_out.status == 504
        assert ("x-amzn-ErrorType", "IntegrationTimeout") in timed_out.headers
        blocker.wait_started("held")
        assert not pools.idle(0)
    finally:
        blocker.release()
    assert pools.idle(30)
    assert pools.pids() == [warm]


def test_the_gateways_payload_limits_hold_through_workers(pools: WorkerPools) -> None:
    gateway = Gateway(invoker=pools)
    refused = gateway.handle(HttpRequest("POST", HEALTH, body=b"a" * MAX_EVENT_BYTES))
    assert refused.status == 413
    assert pools.pids() == []  # never invoked
    assert get(gateway, "/internal/admin").status == 404
    assert pools.pids() == []
    fits = get(gateway, HEALTH, do="big", bytes=str(MAX_RESPONSE_BYTES - 1000))
    assert fits.status == 200
    assert len(fits.body) == MAX_RESPONSE_BYTES - 1000
    assert is_internal_error(get(gateway, HEALTH, do="big", bytes=str(MAX_RESPONSE_BYTES)))


def test_closing_stops_every_worker_busy_or_idle(tmp_path: Path) -> None:
    workers = pools_of()
    gateway = Gateway(invoker=workers)
    blocker = Blocker(tmp_path)
    with ThreadPoolExecutor(max_workers=1) as background:
        held = background.submit(get, gateway, HEALTH, **blocker.query("held"))
        blocker.wait_started("held")
        idle = pid_of(get(gateway, QUERIES))
        pids = workers.pids()
        assert idle in pids
        assert len(pids) == 2
        workers.close()
        assert is_internal_error(held.result(timeout=60))
    assert all(gone(pid) for pid in pids)
    assert workers.pids() == []
    assert is_internal_error(get(gateway, HEALTH))


def test_a_worker_whose_stack_died_exits() -> None:
    """A stack killed outright (SIGKILL: no clean stop) leaves no worker behind: the worker sees its
    events pipe close."""
    stack = (
        "import os, signal\n"
        "from infra.local.invokers import WorkerPools\n"
        f"pools = WorkerPools(dict(os.environ), handlers={{'HealthFunction': {STAND_IN!r}}})\n"
        "pools.invoke('HealthFunction', {})\n"
        "print(*pools.pids(), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run(  # our own interpreter
        [sys.executable, "-c", stack],
        env={**os.environ, "PYTHONPATH": PYTHON_PATH},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (orphan,) = (int(pid) for pid in killed.stdout.split())
    assert gone(orphan)
