"""Settings validation at cold start: database URL shape, TLS in production, signing secrets."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from loupe.config import (
    KNOWN_PLACEHOLDER_SECRETS,
    ConfigurationError,
    Settings,
    check_signing_secret,
    database_url_from_secret,
)

GOOD_SECRET = secrets.token_urlsafe(48)
BASE = {"DATABASE_URL": "postgresql://loupe:pw@db.internal:5432/loupe", "LOUPE_JWT_SECRET": GOOD_SECRET}


def settings(**overrides: Any) -> Settings:
    return Settings.model_validate({**BASE, **overrides})


@pytest.mark.parametrize(
    "url",
    ["mysql://u:p@h/db", "postgresql://u:p@h", "postgresql://u:p@h/", "not a url", "postgresql:///db"],
)
def test_database_url_shape_is_checked_without_echoing_it(url: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as raised:
        settings(DATABASE_URL=url)
    assert "pw" not in str(raised.value.errors(include_input=False))


def test_socket_urls_are_accepted() -> None:
    assert settings(DATABASE_URL="postgresql://postgres:@/loupe?host=/tmp/socket").database_url


def test_production_requires_tls() -> None:
    from pydantic import ValidationError

    assert settings(LOUPE_ENV="production").effective_sslmode == "require"
    assert settings(LOUPE_ENV="production", LOUPE_DB_SSLMODE="verify-full").effective_sslmode == "verify-full"
    for weak in ("disable", "allow", "prefer"):
        with pytest.raises(ValidationError):
            settings(LOUPE_ENV="production", LOUPE_DB_SSLMODE=weak)
    assert settings(LOUPE_DB_SSLMODE="disable").effective_sslmode == "disable"


def test_cors_origins() -> None:
    from pydantic import ValidationError

    assert settings(LOUPE_CORS_ORIGINS="https://a.example, http://localhost:3000").cors_origins == (
        "https://a.example",
        "http://localhost:3000",
    )
    with pytest.raises(ValidationError):
        settings(LOUPE_CORS_ORIGINS="https://a.example/path")
    with pytest.raises(ValidationError):
        settings(LOUPE_ENV="production", LOUPE_CORS_ORIGINS="*")


@pytest.mark.parametrize("placeholder", sorted(KNOWN_PLACEHOLDER_SECRETS))
def test_placeholders_are_refused(placeholder: str) -> None:
    with pytest.raises(ConfigurationError):
        check_signing_secret(placeholder)
    with pytest.raises(ConfigurationError):
        _ = settings(LOUPE_JWT_SECRET=placeholder).signing_secret


@pytest.mark.parametrize("weak", ["", "short", "a" * 64, "abababababababababababababababab", "x" * 31])
def test_short_or_uniform_secrets_are_refused(weak: str) -> None:
    with pytest.raises(ConfigurationError):
        check_signing_secret(weak)


def test_missing_secret_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="no JWT signing secret"):
        _ = Settings.model_validate({"DATABASE_URL": BASE["DATABASE_URL"]}).signing_secret


def test_secret_from_file(tmp_path: Path) -> None:
    path = tmp_path / "jwt"
    path.write_text(GOOD_SECRET + "\n")
    loaded = Settings.model_validate(
        {"DATABASE_URL": BASE["DATABASE_URL"], "LOUPE_JWT_SECRET_FILE": str(path)}
    )
    assert loaded.signing_secret == GOOD_SECRET.encode()
    missing = Settings.model_validate(
        {"DATABASE_URL": BASE["DATABASE_URL"], "LOUPE_JWT_SECRET_FILE": "/nope"}
    )
    with pytest.raises(ConfigurationError):
        _ = missing.signing_secret


def test_only_one_secret_source() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        settings(LOUPE_JWT_SECRET_FILE="/x")


def test_secret_from_secrets_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("secretsmanager")
        arn = client.create_secret(Name="jwt", SecretString=GOOD_SECRET)["ARN"]
        weak = client.create_secret(Name="weak", SecretString="changeme")["ARN"]
        db_secret = client.create_secret(
            Name="db",
            SecretString=json.dumps(
                {
                    "username": "loupe",
                    "password": "p@ss/word",
                    "host": "db.internal",
                    "port": 5432,
                    "dbname": "loupe",
                }
            ),
        )["ARN"]
        loaded = Settings.model_validate({"DATABASE_URL": BASE["DATABASE_URL"], "LOUPE_JWT_SECRET_ARN": arn})
        assert loaded.signing_secret == GOOD_SECRET.encode()
        with pytest.raises(ConfigurationError):
            _ = Settings.model_validate(
                {"DATABASE_URL": BASE["DATABASE_URL"], "LOUPE_JWT_SECRET_ARN": weak}
            ).signing_secret
        url = database_url_from_secret(db_secret)
        assert url == "postgresql://loupe:p%40ss%2Fword@db.internal:5432/loupe"
        assert Settings.model_validate({"DATABASE_URL": url, "LOUPE_JWT_SECRET": GOOD_SECRET}).database_url


def test_database_url_never_in_repr() -> None:
    loaded = settings()
    assert "pw" not in repr(loaded)
    assert "pw" not in str(loaded.model_dump())


def test_verifying_tls_uses_the_system_trust_store_unless_the_url_names_a_root() -> None:
    from loupe.db import tls_options

    assert tls_options(settings(LOUPE_DB_SSLMODE="require")) == {"sslmode": "require"}
    assert tls_options(settings(LOUPE_DB_SSLMODE="verify-full")) == {
        "sslmode": "verify-full",
        "sslrootcert": "system",
    }
    own_root = settings(
        LOUPE_DB_SSLMODE="verify-full", DATABASE_URL=BASE["DATABASE_URL"] + "?sslrootcert=/opt/rds-ca.pem"
    )
    assert tls_options(own_root) == {"sslmode": "verify-full"}


def test_the_proxy_host_replaces_the_secrets_host(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    from loupe.config import environment

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with mock_aws():
        secret = {"username": "loupe", "password": "p@ss", "host": "cluster.internal", "port": 5432}
        arn = boto3.client("secretsmanager").create_secret(Name="db", SecretString=json.dumps(secret))["ARN"]
        monkeypatch.setenv("LOUPE_DATABASE_SECRET_ARN", arn)
        monkeypatch.setenv("LOUPE_DATABASE_HOST", "proxy.internal")
        assert environment()["DATABASE_URL"] == "postgresql://loupe:p%40ss@proxy.internal:5432/loupe"
        monkeypatch.delenv("LOUPE_DATABASE_HOST")
        assert environment()["DATABASE_URL"] == "postgresql://loupe:p%40ss@cluster.internal:5432/loupe"


def test_background_functions_start_without_a_signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from loupe.api.resolver import create_app
    from loupe.config import get_settings

    monkeypatch.delenv("LOUPE_JWT_SECRET", raising=False)
    get_settings.cache_clear()
    assert get_settings().jwt_secret is None
    with pytest.raises(ConfigurationError, match="no JWT signing secret"):
        create_app()
