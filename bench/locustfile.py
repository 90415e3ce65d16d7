"""The `make load` crowd, in a process of its own (bench/load.py starts it; locust's gevent patches stay
here): invited analysts sign in, save, list, read and run queries, follow each run and page its results."""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from locust import HttpUser, between, task
from locust.env import Environment
from locust.exception import RescheduleTask, StopUser
from locust.runners import STATE_RUNNING, STATE_SPAWNING, Runner
from locust.stats import StatsEntry, StatsError

from loupe.api.prefix import API_PREFIX

# Each created query reads its first `last` orders; a run of it is paged PAGE_ROWS rows at a time.
ORDERS_SQL = "SELECT id, status, total FROM orders WHERE id <= {{ last }} ORDER BY id"
MAX_LAST = 200
PAGE_ROWS = 50
# A client waits for its run with long polls, as docs/api-notes.md advises: one request per change of the
# run or per WAIT_SECONDS, not one every 250 ms. Their latency is the run's, reported apart from reads.
WAIT_SECONDS = 20
RUN_TIMEOUT_SECONDS = 60.0
UNFINISHED = ("queued", "running")
# Long enough for a sign-in queued behind the crowd's; a request never answered must not hold the run.
REQUEST_TIMEOUT_SECONDS = 60.0
# The workload's own picks (a query, a row count): nothing secret.
PICK = random.Random()  # noqa: S311

Body = dict[str, Any]
Check = Callable[[Body], str | None]


class Budget:
    """The fixed count of requests, shared by every user: a user takes one before each request and stops
    once none is left; the last user to stop quits the run, so no request is cut off in flight."""

    def __init__(self) -> None:
        self.total = 0
        self.taken = 0
        self.users = 0

    def take(self) -> None:
        if self.taken >= self.total:
            raise StopUser
        self.taken += 1

    def enter(self) -> None:
        self.users += 1

    def leave(self, runner: Runner | None) -> None:
        self.users -= 1
        # Once: a user the quitting itself stops leaves after it.
        if self.users == 0 and runner is not None and runner.state in (STATE_SPAWNING, STATE_RUNNING):
            runner.quit()


BUDGET = Budget()
# The invitations bench/load.py made, one per user: {email, password, token, datasource_id}.
ACCOUNTS: list[dict[str, str]] = []


def no_check(body: Body) -> str | None:
    return None


def error_text(text: str) -> str:
    """An error response as its code and message, without its error_id: alike failures count together."""
    try:
        error = json.loads(text)["error"]
        return f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return text[:300]


