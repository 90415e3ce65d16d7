"""`make sam-env`: what the running local stack gives its functions, as `sam local --env-vars` takes it,
and a copy of the template declaring those variables (SAM CLI sets no variable the template leaves out)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from infra.local.devstack import (
    CONTAINER_HOST,
    LOOPBACK,
    STACK_FILE,
    aws_client,
    connect_host,
    loupe_home,
    over_tcp,
    write_private,
)
from infra.local.template_routes import ROOT, TEMPLATE
from loupe.config import Settings

ENV_FILE = "sam-env.json"
TEMPLATE_FILE = "sam-template.json"
# What `make build` (sam build) writes: the functions with their dependencies installed.
BUILT_TEMPLATE = ROOT / ".aws-sam" / "build" / "template.yaml"
# A container sees none of the host's folders, and Lambda's runtime may write under /tmp only; the
# embedded PostgreSQL has no TLS (the template's default mode is `require`).
CONTAINER_VALUES = {
    "LOUPE_OUTBOX_DIR": "/tmp/loupe-outbox",  # noqa: S108  # the container's own /tmp, as in Lambda
    "LOUPE_DUCKDB_ROOT": "",
    "LOUPE_DB_SSLMODE": "prefer",
}
# SAM CLI sets the template's LOUPE_JWT_SECRET_ARN (blank: it resolves no !If), and Loupe takes one key
# source only: in containers the key is a secret in moto, under this name.
JWT_SECRET_NAME = "loupe-local-jwt-signing-key"  # noqa: S105  # a name, not a secret
# Variables of the local stack's own pollers, which no function reads.
LOCAL_ONLY_PREFIX = "LOUPE_LOCAL_"
# Origins of the browser pages on the host that call the API: they stay the host's.
BROWSER_ORIGINS = "LOUPE_CORS_ORIGINS"
# Template keys naming a folder relative to the template, which the copy (elsewhere) names absolutely.
PATH_KEYS = ("CodeUri", "ContentUri")


class StackNotReady(RuntimeError):
    """No stack is running under $LOUPE_HOME, or it listens where no container reaches it."""


class _LongFormLoader(yaml.SafeLoader):
    """Reads CloudFormation's short tags (!Ref, !GetAtt, !Sub...) as their long JSON forms."""


def _long_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_LongFormLoader.add_multi_constructor("!", _long_form)  # type: ignore[no-untyped-call]


def load_template(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=_LongFormLoader)  # noqa: S506
    return loaded


def read_stack(home: Path) -> dict[str, Any]:
    """What the running stack recorded of itself at its start."""
    path = home / STACK_FILE
    if not path.exists():
        raise StackNotReady(f"no local stack is running under {home}: start it with LOUPE_LOCAL_ADDRESS set")
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if not record.get("address"):
        raise StackNotReady(
            "the local stack listens on 127.0.0.1, which containers do not reach: restart it with "
            "LOUPE_LOCAL_ADDRESS set (docker0's address, 172.17.0.1 on Linux, or 0.0.0.0)"
        )
    return record


def for_containers(value: str, address: str) -> str:
    """A URL naming the host's loopback (or the stack's address) names host.docker.internal instead."""
    if "://" not in value:
        return value
    parts = urlsplit(value)
    if parts.hostname not in (LOOPBACK, "localhost", address, connect_host(address)):
        return value
    netloc = parts.netloc.rpartition("@")
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}{netloc[1]}{CONTAINER_HOST}{port}"))


def store_jwt_key(aws_endpoint: str, key: str) -> str:
    """The stack's JWT key as a secret in moto (which keeps secrets in memory: stored each time); its ARN."""
    with closing(aws_client("secretsmanager", aws_endpoint)) as secrets:
        try:
            arn: str = secrets.create_secret(Name=JWT_SECRET_NAME, SecretString=key)["ARN"]
        except secrets.exceptions.ResourceExistsException:
            arn = secrets.put_secret_value(SecretId=JWT_SECRET_NAME, SecretString=key)["ARN"]
    return arn


