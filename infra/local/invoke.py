"""`make invoke FN=<function> [EVENT=event.json]`: run one function once, like `sam local invoke`,
in the local stack's environment (its secrets and database under $LOUPE_HOME, and moto)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from infra.local.devstack import (
    environment,
    load_secrets,
    local_aws_environment,
    loupe_home,
    metadata_database,
    moto_server,
)
from infra.local.events import LocalLambdaContext, rest_api_event, scheduled_event
from infra.local.template_routes import function_limits, functions, load_handler
from loupe import db, migrations

FUNCTION_SUFFIX = "Function"
PATH_PARAMETER = re.compile(r"\{([A-Za-z0-9_]+)\+?\}")


def resolve_function(name: str) -> str:
    """A logical id (`HealthFunction`) or its short name (`health`, any case) → the logical id."""
    names = functions()
    if name in names:
        return name
    wanted = name.lower().removesuffix(FUNCTION_SUFFIX.lower())
    for logical_id in names:
        if logical_id.lower().removesuffix(FUNCTION_SUFFIX.lower()) == wanted:
            return logical_id
    known = ", ".join(sorted(logical_id.removesuffix(FUNCTION_SUFFIX).lower() for logical_id in names))
    raise SystemExit(f"no function {name!r} in template.yaml; one of: {known}")


def sample_event(function: str) -> dict[str, Any]:
    """A GET of the function's first API path ({params} filled in), the event of its schedule, or {}."""
    events = list((functions()[function].get("Events") or {}).values())
    if any(event["Type"] in ("Schedule", "ScheduleV2") for event in events):
        return scheduled_event(f"arn:aws:scheduler:us-east-1:123456789012:schedule/default/{function}")
    path = next((event["Properties"]["Path"] for event in events if event["Type"] == "Api"), None)
    if path is None:
        return {}
    return rest_api_event(
        "GET",
        PATH_PARAMETER.sub("example", path),
        resource=path,
        path_parameters=dict.fromkeys(PATH_PARAMETER.findall(path), "example"),
        headers={"Accept": "application/json", "User-Agent": "loupe-invoke"},
    )


def invoke(function: str, event: dict[str, Any]) -> Any:
    """Run the function's handler once, with the local stack's environment set around it."""
    home = loupe_home()
    secrets = load_secrets(home)
    aws_port = int(os.environ.get("MOTO_PORT") or 0)
    with (
        metadata_database(home) as database_url,
        moto_server(aws_port) as aws_endpoint,
        environment(local_aws_environment(secrets, database_url, aws_endpoint, home)),
    ):
        # As `make dev` does: a fresh $LOUPE_HOME's database gets its schema first.
        migrations.apply(database_url)
        timeout, memory = function_limits(function)
        try:
            return load_handler(function)(event, LocalLambdaContext(function, timeout, memory))
        finally:
            db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make invoke", description=__doc__)
    parser.add_argument("function", help="logical id (HealthFunction) or short name (health)")
    parser.add_argument("event", nargs="?", type=Path, help="a JSON event file (default: a sample event)")
    args = parser.parse_args(argv)
    function = resolve_function(args.function)
    event = json.loads(args.event.read_text(encoding="utf-8")) if args.event else sample_event(function)
    result = invoke(function, event)
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
