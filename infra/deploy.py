"""`make deploy ENV=dev|staging|prod`: samconfig.toml's environment plus the values only its operator
knows, checked against template.yaml's rules before SAM runs; `make plan` and `make execute` are CI's
prod path (a changeset made and shown, then executed once approved)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from infra.sam_tools import find_sam, sam_environment
from infra.template_rules import evaluate

ROOT = Path(__file__).resolve().parents[1]
SAMCONFIG = ROOT / "samconfig.toml"
# Where `make deploy` remembers an operator's answers, one file per environment (ignored by Git).
REMEMBERED = ROOT / ".deploy"
ENVIRONMENTS = ("dev", "staging", "prod")


class DeployRefused(SystemExit):
    """The deploy cannot go ahead; the message says what to give or fix."""

    def __init__(self, message: str) -> None:
        super().__init__(f"make deploy: {message}")


@dataclass(frozen=True)
class OperatorValue:
    """A parameter no environment can commit to Git (it names the operator's account)."""

    parameter: str
    variable: str  # where CI gives it: the GitHub environment's secret of that name
    question: str
    member: re.Pattern[str]

    def problem(self, text: str) -> str | None:
        """Why `text` cannot be this value, or None (empty is for the template's rules to judge)."""
        members = [member.strip() for member in text.split(",")] if text else []
        bad = [member for member in members if not self.member.fullmatch(member)]
        if bad:
            return f"{self.parameter}: {', '.join(bad)} is not of the form {self.member.pattern}"
        return None


OPERATOR_VALUES = (
    OperatorValue(
        "DatabaseSecretArn",
        "LOUPE_DEPLOY_DATABASE_SECRET_ARN",
        "An existing database's Secrets Manager secret ARN (empty: the stack creates Aurora Serverless v2)",
        re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+"),
    ),
    OperatorValue(
        "SubnetIds",
        "LOUPE_DEPLOY_SUBNET_IDS",
        "Private subnets for the functions and the database, comma-separated (in two or more zones)",
        re.compile(r"subnet-[0-9a-f]{8,17}"),
    ),
    OperatorValue(
        "SecurityGroupIds",
        "LOUPE_DEPLOY_SECURITY_GROUP_IDS",
        "Security groups of the functions, comma-separated (allowing 5432 among themselves)",
        re.compile(r"sg-[0-9a-f]{8,17}"),
    ),
)
# What the tests give as an operator's answers (the shapes AWS uses; no real account).
EXAMPLE_NETWORK = {
    "SubnetIds": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
    "SecurityGroupIds": "sg-0123456789abcdef0",
}
EXAMPLE_EXISTING_DATABASE = {
    "DatabaseSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:loupe-database-AbCdEf"
}


def samconfig(environment: str) -> dict[str, Any]:
    """The `[<environment>.deploy.parameters]` table of samconfig.toml."""
    config = tomllib.loads(SAMCONFIG.read_text(encoding="utf-8"))
    try:
        parameters: dict[str, Any] = config[environment]["deploy"]["parameters"]
    except KeyError:
        raise DeployRefused(f"samconfig.toml has no environment {environment!r}") from None
    return parameters


def committed_overrides(environment: str) -> dict[str, str]:
    """The environment's parameter_overrides as name → value."""
    pairs = shlex.split(samconfig(environment).get("parameter_overrides", ""))
    return dict(pair.split("=", 1) for pair in pairs)


def remembered_path(environment: str) -> Path:
    return REMEMBERED / f"{environment}.json"


def remembered(environment: str) -> dict[str, str]:
    path = remembered_path(environment)
    if not path.is_file():
        return {}
    values: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return values


def remember(environment: str, values: Mapping[str, str]) -> Path:
    """Keep an operator's answers for the next deploy, readable by them alone."""
    path = remembered_path(environment)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(dict(values), indent=2) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def from_environment(variables: Mapping[str, str]) -> dict[str, str] | None:
    """CI's values (LOUPE_DEPLOY_*; an unset GitHub secret arrives empty), or None when none is set."""
    given = {
        value.parameter: _members(variables[value.variable])
        for value in OPERATOR_VALUES
        if variables.get(value.variable, "").strip()
    }
    return given or None


def _members(text: str) -> str:
    """A list value with the spaces around its members taken out (a parameter's members keep none)."""
    return ",".join(member.strip() for member in text.split(","))


def ask(ask_line: Callable[[str], str], say: Callable[[str], None]) -> dict[str, str]:
    """An operator's answers, each asked again until it has the right shape."""
    answers: dict[str, str] = {}
    for value in OPERATOR_VALUES:
        if value.parameter != "DatabaseSecretArn" and answers.get("DatabaseSecretArn"):
            # An existing database outside a VPC needs no network; inside one it does.
            question = f"{value.question} [empty: outside any VPC]"
        else:
            question = value.question
        while True:
            text = _members(ask_line(f"{question}: ").strip())
            problem = value.problem(text)
            if problem is None:
                break
            say(problem)
        if text:
            answers[value.parameter] = text
    return answers


def refusals(environment: str, operator_values: Mapping[str, str]) -> list[str]:
    """Everything wrong with deploying `environment` with these values, named for the operator."""
    problems = [
        problem
        for value in OPERATOR_VALUES
        if (problem := value.problem(operator_values.get(value.parameter, "")))
    ]
    verdict = evaluate({**committed_overrides(environment), **operator_values})
    return problems + verdict.refusals


def missing_values_message(environment: str, found: list[str]) -> str:
    variables = ", ".join(value.variable for value in OPERATOR_VALUES)
    return (
        f"the {environment} stack cannot be deployed as configured:\n  "
        + "\n  ".join(found)
        + f"\nGive the values interactively (make deploy ENV={environment}) or, in CI, as the GitHub"
        f" environment's secrets {variables} (README: Deploying)."
    )


def operator_values_for(environment: str, *, interactive: bool) -> dict[str, str]:
    """The operator's values: CI's variables, else what was remembered, else asked (and remembered)."""
    given = from_environment(os.environ)
    if given is not None:
        return given
    kept = remembered(environment)
    if kept:
        print(f"make deploy: using {remembered_path(environment)} (delete it to answer again)")
        return kept
    if not interactive:
        return {}
    print(f"make deploy: the {environment} stack needs values only you know; they are kept in .deploy/")
    answers = ask(input, print)
    if not refusals(environment, answers):
        remember(environment, answers)
    return answers


def _sam_value(value: str) -> str:
    """A value as SAM's parser takes it: bare, or double-quoted with `"` escaped (SAM keeps any other
    backslash as it is)."""
    if value and not re.search(r"[\s\"'\\]", value):
        return value
    return '"' + value.replace('"', '\\"') + '"'


def overrides_argument(parameters: Mapping[str, str]) -> str:
    """SAM's --parameter-overrides text: Name=Value pairs separated by spaces."""
    return " ".join(f"{name}={_sam_value(value)}" for name, value in parameters.items())


def sam_deploy_command(environment: str, operator_values: Mapping[str, str], *, plan: bool) -> list[str]:
    """`sam deploy` for the environment, non-interactive; the full overrides, since SAM's
    --parameter-overrides replaces samconfig's rather than adding to them."""
    sam = find_sam()
    if sam is None:
        raise DeployRefused("SAM CLI is missing: run make validate once to install it into .venv-sam")
    command = [
        str(sam),
        "deploy",
        "--config-env",
        environment,
        "--no-confirm-changeset",
        "--no-fail-on-empty-changeset",
        "--parameter-overrides",
        overrides_argument({**committed_overrides(environment), **operator_values}),
    ]
    if plan:
        command.append("--no-execute-changeset")
    return command


def changeset_made_since(client: Any, stack: str, since: datetime) -> dict[str, Any] | None:
    """The changeset `sam deploy --no-execute-changeset` made after `since`, or None when nothing
    changed (an older one, a plan never approved, is not it)."""
    summaries = client.list_change_sets(StackName=stack).get("Summaries", [])
    available = [
        summary
        for summary in summaries
        if summary["Status"] == "CREATE_COMPLETE"
        and summary["ExecutionStatus"] == "AVAILABLE"
        and summary["CreationTime"] >= since
    ]
    return max(available, key=lambda summary: summary["CreationTime"], default=None)


def changeset_summary(client: Any, arn: str) -> str:
    """The changeset as a Markdown table, for the plan job's summary (what the approver reads)."""
    described = client.describe_change_set(ChangeSetName=arn)
    lines = [
        f"### Changeset for {described['StackName']}",
        "",
        "| Action | Resource | Type | Replacement |",
        "|---|---|---|---|",
    ]
    for change in described.get("Changes", []):
        resource = change["ResourceChange"]
        lines.append(
            f"| {resource['Action']} | {resource['LogicalResourceId']} | {resource['ResourceType']}"
            f" | {resource.get('Replacement', '')} |"
        )
    return "\n".join(lines) + "\n"


def _append(variable: str, text: str) -> None:
    target = os.environ.get(variable)
    if target:
        with open(target, "a", encoding="utf-8") as output:
            output.write(text)


def plan(environment: str, since: datetime) -> str:
    """Show the changeset made since `since`; its name goes to the job's outputs (empty: nothing to
    change). The name, not the ARN: GitHub drops an output holding a secret's value, and the ARN holds
    the region and the account."""
    client = boto3.client("cloudformation")
    stack = str(samconfig(environment)["stack_name"])
    found = changeset_made_since(client, stack, since)
    name = str(found["ChangeSetName"]) if found else ""
    _append("GITHUB_OUTPUT", f"changeset={name}\n")
    summary = changeset_summary(client, found["ChangeSetId"]) if found else f"No changes to {stack}.\n"
    _append("GITHUB_STEP_SUMMARY", summary)
    print(summary)
    return name


def execute(environment: str, name: str, poll_seconds: float = 15.0) -> None:
    """Execute the approved changeset of this environment's stack and wait for the stack to settle."""
    client = boto3.client("cloudformation")
    stack = str(samconfig(environment)["stack_name"])
    described = client.describe_change_set(ChangeSetName=name, StackName=stack)
    if described["ExecutionStatus"] != "AVAILABLE":
        raise DeployRefused(f"changeset {name} cannot be executed: {described['ExecutionStatus']}")
    client.execute_change_set(ChangeSetName=name, StackName=stack)
    # Right after the call the stack may still show its last settled status: wait for the execution to
    # start (the changeset leaves AVAILABLE, or the stack shows progress), then for the stack to settle.
    started = False
    while True:
        status = client.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        started = started or status.endswith("_IN_PROGRESS") or _executing(client, name, stack)
        if started and not status.endswith("_IN_PROGRESS"):
            break
        time.sleep(poll_seconds)
    print(f"make deploy: {stack} is {status}")
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise DeployRefused(f"{stack} ended {status}; see its events in the CloudFormation console")


def _executing(client: Any, name: str, stack: str) -> bool:
    try:
        status = client.describe_change_set(ChangeSetName=name, StackName=stack)["ExecutionStatus"]
    except client.exceptions.ChangeSetNotFoundException:
        return True  # executed changesets are removed with the stack's others
    return bool(status != "AVAILABLE")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy", description=__doc__)
    parser.add_argument("environment", choices=ENVIRONMENTS)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--plan", action="store_true", help="make and show the changeset, do not execute it")
    action.add_argument(
        "--execute", metavar="CHANGESET", help="execute the changeset `--plan` made (its name)"
    )
    action.add_argument("--check", action="store_true", help="only check the values against the template")
    args = parser.parse_args(argv)
    if args.execute:
        execute(args.environment, args.execute)
        return 0
    interactive = sys.stdin.isatty() and not os.environ.get("CI")
    values = operator_values_for(args.environment, interactive=interactive)
    found = refusals(args.environment, values)
    if found:
        raise DeployRefused(missing_values_message(args.environment, found))
    print(f"make deploy: the template accepts the {args.environment} configuration")
    if args.check:
        return 0
    command = sam_deploy_command(args.environment, values, plan=args.plan)
    # A second of slack for the clocks: CloudFormation stamps the changeset, this machine the start.
    since = datetime.now(UTC) - timedelta(seconds=1)
    # The repository's SAM CLI with arguments built here; the values were checked above.
    subprocess.run(command, check=True, cwd=ROOT, env=sam_environment())
    if args.plan:
        plan(args.environment, since)
    return 0


if __name__ == "__main__":
    sys.exit(main())
