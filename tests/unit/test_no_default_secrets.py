"""No default, placeholder or committed secret is ever accepted: the key check refuses the well-known
ones, the repository holds no literal signing key, and the deployment generates its key when none is
given instead of falling back on a default."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from infra.local.template_routes import template
from loupe.config import (
    KNOWN_PLACEHOLDER_SECRETS,
    ConfigurationError,
    check_signing_secret,
    parse_signing_keys,
)

ROOT = Path(__file__).resolve().parents[2]
# `LOUPE_JWT_SECRET=value`, `"LOUPE_JWT_SECRET": "value"`, `jwt_secret = "value"` and the like.
ASSIGNED_SECRET = re.compile(
    r"""(?ix)(?:jwt_secret|signing_key|secret_key|SECRET)["']?\s*[:=]\s*["']([^"'\s]{8,})["']"""
)


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    paths = [ROOT / name for name in listed.stdout.splitlines()]
    return [
        path
        for path in paths
        if path.suffix
        in {".py", ".md", ".toml", ".yaml", ".yml", ".json", ".txt", ".cfg", ".ini", ".env", ""}
        and path.is_file()
    ]


@pytest.mark.parametrize("placeholder", sorted(KNOWN_PLACEHOLDER_SECRETS))
def test_every_known_placeholder_is_refused_alone_and_in_a_key_set(placeholder: str) -> None:
    with pytest.raises(ConfigurationError):
        check_signing_secret(placeholder)
    with pytest.raises(ConfigurationError):
        parse_signing_keys(json.dumps({"current": placeholder}))


@pytest.mark.parametrize(
    "line",
    [
        'LOUPE_JWT_SECRET="k3y-th4t-l00ks-r4nd0m"',
        "'jwt_secret': 'k3y-th4t-l00ks-r4nd0m'",
        'SECRET_KEY = "k3y-th4t"',
    ],
)
def test_the_scan_sees_assignments(line: str) -> None:
    assert ASSIGNED_SECRET.search(line)


def test_no_literal_secret_in_the_repository_would_be_accepted() -> None:
    accepted: list[str] = []
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in ASSIGNED_SECRET.finditer(text):
            value = match.group(1)
            try:
                check_signing_secret(value)
            except ConfigurationError:
                continue
            accepted.append(f"{path.relative_to(ROOT)}: {value[:6]}…")
    assert accepted == [], "a committed value would be accepted as a signing key"


def test_the_repository_holds_no_local_secrets_or_env_files() -> None:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for forbidden in (".env", "secrets.json", ".loupe/"):
        assert not any(
            line == forbidden or line.startswith(forbidden) or line.endswith("/" + forbidden)
            for line in names.splitlines()
        ), forbidden


def test_the_template_has_no_default_secret_and_generates_one() -> None:
    parameters = template()["Parameters"]
    for name, parameter in parameters.items():
        if re.search("secret|password|key", name, re.IGNORECASE) and "Default" in parameter:
            assert parameter["Default"] == "", f"{name} has a default value"
    generated = template()["Resources"]["JwtSigningSecret"]
    assert generated["Type"] == "AWS::SecretsManager::Secret"
    assert generated["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    assert "SecretString" not in generated["Properties"]
    samconfig = (ROOT / "samconfig.toml").read_text(encoding="utf-8")
    assert not re.search(r"(?i)(secret|password)=[^\s\"]", samconfig.replace("SecretArn=", "")), (
        "a secret in samconfig"
    )
