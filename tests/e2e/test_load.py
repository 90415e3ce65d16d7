"""`make load` in small: a few users and requests against a stack of their own, so the load script, its
locustfile and its report keep working."""

from __future__ import annotations

import pytest

from bench import load

pytestmark = pytest.mark.e2e

# Every route of the workload's visit (bench/locustfile.py), as the report names them.
WORKLOAD_ROUTES = {
    "POST /api/v1/auth/accept-invitation",
    "POST /api/v1/auth/login",
    "POST /api/v1/queries",
    "GET /api/v1/queries",
    "GET /api/v1/queries/{id}",
    "GET /api/v1/runs",
    "GET /api/v1/dashboards",
    "POST /api/v1/queries/{id}/runs",
    "GET /api/v1/runs/{id}?wait",
    "GET /api/v1/runs/{id}/results",
}


def test_a_small_load_takes_every_route_without_an_error() -> None:
    result = load.measure(load.Config(users=5, requests=80))
    assert result.errors == 0, result.problems
    assert result.total.count == 80
    assert {route.route for route in result.routes} == WORKLOAD_ROUTES
    assert 0 < result.max_connections <= result.connection_bound
    assert result.baseline_p50_ms > 0
