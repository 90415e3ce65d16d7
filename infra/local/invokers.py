"""How the local stack runs a function for one event: in worker processes of its own, as Lambda's execution
environments (`make dev`), or in this interpreter, where a test stands a handler of its own in."""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from infra.local.console import JSON, Console, WorkerOutput
from infra.local.events import LocalLambdaContext
from infra.local.template_routes import PYTHON_PATH, ROOT, api_routes, function_limits, load_handler
from loupe import db

Handler = Callable[[dict[str, Any], Any], Any]
HandlerLoader = Callable[[str], Handler]
Limits = Callable[[str], tuple[int, int]]
# One event through a function by name: its result, or FunctionError.
Invoke = Callable[[str, dict[str, Any]], Any]

# The most workers (processes) one function may have at once; an event beyond waits for one to be free.
CONCURRENCY_VARIABLE = "LOUPE_LOCAL_CONCURRENCY"
DEFAULT_CONCURRENCY = 4
# Lambda gives an init phase 10 seconds; a laptop starting several workers at once may need more.
INIT_TIMEOUT_SECONDS = 60.0
# How long a stopping worker may take to finish the event in hand before it is killed.
STOP_TIMEOUT_SECONDS = 5.0
# How long the log of an answered event may lag its answer (a worker's child holding the pipe, say).
OUTPUT_TIMEOUT_SECONDS = 5.0


class FunctionError(RuntimeError):
    """The invocation failed: the handler raised, or its process crashed, timed out or could not start."""


class Invoker(Protocol):
    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """The function's result for `event`, or FunctionError."""

    def idle(self, timeout: float) -> bool:
        """Wait until no function is serving an event; False if one still is after `timeout` seconds."""


def concurrency() -> int:
    value = int(os.environ.get(CONCURRENCY_VARIABLE) or DEFAULT_CONCURRENCY)
    if value < 1:
        raise ValueError(f"{CONCURRENCY_VARIABLE} must be at least 1")
    return value


class InProcess:
    """The handlers imported into this interpreter: each function serves one event at a time, on a database
    connection of its own, and the HTTP functions take turns."""

    def __init__(self, handler_for: HandlerLoader = load_handler, limits: Limits = function_limits) -> None:
        self._handler_for = handler_for
        self._limits = limits
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        # Powertools keeps the event being resolved on a class attribute (BaseRouter.current_event)
        # that every resolver of this process shares: two HTTP functions resolving at once could read
        # each other's request, credentials included. (The runner and the scheduled functions have no
        # resolver.) Worker processes have no such limit: each has its own.
        self._resolving = threading.Lock()
        self._http_functions = frozenset(route.function for route in api_routes())

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        handler = self._handler_for(function)
        timeout, memory = self._limits(function)
        with self._locks_lock:
            lock = self._locks.setdefault(function, threading.Lock())
        resolving = self._resolving if function in self._http_functions else contextlib.nullcontext()
        with resolving, lock, db.own_connection(function):
            return handler(event, LocalLambdaContext(function, timeout, memory))

    def idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._locks_lock:
            locks = [self._resolving, *self._locks.values()]
        for lock in locks:
            if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                return False
            lock.release()
        return True