def container_environment(record: Mapping[str, Any]) -> dict[str, str]:
    """The stack's functions' variables as a container must see them (the JWT key stored in moto)."""
    address = str(record["address"])
    stack = dict(record["environment"])
    jwt_key = stack.pop("LOUPE_JWT_SECRET")
    variables = {
        name: str(value) if name == BROWSER_ORIGINS else for_containers(str(value), address)
        for name, value in stack.items()
        if not name.startswith(LOCAL_ONLY_PREFIX)
    }
    variables["LOUPE_JWT_SECRET_ARN"] = store_jwt_key(stack["AWS_ENDPOINT_URL"], jwt_key)
    if record.get("database_port"):
        variables["DATABASE_URL"] = over_tcp(
            str(record["environment"]["DATABASE_URL"]), CONTAINER_HOST, int(record["database_port"])
        )
    return variables | CONTAINER_VALUES


def declared_variables(template: Mapping[str, Any], properties: Mapping[str, Any]) -> dict[str, Any]:
    """A function's variables as the template declares them: Globals', then its own."""
    shared = ((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    own = properties.get("Environment") or {}
    return {**(shared.get("Variables") or {}), **(own.get("Variables") or {})}


def functions_of(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource.get("Properties") or {}
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, str | int | float) else None


def settings_default(name: str) -> str:
    """Loupe's own default of the setting read from variable `name`, or blank (unset)."""
    field = next((field for field in Settings.model_fields.values() if field.alias == name), None)
    return (_text(field.default) if field is not None else None) or ""


def template_value(name: str, declared: Any, template: Mapping[str, Any]) -> str:
    """A declared value without the stack behind it: a literal as is, a parameter's default, else Loupe's
    default (what the template computes names resources or conditions of AWS only)."""
    literal = _text(declared)
    if literal is not None:
        return literal
    if isinstance(declared, Mapping) and set(declared) == {"Ref"}:
        parameter = (template.get("Parameters") or {}).get(declared["Ref"]) or {}
        default = _text(parameter.get("Default"))
        if default is not None:
            return default
    return settings_default(name)


def env_vars(template: Mapping[str, Any], environment: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The `--env-vars` file: each function's every variable (what the template declares, then what the
    stack gives), and under "Parameters" the stack's own, for every function."""
    entries: dict[str, dict[str, str]] = {"Parameters": dict(environment)}
    for function, properties in functions_of(template).items():
        declared = declared_variables(template, properties)
        values = {name: template_value(name, value, template) for name, value in declared.items()}
        entries[function] = values | dict(environment)
    return entries


def sam_template(template: Mapping[str, Any], folder: Path, environment: Mapping[str, str]) -> dict[str, Any]:
    """The template with every variable of `environment` declared (blank) for every function, and its code
    folders (relative to `folder`) absolute, so that it works from elsewhere."""
    copied: dict[str, Any] = json.loads(json.dumps(template))
    for resource in copied["Resources"].values():
        properties = resource.get("Properties") or {}
        for key in PATH_KEYS:
            if isinstance(properties.get(key), str):
                properties[key] = str((folder / properties[key]).resolve())
    shared = copied.setdefault("Globals", {}).setdefault("Function", {})
    variables = shared.setdefault("Environment", {}).setdefault("Variables", {})
    for name in environment:
        variables.setdefault(name, "")
    return copied


def write(home: Path) -> tuple[Path, Path]:
    """Write $LOUPE_HOME/sam-env.json and $LOUPE_HOME/sam-template.json from the running stack."""
    environment = container_environment(read_stack(home))
    source = BUILT_TEMPLATE if BUILT_TEMPLATE.exists() else TEMPLATE
    template = load_template(source)
    env_file, template_file = home / ENV_FILE, home / TEMPLATE_FILE
    # It holds the JWT key and the database's login, as secrets.json does.
    write_private(env_file, json.dumps(env_vars(template, environment), indent=2))
    template_file.write_text(
        json.dumps(sam_template(template, source.parent, environment), indent=2), encoding="utf-8"
    )
    return env_file, template_file


def main() -> int:
    try:
        env_file, template_file = write(loupe_home())
    except StackNotReady as error:
        print(f"make sam-env: {error}", file=sys.stderr)
        return 1
    print(f"wrote {env_file} and {template_file}; with Docker running:")
    print(f"  sam local start-api -t {template_file} --env-vars {env_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
