"""Every environment of samconfig.toml, with the values make deploy (or CI) adds, is accepted by
template.yaml's parameter constraints, Rules and Conditions: a configuration the template would refuse
fails here, not at deploy time. The CI workflow deploys without a prompt and gives those values."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import deploy
from infra.local.template_routes import template
from infra.template_rules import TemplateError, evaluate

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("environment", deploy.ENVIRONMENTS)
@pytest.mark.parametrize(
    "operator_values", [deploy.EXAMPLE_NETWORK, deploy.EXAMPLE_EXISTING_DATABASE], ids=["network", "database"]
)
def test_each_environment_is_accepted_with_what_make_deploy_adds(
    environment: str, operator_values: dict[str, str]
) -> None:
    assert deploy.refusals(environment, operator_values) == []


@pytest.mark.parametrize("environment", deploy.ENVIRONMENTS)
def test_without_the_operators_values_an_environment_is_refused_naming_them(environment: str) -> None:
    found = deploy.refusals(environment, {})
    assert found == [
        "rule DatabaseNeedsANetwork: Creating the database needs SubnetIds (and SecurityGroupIds);"
        " or pass DatabaseSecretArn."
    ]
    message = deploy.missing_values_message(environment, found)
    for value in deploy.OPERATOR_VALUES:
        assert value.variable in message


def test_each_environment_scales_as_its_cost_model_says() -> None:
    """dev pauses (no proxy, 0 ACU); staging and prod keep RDS Proxy and a floor (docs/operations.md)."""
    conditions = {
        environment: evaluate(
            {**deploy.committed_overrides(environment), **deploy.EXAMPLE_NETWORK}
        ).conditions
        for environment in deploy.ENVIRONMENTS
    }
    assert conditions["dev"]["PausesDatabase"]
    assert not conditions["dev"]["CreatesProxy"]
    for environment in ("staging", "prod"):
        assert conditions[environment]["CreatesProxy"]
        assert not conditions[environment]["PausesDatabase"]
    assert all(values["CreatesDatabase"] and values["InVpc"] for values in conditions.values())


@pytest.mark.parametrize(
    ("overrides", "refusal"),
    [
        ({"SubnetIds": "subnet-0123456789abcdef0"}, "rule SubnetsNeedSecurityGroups"),
        (
            {**deploy.EXAMPLE_NETWORK, "DbSslMode": "verify-full", "DatabaseThroughProxy": "false"},
            "rule VerifiedTlsToACreatedClusterNeedsTheProxy",
        ),
        (
            {**deploy.EXAMPLE_NETWORK, "DatabaseThroughProxy": "true", "DatabaseMinCapacity": "0"},
            "rule PausingNeedsNoProxy",
        ),
        ({**deploy.EXAMPLE_NETWORK, "LogRetentionDays": "8"}, "LogRetentionDays=8 is not one of"),
        ({**deploy.EXAMPLE_NETWORK, "DatabaseAutoPauseSeconds": "60"}, "below its MinValue 300"),
        ({**deploy.EXAMPLE_NETWORK, "DatabaseMaxCapacity": "many"}, "is not a number"),
        ({**deploy.EXAMPLE_NETWORK, "DatabaseProxy": "true"}, "DatabaseProxy is not a parameter"),
    ],
)
def test_the_evaluator_refuses_what_cloudformation_would(overrides: dict[str, str], refusal: str) -> None:
    refusals = evaluate(overrides).refusals
    assert any(refusal in found for found in refusals), refusals


def test_an_existing_database_needs_no_network_and_creates_nothing() -> None:
    verdict = evaluate(deploy.EXAMPLE_EXISTING_DATABASE)
    assert verdict.accepted
    assert not verdict.conditions["CreatesDatabase"]
    assert not verdict.conditions["CreatesProxy"]


def test_rules_may_use_only_the_functions_cloudformation_allows_in_rules() -> None:
    document: dict[str, Any] = {
        **template(),
        "Rules": {"Joined": {"Assertions": [{"Assert": {"Fn::Join": ["", {"Ref": "SubnetIds"}]}}]}},
    }
    with pytest.raises(TemplateError, match="Fn::Join is not allowed"):
        evaluate({}, document)


def test_operator_values_of_the_wrong_shape_are_refused_before_the_template() -> None:
    found = deploy.refusals(
        "dev", {"SubnetIds": "subnet-1,vpc-0123456789abcdef0", "SecurityGroupIds": "sg-x"}
    )
    assert any("SubnetIds: subnet-1, vpc-0123456789abcdef0 is not of the form" in line for line in found)
    assert any(line.startswith("SecurityGroupIds: sg-x") for line in found)


def test_make_deploy_asks_again_until_an_answer_fits_then_remembers_it_for_the_operator_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deploy, "REMEMBERED", tmp_path / ".deploy")
    for value in deploy.OPERATOR_VALUES:
        monkeypatch.delenv(value.variable, raising=False)
    answers = iter(["", "subnet-12", *deploy.EXAMPLE_NETWORK.values()])
    asked: list[str] = []
    said: list[str] = []

    def answer(question: str) -> str:
        asked.append(question)
        return next(answers)

    monkeypatch.setattr("builtins.input", answer)
    monkeypatch.setattr("builtins.print", said.append)
    values = deploy.operator_values_for("dev", interactive=True)
    assert values == deploy.EXAMPLE_NETWORK
    assert len(asked) == 4
    assert asked[1] == asked[2]
    assert any("subnet-12 is not of the form" in line for line in said)
    kept = tmp_path / ".deploy" / "dev.json"
    assert json.loads(kept.read_text()) == deploy.EXAMPLE_NETWORK
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    monkeypatch.setattr("builtins.input", lambda _: pytest.fail("asked again"))
    assert deploy.operator_values_for("dev", interactive=True) == deploy.EXAMPLE_NETWORK


def test_ci_values_win_and_a_missing_one_fails_loudly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(deploy, "REMEMBERED", tmp_path)
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("LOUPE_DEPLOY_SUBNET_IDS", deploy.EXAMPLE_NETWORK["SubnetIds"])
    monkeypatch.setenv("LOUPE_DEPLOY_SECURITY_GROUP_IDS", "")
    monkeypatch.setenv("LOUPE_DEPLOY_DATABASE_SECRET_ARN", "")
    with pytest.raises(SystemExit) as refused:
        deploy.main(["prod", "--check"])
    assert "rule SubnetsNeedSecurityGroups" in str(refused.value.code)
    assert "LOUPE_DEPLOY_SECURITY_GROUP_IDS" in str(refused.value.code)
    monkeypatch.setenv("LOUPE_DEPLOY_SECURITY_GROUP_IDS", deploy.EXAMPLE_NETWORK["SecurityGroupIds"])
    assert deploy.main(["prod", "--check"]) == 0


def test_sam_deploy_runs_without_a_prompt_with_every_override() -> None:
    command = deploy.sam_deploy_command("prod", deploy.EXAMPLE_NETWORK, plan=True)
    assert {"--no-confirm-changeset", "--no-execute-changeset", "--no-fail-on-empty-changeset"} <= set(
        command
    )
    overrides = command[command.index("--parameter-overrides") + 1]
    # SAM's --parameter-overrides replaces samconfig's: every committed override is passed again.
    for name, value in {**deploy.committed_overrides("prod"), **deploy.EXAMPLE_NETWORK}.items():
        assert f"{name}={value}" in overrides
    assert "--no-execute-changeset" not in deploy.sam_deploy_command(
        "dev", deploy.EXAMPLE_NETWORK, plan=False
    )


def test_no_environment_asks_for_confirmation() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    assert all(
        config[name]["deploy"]["parameters"]["confirm_changeset"] is False for name in deploy.ENVIRONMENTS
    )


def _job_runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_ci_deploys_dev_from_main_staging_from_a_candidate_and_prod_from_a_release_after_approval() -> None:
    jobs = WORKFLOW["jobs"]
    assert "refs/heads/main" in jobs["deploy-dev"]["if"]
    assert "make deploy ENV=dev" in _job_runs(jobs["deploy-dev"])
    assert "-rc" in jobs["deploy-staging"]["if"]
    assert "make deploy ENV=staging" in _job_runs(jobs["deploy-staging"])
    plan, execute = jobs["plan-prod"], jobs["deploy-prod"]
    assert "!contains(github.ref_name, '-')" in plan["if"]
    # The plan shows the changeset before the approval gate; the gated job executes that changeset.
    assert plan["environment"] == "prod-plan"
    assert "make plan ENV=prod" in _job_runs(plan)
    assert execute["environment"] == "prod"
    assert execute["needs"] == "plan-prod"
    assert "needs.plan-prod.outputs.changeset" in _job_runs(execute)
    assert "sam deploy" not in _job_runs(execute)
    assert "make deploy" not in _job_runs(execute)
    # A job output holding a secret's value (the region in an ARN) is dropped: the plan hands on a name.
    plan_source = (ROOT / "infra" / "deploy.py").read_text(encoding="utf-8")
    assert 'f"changeset={name}\\n"' in plan_source
    for name in ("deploy-dev", "deploy-staging", "plan-prod"):
        given = set(jobs[name]["env"])
        assert {value.variable for value in deploy.OPERATOR_VALUES} <= given, name
        assert jobs[name]["env"]["CI"] == "true"


def test_sam_reads_the_overrides_as_given_whatever_their_characters() -> None:
    """Parsed by SAM CLI's own parser (in .venv-sam), as `sam deploy --parameter-overrides` does."""
    values = {
        "CorsOrigins": "https://a.example,https://b.example",
        "MailFromAddress": "",
        "PasswordResetUrl": 'https://app.example/reset?token={token}&it\'s="quoted" back\\slash',
        "SubnetIds": deploy.EXAMPLE_NETWORK["SubnetIds"],
    }
    sam_python = ROOT / ".venv-sam" / "bin" / "python"
    parsed = subprocess.run(
        [
            str(sam_python),
            "-c",
            "import json, sys; from samcli.cli.types import CfnParameterOverridesType as T;"
            " print(json.dumps(T().convert((sys.argv[1],), None, None)))",
            deploy.overrides_argument(values),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(parsed.stdout) == values


def test_ci_values_lose_the_spaces_around_their_members(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOUPE_DEPLOY_SUBNET_IDS", " subnet-0123456789abcdef0 , subnet-0fedcba9876543210 ")
    monkeypatch.setenv("LOUPE_DEPLOY_SECURITY_GROUP_IDS", "")
    monkeypatch.delenv("LOUPE_DEPLOY_DATABASE_SECRET_ARN", raising=False)
    assert deploy.from_environment(dict(os.environ)) == {"SubnetIds": deploy.EXAMPLE_NETWORK["SubnetIds"]}