class Worker:
    """One execution environment: a process that imported the function's handler (its cold start) and
    serves one event at a time, on a database connection of its own. Its stdout and stderr go to `console`,
    each event's lines with that event."""

    def __init__(
        self,
        function: str,
        environment: Mapping[str, str],
        handler: str | None = None,
        console: Console | None = None,
    ) -> None:
        self.function = function
        # Without a console of the stack's, the log goes as it comes to stderr, leaving stdout to the caller.
        self._console = console or Console(JSON, sys.stderr)
        self._output = WorkerOutput(function, self._console)
        # What the init writes belongs to the event that started the worker.
        self._init_mark = self._output.begin()
        replies, reply_end = os.pipe()
        try:
            self.process = subprocess.Popen(  # our own interpreter and module
                [
                    sys.executable,
                    "-m",
                    "infra.local.function_worker",
                    function,
                    str(reply_end),
                    *([handler] if handler else []),
                ],
                cwd=ROOT,
                env=dict(environment),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(reply_end,),
            )
        except BaseException:
            os.close(replies)
            raise
        finally:
            os.close(reply_end)
        assert self.process.stdout is not None
        self._output.start(self.process.stdout)
        self._replies = os.fdopen(replies, "rb")

    @classmethod
    def start(
        cls,
        function: str,
        environment: Mapping[str, str],
        handler: str | None = None,
        console: Console | None = None,
    ) -> Worker:
        """A worker whose handler is imported, or FunctionError (the import failed, say)."""
        started = time.perf_counter()
        worker = cls(function, environment, handler, console)
        try:
            worker._receive(INIT_TIMEOUT_SECONDS, f"init timed out after {INIT_TIMEOUT_SECONDS:.0f} seconds")
        except BaseException:
            worker._output.end(worker._init_mark, OUTPUT_TIMEOUT_SECONDS)
            worker.stop()
            raise
        worker._output.end(worker._init_mark, OUTPUT_TIMEOUT_SECONDS)
        worker._console.worker_started(function, worker.pid, (time.perf_counter() - started) * 1000)
        return worker

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def invoke(self, event: dict[str, Any], timeout: int, memory: int) -> Any:
        """The handler's result; FunctionError if it raised, or (the worker then killed) if the process
        exited or the event took longer than `timeout` seconds."""
        request = json.dumps({"event": event, "timeout": timeout, "memory": memory}).encode() + b"\n"
        assert self.process.stdin is not None
        mark = self._output.begin()
        try:
            try:
                self.process.stdin.write(request)
                self.process.stdin.flush()
            except OSError:
                raise self._exited() from None
            return self._receive(timeout, f"Task timed out after {timeout:.2f} seconds")
        finally:
            self._output.end(mark, OUTPUT_TIMEOUT_SECONDS)

    def _receive(self, timeout: float, late: str) -> Any:
        readable, _, _ = select.select([self._replies], [], [], timeout)
        if not readable:
            self.kill()
            raise FunctionError(f"{self.function}: {late}")
        line = self._replies.readline()
        if not line.endswith(b"\n"):
            raise self._exited()
        answer: dict[str, Any] = json.loads(line)
        if "errorType" in answer:
            raise FunctionError(f"{self.function}: {answer['errorType']}: {answer['errorMessage']}")
        return answer.get("result", answer.get("ready"))

    def _exited(self) -> FunctionError:
        """Lambda's Runtime.ExitError: the process ended (or broke its pipe) without an answer."""
        self.kill()
        return FunctionError(f"{self.function}: the worker exited with {self.process.returncode}")

    def kill(self) -> None:
        """End the process now (from any thread); its pipes stay open for the thread that uses them."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        """Close its pipes, so it exits once the event in hand is done; kill it if it lingers."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):  # it exited and left the pipe broken
                self.process.stdin.close()
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
        self._replies.close()
        self._output.join(OUTPUT_TIMEOUT_SECONDS)


