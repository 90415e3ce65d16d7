"""`make fuzz` on a small budget, so every test run fuzzes the API: schemathesis as each role against the
stack's own OpenAPI document, links followed. Any 5xx or undocumented response fails."""

from __future__ import annotations

import os

import pytest

from infra.fuzz import STACK_ENVIRONMENT, fuzz, report
from infra.local.stack_process import StackFailed, running_stack

pytestmark = pytest.mark.e2e

# Examples per operation and phase; `make fuzz` runs far more (FUZZ_EXAMPLES, default 50).
BUDGET = int(os.environ.get("LOUPE_TEST_FUZZ_EXAMPLES", "5"))


def test_every_role_fuzzes_without_a_server_error_or_an_undocumented_answer() -> None:
    try:
        with running_stack(STACK_ENVIRONMENT) as stack:
            results = fuzz(stack.url, BUDGET, "examples,fuzzing,stateful", seed=20261126)
    except StackFailed as failure:
        pytest.fail(str(failure))
    assert {result.name for result in results} >= {"admin", "editor", "viewer", "api-key", "guest"}
    assert all(result.exit_code == 0 for result in results), report(results)
