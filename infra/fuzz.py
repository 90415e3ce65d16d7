"""`make fuzz`: schemathesis against the local stack's own OpenAPI document, as each role, with the
document's links followed statefully. Any 5xx, or a response off its documented status, type, schema
or headers, fails it."""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from infra.local.stack_process import running_stack
from loupe.api.prefix import API_PREFIX

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
# These end the caller's own session or change its password: fuzzed in a pass of their own, last, so
# the other passes keep a working token.
SESSION_ENDING = r"^/auth/(logout|logout-all|password)$|^/auth/sessions/"
GUEST_PATHS = r"^/embed/"
PASSWORD = "Fuzz-password-" + "x" * 8
# The app's rate limits would answer most fuzzed calls with 429 (a documented answer, but one that
# leaves the operation behind it untested): auth calls per address, runs per user, requests per key and
# per user.
STACK_ENVIRONMENT = {
    "LOUPE_RATE_LIMIT_AUTH_PER_IP_PER_MINUTE": "100000",
    "LOUPE_RATE_LIMIT_RUNS_PER_USER_PER_MINUTE": "100000",
    "LOUPE_RATE_LIMIT_API_KEY_PER_MINUTE": "1000000",
    "LOUPE_RATE_LIMIT_USER_PER_MINUTE": "1000000",
}


@dataclass(frozen=True)
class Principal:
    """Who a pass runs as: a role's name and the header that authenticates it; `only`, the paths it is
    for (a guest's token opens the guest routes alone)."""

    name: str
    header: str
    only: str | None = None


@dataclass(frozen=True)
class PassResult:
    name: str
    exit_code: int
    seconds: float
    summary: str


def _checked(response: httpx.Response, status: int) -> dict[str, object]:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: {response.text}")
    body: dict[str, object] = response.json()
    return body


def principals(url: str) -> list[Principal]:
    """An organization with an admin, an editor and a viewer (invited), and an editor API key."""
    suffix = secrets.token_hex(4)
    with httpx.Client(base_url=f"{url}{API_PREFIX}", timeout=30) as http:
        admin = _checked(
            http.post(
                "/auth/register",
                json={
                    "email": f"fuzz-admin-{suffix}@example.com",
                    "password": PASSWORD,
                    "name": "Fuzz admin",
                    "organization_name": f"Fuzz {suffix}",
                },
            ),
            201,
        )
        bearer = {"Authorization": f"Bearer {admin['access_token']}"}
        found = [Principal("admin", f"Authorization: Bearer {admin['access_token']}")]
        for role in ("editor", "viewer"):
            email = f"fuzz-{role}-{suffix}@example.com"
            invitation = _checked(
                http.post("/organizations/invitations", headers=bearer, json={"email": email, "role": role}),
                201,
            )
            joined = _checked(
                http.post(
                    "/auth/accept-invitation",
                    json={"token": invitation["token"], "name": f"Fuzz {role}", "password": PASSWORD},
                ),
                201,
            )
            found.append(Principal(role, f"Authorization: Bearer {joined['access_token']}"))
        key = _checked(http.post("/api-keys", headers=bearer, json={"name": "fuzz", "role": "editor"}), 201)
        found.append(Principal("api-key", f"X-API-Key: {key['key']}"))
        found.append(_guest(http, bearer))
    return found


def _guest(http: httpx.Client, bearer: dict[str, str]) -> Principal:
    """A guest of a dashboard with a filter it may change, for a day."""
    dashboard = _checked(
        http.post(
            "/dashboards",
            headers=bearer,
            json={"name": "Fuzz embed", "filters": [{"name": "region", "type": "text", "default": "eu"}]},
        ),
        201,
    )
    token = _checked(
        http.post(
            "/embed-tokens",
            headers=bearer,
            json={
                "resource": {"type": "dashboard", "id": dashboard["id"]},
                "editable_filters": ["region"],
                "lifetime_seconds": 86_400,
            },
        ),
        201,
    )
    return Principal("guest", f"Authorization: Bearer {token['token']}", only=GUEST_PATHS)


def run_pass(
    url: str, principal: Principal, max_examples: int, phases: str, *, session_ending: bool, seed: int | None
) -> PassResult:
    """One schemathesis run as `principal`: every operation but the session-ending ones, or only those."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{url}{API_PREFIX}/openapi.json",
        "--url",
        f"{url}{API_PREFIX}",
        "--header",
        principal.header,
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(max_examples),
        "--phases",
        phases,
        # The header above is the credential; generated ones would only test the 401 path again.
        "--generation-with-security-parameters",
        "false",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--workers",
        "2",
        "--no-color",
    ]
    if principal.only is not None:
        command += ["--include-path-regex", principal.only]
    else:
        command += ["--include-path-regex" if session_ending else "--exclude-path-regex", SESSION_ENDING]
    if seed is not None:
        command += ["--seed", str(seed)]
    name = f"{principal.name}{' (session-ending)' if session_ending else ''}"
    started = time.monotonic()
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    output = finished.stdout + finished.stderr
    if finished.returncode != 0:
        print(f"--- schemathesis as {name} ---\n{output}", flush=True)
    lines = output.splitlines()
    cases = next((line.strip() for line in lines if " generated" in line), "")
    # schemathesis ends with a rule like "==== 3 warnings in 6.55s ====".
    verdict = next(
        (line.strip("= ") for line in reversed(lines) if line.startswith("=") and " in " in line), ""
    )
    summary = f"{cases}; {verdict}" if cases else verdict
    return PassResult(name, finished.returncode, seconds, summary)


def fuzz(url: str, max_examples: int, phases: str, seed: int | None = None) -> list[PassResult]:
    """Every role's pass, then each role's session-ending pass."""
    everyone = principals(url)
    # No links lead to or from the session-ending or the guest operations: they have no stateful phase.
    stateless = ",".join(phase for phase in phases.split(",") if phase != "stateful")
    results = [
        run_pass(
            url,
            principal,
            max_examples,
            phases if principal.only is None else stateless,
            session_ending=False,
            seed=seed,
        )
        for principal in everyone
    ]
    results += [
        run_pass(url, principal, max_examples, stateless, session_ending=True, seed=seed)
        for principal in everyone
        if principal.header.startswith("Authorization") and principal.only is None
    ]
    return results


def report(results: list[PassResult]) -> str:
    width = max(len(result.name) for result in results)
    lines = [f"{'pass':<{width}}  result  seconds  schemathesis"]
    for result in results:
        verdict = "ok" if result.exit_code == 0 else "FAILED"
        lines.append(f"{result.name:<{width}}  {verdict:<6}  {result.seconds:7.1f}  {result.summary}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("FUZZ_EXAMPLES", "50")))
    parser.add_argument(
        "--phases", default=os.environ.get("FUZZ_PHASES", "examples,coverage,fuzzing,stateful")
    )
    parser.add_argument("--seed", type=int, default=None)
    arguments = parser.parse_args(argv)
    with running_stack(STACK_ENVIRONMENT) as stack:
        results = fuzz(stack.url, arguments.max_examples, arguments.phases, arguments.seed)
    print(report(results))
    return 0 if all(result.exit_code == 0 for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