class FunctionPool:
    """A function's workers: an idle, warm one serves the next event; under concurrency new ones start, up
    to `capacity`, and an event beyond waits for the first worker free."""

    def __init__(
        self,
        function: str,
        environment: Mapping[str, str],
        capacity: int,
        handler: str | None = None,
        limits: Limits = function_limits,
        console: Console | None = None,
    ) -> None:
        self._function = function
        self._environment = environment
        self._capacity = capacity
        self._handler = handler
        self._limits = limits
        self._console = console
        self._workers: set[Worker] = set()
        self._idle: list[Worker] = []
        self._starting = 0
        self._closed = False
        self._changed = threading.Condition()

    @property
    def pids(self) -> list[int]:
        with self._changed:
            return sorted(worker.pid for worker in self._workers)

    def invoke(self, event: dict[str, Any]) -> Any:
        worker = self._acquire()
        timeout, memory = self._limits(self._function)
        try:
            return worker.invoke(event, timeout, memory)
        finally:
            self._release(worker)

    def _acquire(self) -> Worker:
        with self._changed:
            self._changed.wait_for(
                lambda: self._closed or self._idle or len(self._workers) + self._starting < self._capacity
            )
            if self._closed:
                raise FunctionError(f"{self._function}: the local stack is stopping")
            if self._idle:
                return self._idle.pop()  # the last one to finish: the warmest
            self._starting += 1
        try:
            # Outside the lock: a cold start holds up no event that a warm worker can serve.
            worker = Worker.start(self._function, self._environment, self._handler, self._console)
        except BaseException:
            self._started(None)
            raise
        if not self._started(worker):
            worker.stop()
            raise FunctionError(f"{self._function}: the local stack is stopping")
        return worker

    def _started(self, worker: Worker | None) -> bool:
        """Count a start as done; True if `worker` joined the pool (it was not closed meanwhile)."""
        with self._changed:
            self._starting -= 1
            kept = worker is not None and not self._closed
            if worker is not None and kept:
                self._workers.add(worker)
            self._changed.notify_all()
        return kept

    def _release(self, worker: Worker) -> None:
        with self._changed:
            reusable = worker.alive and not self._closed
            if reusable:
                self._idle.append(worker)
            else:
                self._workers.discard(worker)
            self._changed.notify_all()
        if not reusable:
            worker.stop()

    def idle(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(
                lambda: not self._starting and len(self._idle) == len(self._workers), timeout
            )

    def close(self) -> None:
        """Stop the idle workers and kill the busy ones (whose invocations then fail)."""
        with self._changed:
            self._closed = True
            idle, busy = self._idle, self._workers.difference(self._idle)
            self._workers, self._idle = set(), []
            self._changed.notify_all()
        for worker in busy:
            worker.kill()
        for worker in idle:
            worker.stop()


class WorkerPools:
    """A pool of worker processes per function, each started on its function's first event (`make dev`).

    `environment` is the workers' whole environment; `handlers` stands handlers of its own (MODULE:ATTRIBUTE)
    in for the template's, by function; `console` gets what the workers write (else stderr, as it comes)."""

    def __init__(
        self,
        environment: Mapping[str, str],
        capacity: int | None = None,
        handlers: Mapping[str, str] | None = None,
        limits: Limits = function_limits,
        console: Console | None = None,
    ) -> None:
        # Unbuffered, so that a function's log lines reach the stack's output as they are written.
        self._environment = {**environment, "PYTHONPATH": PYTHON_PATH, "PYTHONUNBUFFERED": "1"}
        self._capacity = concurrency() if capacity is None else capacity
        self._handlers = dict(handlers or {})
        self._limits = limits
        self._console = console
        self._pools: dict[str, FunctionPool] = {}
        self._lock = threading.Lock()
        self._closed = False

    def pool(self, function: str) -> FunctionPool:
        with self._lock:
            if self._closed:
                raise FunctionError(f"{function}: the local stack is stopping")
            if function not in self._pools:
                self._pools[function] = FunctionPool(
                    function,
                    self._environment,
                    self._capacity,
                    self._handlers.get(function),
                    self._limits,
                    self._console,
                )
            return self._pools[function]

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        return self.pool(function).invoke(event)

    def pids(self) -> list[int]:
        with self._lock:
            pools = list(self._pools.values())
        return sorted(pid for pool in pools for pid in pool.pids)

    def idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            pools = list(self._pools.values())
        return all(pool.idle(max(0.0, deadline - time.monotonic())) for pool in pools)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
        for pool in pools:
            pool.close()