class Analyst(HttpUser):
    """An editor of the demo organization with an account of its own, as each person in a crowd would
    have (the per-user run limits then count per person, not for the whole crowd)."""

    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        BUDGET.enter()
        try:
            self.join()
        except StopUser:
            raise
        except Exception:
            # Locust calls on_stop after StopUser only; the run must not wait for a user already gone.
            BUDGET.leave(self.environment.runner)
            raise

    def on_stop(self) -> None:
        BUDGET.leave(self.environment.runner)

    def join(self) -> None:
        """Accept this user's invitation; a user that cannot, stops."""
        if not ACCOUNTS:
            # Locust replaces a user that stopped while the crowd was still spawning: no account is left.
            raise StopUser
        account = ACCOUNTS.pop()
        self.email = account["email"]
        self.password = account["password"]
        self.datasource_id = account["datasource_id"]
        self.headers: dict[str, str] = {}
        self.own_queries: list[str] = []
        self.listed_queries: list[str] = []
        body = {"token": account["token"], "name": "Load Analyst", "password": self.password}
        try:
            self.use_tokens(self.call("POST", "/auth/accept-invitation", 201, json=body))
        except RescheduleTask:
            # The failure is counted; without an account the user cannot go on.
            raise StopUser from None

    @task
    def visit(self) -> None:
        """One visit, as a person would pace it: sign in, save a query, browse the organization's queries,
        glance at its runs and dashboards, run the saved query, follow the run and page through its
        results, browse again. Every route is in each visit, so even a small budget covers them all;
        the crowd, each at its own step, makes the mix."""
        steps = (
            self.login,
            self.create_query,
            self.list_queries,
            self.get_query,
            self.list_runs,
            self.list_dashboards,
            self.run_and_page,
            self.list_queries,
            self.get_query,
        )
        for number, step in enumerate(steps):
            if number:
                time.sleep(self.wait_time())
            step()

    def call(
        self,
        method: str,
        path: str,
        status: int,
        *,
        name: str | None = None,
        check: Check = no_check,
        **kwargs: Any,
    ) -> Body:
        """One request of the budget, reported under `name` (the path template); a response other than
        `status`, or one `check` objects to, is a failure and ends the visit."""
        BUDGET.take()
        with self.client.request(
            method,
            API_PREFIX + path,
            name=API_PREFIX + (name or path),
            catch_response=True,
            headers=self.headers,
            timeout=REQUEST_TIMEOUT_SECONDS,
            **kwargs,
        ) as response:
            problem = None
            body: Body = {}
            if response.status_code != status:
                problem = f"HTTP {response.status_code}, expected {status}: {error_text(response.text)}"
            else:
                try:
                    body = response.json()
                except ValueError:
                    problem = f"not JSON: {response.text[:300]}"
                else:
                    problem = check(body)
            if problem is None:
                response.success()
            else:
                response.failure(problem)
        if problem is not None:
            raise RescheduleTask
        return body

    def use_tokens(self, tokens: Body) -> None:
        self.headers = {"Authorization": f"Bearer {tokens['access_token']}"}

    def login(self) -> None:
        credentials = {"email": self.email, "password": self.password}
        self.use_tokens(self.call("POST", "/auth/login", 200, json=credentials))

    def create_query(self) -> None:
        body = {
            "name": f"Orders by id #{len(self.own_queries) + 1}",
            "datasource_id": self.datasource_id,
            "sql": ORDERS_SQL,
            "parameters": [{"name": "last", "type": "number", "required": True}],
            "tags": ["load"],
        }
        self.own_queries.append(self.call("POST", "/queries", 201, json=body)["id"])

    def list_queries(self) -> None:
        page = self.call("GET", "/queries", 200, params={"limit": 50})
        self.listed_queries = [item["id"] for item in page["items"]]

    def get_query(self) -> None:
        # Often another analyst's: the organization's queries are shared.
        query_id = PICK.choice(self.listed_queries)
        self.call("GET", f"/queries/{query_id}", 200, name="/queries/{id}")

    def list_runs(self) -> None:
        self.call("GET", "/runs", 200, params={"limit": 50})

    def list_dashboards(self) -> None:
        self.call("GET", "/dashboards", 200, params={"limit": 50})

    def run_and_page(self) -> None:
        values = {"parameters": {"last": PICK.randint(1, MAX_LAST)}}
        query = f"/queries/{self.own_queries[-1]}/runs"
        run = self.call("POST", query, 202, name="/queries/{id}/runs", json=values)
        deadline = time.monotonic() + RUN_TIMEOUT_SECONDS

        def ends_well(look: Body) -> str | None:
            if look["status"] in UNFINISHED:
                late = time.monotonic() > deadline
                return f"still {look['status']} after {RUN_TIMEOUT_SECONDS:g} s" if late else None
            if look["status"] != "succeeded":
                return f"the run ended {look['status']}: {look['error']}"
            return None

        while run["status"] in UNFINISHED:
            run = self.call(
                "GET",
                f"/runs/{run['id']}",
                200,
                name="/runs/{id}?wait",
                check=ends_well,
                params={"wait": WAIT_SECONDS},
            )
        for offset in range(0, run["row_count"], PAGE_ROWS):
            self.call(
                "GET",
                f"/runs/{run['id']}/results",
                200,
                name="/runs/{id}/results",
                params={"offset": offset, "limit": PAGE_ROWS},
            )


def route_figures(entry: StatsEntry) -> dict[str, Any]:
    """One route's figures as bench/load.py reads them (locust's percentiles: whole milliseconds below
    100 ms, two significant digits above)."""
    return {
        "route": f"{entry.method} {entry.name}".strip(),
        "count": entry.num_requests,
        "errors": entry.num_failures,
        "p50_ms": entry.get_response_time_percentile(0.5),
        "p95_ms": entry.get_response_time_percentile(0.95),
        "p99_ms": entry.get_response_time_percentile(0.99),
        "max_ms": entry.max_response_time,
    }


def failure_text(error: StatsError) -> str:
    return f"{error.method} {error.name}: {StatsError.parse_error(error.error)} (x{error.occurrences})"


def report(environment: Environment, runner: Runner) -> dict[str, Any]:
    stats = environment.stats
    return {
        "routes": [route_figures(entry) for _, entry in sorted(stats.entries.items())],
        "total": route_figures(stats.total),
        "failures": [failure_text(error) for error in stats.errors.values()],
        "exceptions": [f"{row['msg']} (x{row['count']})" for row in runner.exceptions.values()],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", required=True, help="the stack's URL")
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--spawn-rate", type=float, required=True, help="users started per second")
    parser.add_argument("--requests", type=int, required=True, help="the budget: requests in all")
    parser.add_argument("--accounts", type=Path, required=True, help="the invitations (JSON)")
    parser.add_argument("--report", type=Path, required=True, help="where the figures go (JSON)")
    options = parser.parse_args(argv)
    BUDGET.total = options.requests
    ACCOUNTS.extend(json.loads(options.accounts.read_text(encoding="utf-8")))
    environment = Environment(user_classes=[Analyst], host=options.host)
    runner = environment.create_local_runner()
    runner.start(options.users, spawn_rate=options.spawn_rate)
    runner.greenlet.join()  # until the last user leaves and quits the run
    options.report.write_text(json.dumps(report(environment, runner), indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
