"""`make sam-env`: from a stack started with LOUPE_LOCAL_ADDRESS, an `--env-vars` file naming every variable
each function of template.yaml reads, valued so that a container reaches the stack, and a template that
declares them (SAM CLI sets no variable the template leaves out)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import psycopg
import pytest

from infra.local.devstack import ADDRESS_VARIABLE, CONTAINER_HOST, STACK_FILE
from infra.local.sam_env import ENV_FILE, TEMPLATE_FILE, StackNotReady, load_template, read_stack
from infra.local.stack_process import StackFailed, StackProcess, running_stack
from infra.local.template_routes import PYTHON_PATH, ROOT, TEMPLATE
from loupe.config import Settings

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def generated() -> Iterator[tuple[StackProcess, dict[str, dict[str, str]], dict[str, Any]]]:
    """A stack listening for containers (on loopback here: no Docker), and what `make sam-env` wrote."""
    try:
        with running_stack({ADDRESS_VARIABLE: "127.0.0.1"}) as stack:
            made = subprocess.run(  # our own interpreter and module
                [sys.executable, "-m", "infra.local.sam_env"],
                cwd=ROOT,
                env={**os.environ, "LOUPE_HOME": str(stack.home), "PYTHONPATH": PYTHON_PATH},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert made.returncode == 0, made.stderr
            env_vars = json.loads((stack.home / ENV_FILE).read_text(encoding="utf-8"))
            template = json.loads((stack.home / TEMPLATE_FILE).read_text(encoding="utf-8"))
            yield stack, env_vars, template
    except StackFailed as failure:
        pytest.fail(str(failure))


def template_functions() -> dict[str, dict[str, Any]]:
    resources = load_template(TEMPLATE)["Resources"]
    return {
        name: resource["Properties"]
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def declared(template: dict[str, Any], properties: dict[str, Any]) -> set[str]:
    shared = template["Globals"]["Function"].get("Environment", {}).get("Variables", {})
    return set(shared) | set((properties.get("Environment") or {}).get("Variables") or {})


def test_every_function_has_every_variable_it_reads(generated: Any) -> None:
    _, env_vars, _ = generated
    original = load_template(TEMPLATE)
    functions = template_functions()
    assert set(env_vars) == {"Parameters", *functions}
    for function, properties in functions.items():
        missing = declared(original, properties) - set(env_vars[function])
        assert not missing, f"{function} lacks {sorted(missing)}"


def test_each_functions_variables_make_a_valid_configuration(generated: Any) -> None:
    """As a container would have them: nothing but the entry (SAM CLI adds the AWS credentials)."""
    _, env_vars, _ = generated
    for function in template_functions():
        settings = Settings.model_validate(env_vars[function])
        assert settings.database_url is not None, function
        assert (settings.jwt_secret, settings.jwt_secret_arn is not None) == (None, True), function


def test_the_values_name_the_stack_as_containers_reach_it(generated: Any) -> None:
    stack, env_vars, _ = generated
    values = env_vars["RunnerFunction"]
    assert values["AWS_ENDPOINT_URL"] == f"http://{CONTAINER_HOST}:{stack.moto_port}"
    assert urlsplit(values["LOUPE_RUNS_QUEUE_URL"]).netloc == f"{CONTAINER_HOST}:{stack.moto_port}"
    database = urlsplit(values["DATABASE_URL"])
    assert database.hostname == CONTAINER_HOST
    assert database.port is not None
    # The port in front of the embedded server's socket serves the metadata database.
    local = values["DATABASE_URL"].replace(CONTAINER_HOST, "127.0.0.1")
    with psycopg.connect(local, connect_timeout=10) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (1,)
    moto = boto3.client(
        "secretsmanager",
        endpoint_url=f"http://127.0.0.1:{stack.moto_port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    key = moto.get_secret_value(SecretId=values["LOUPE_JWT_SECRET_ARN"])["SecretString"]
    assert key == stack.stored_secrets()["jwt_secret"]
    assert not any(name.startswith("LOUPE_LOCAL_") for name in values)
    # The demo datasource is registered for containers too.
    assert f"@{CONTAINER_HOST}:" in stack.log.read_text(encoding="utf-8")


def test_the_template_declares_every_variable_and_names_its_code_absolutely(generated: Any) -> None:
    _, env_vars, template = generated
    for function in template_functions():
        copied = template["Resources"][function]["Properties"]
        assert set(env_vars[function]) <= declared(template, copied), function
        # sam build's folders when there is a build, else the sources'.
        assert Path(copied["CodeUri"]).is_absolute()
        assert Path(copied["CodeUri"]).is_dir()


def test_sam_env_refuses_a_stack_that_containers_cannot_reach(tmp_path: Path) -> None:
    with pytest.raises(StackNotReady, match="no local stack is running"):
        read_stack(tmp_path)
    (tmp_path / STACK_FILE).write_text(json.dumps({"address": None, "environment": {}}), encoding="utf-8")
    with pytest.raises(StackNotReady, match="LOUPE_LOCAL_ADDRESS"):
        read_stack(tmp_path)
