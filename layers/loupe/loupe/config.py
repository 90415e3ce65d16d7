"""Typed settings, read from the environment once per cold start and validated there.

A missing or weak value stops the function at import time rather than at the first request.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"


SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
SSL_MODES_IN_STRENGTH_ORDER: tuple[SslMode, ...] = (
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
)

MIN_SECRET_BYTES = 32

# Secrets that appear in samples, tutorials and peers' defaults (Superset CVE-2023-27524 and Redash
# CVE-2021-41192 were exactly this): never accepted, whatever their length.
KNOWN_PLACEHOLDER_SECRETS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "your-secret-key",
        "your_secret_key",
        "thisismysecretkey",
        "\x02\x01thisismyscretkey\x01\x02\\e\\y\\y\\h",
        "CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET",
        "TEST_NON_DEV_SECRET",
        "c292a0a3aa32397cdb050e233733900f",
        "replace-with-a-long-random-secret-of-at-least-32-bytes",
        "dev-secret-dev-secret-dev-secret-dev-secret",
        "loupe-local-development-secret-change-me",
    }
)


class ConfigurationError(RuntimeError):
    """The environment does not describe a service that may start."""


class Settings(BaseModel):
    """Everything the functions read from their environment. See README "Configuration"."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    env: Environment = Field(Environment.DEVELOPMENT, alias="LOUPE_ENV")

    database_url: SecretStr = Field(alias="DATABASE_URL")
    db_sslmode: SslMode | None = Field(None, alias="LOUPE_DB_SSLMODE")
    db_connect_timeout_seconds: int = Field(5, ge=1, le=60, alias="LOUPE_DB_CONNECT_TIMEOUT_SECONDS")
    db_statement_timeout_ms: int = Field(10_000, ge=100, le=900_000, alias="LOUPE_DB_STATEMENT_TIMEOUT_MS")
    db_lock_timeout_ms: int = Field(3_000, ge=10, le=600_000, alias="LOUPE_DB_LOCK_TIMEOUT_MS")
    db_idle_in_transaction_timeout_ms: int = Field(
        30_000, ge=100, le=3_600_000, alias="LOUPE_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS"
    )
    # RDS Proxy refuses libpq's startup `options`: through it each transaction sets its own settings.
    db_through_proxy: bool = Field(False, alias="LOUPE_DB_THROUGH_PROXY")
    # False: each invocation lets go of its connection, so a database with no proxy can pause when idle.
    db_keep_connections: bool = Field(True, alias="LOUPE_DB_KEEP_CONNECTIONS")
    # How long a connection keeps being tried while the database resumes from a pause (0: once).
    db_wake_wait_seconds: int = Field(0, ge=0, le=120, alias="LOUPE_DB_WAKE_WAIT_SECONDS")

    jwt_secret: SecretStr | None = Field(None, alias="LOUPE_JWT_SECRET")
    jwt_secret_file: Path | None = Field(None, alias="LOUPE_JWT_SECRET_FILE")
    jwt_secret_arn: str | None = Field(None, alias="LOUPE_JWT_SECRET_ARN")
    jwt_secret_parameter: str | None = Field(None, alias="LOUPE_JWT_SECRET_PARAMETER")
    jwt_issuer: str = Field("loupe", min_length=1, alias="LOUPE_JWT_ISSUER")
    jwt_audience: str = Field("loupe-api", min_length=1, alias="LOUPE_JWT_AUDIENCE")
    access_token_ttl_seconds: int = Field(900, ge=60, le=86_400, alias="LOUPE_ACCESS_TOKEN_TTL_SECONDS")
    refresh_token_ttl_seconds: int = Field(
        30 * 86_400, ge=3_600, le=365 * 86_400, alias="LOUPE_REFRESH_TOKEN_TTL_SECONDS"
    )
    # A spent refresh token presented again this soon (two tabs refreshing at once) gets the successor
    # it was rotated to; later, it ends the session. 0 turns the grace off.
    refresh_reuse_grace_seconds: int = Field(30, ge=0, le=300, alias="LOUPE_REFRESH_REUSE_GRACE_SECONDS")

    login_max_failures: int = Field(5, ge=1, le=1_000, alias="LOUPE_LOGIN_MAX_FAILURES")
    login_failure_window_seconds: int = Field(
        900, ge=10, le=86_400, alias="LOUPE_LOGIN_FAILURE_WINDOW_SECONDS"
    )

    argon2_time_cost: int = Field(3, ge=2, le=20, alias="LOUPE_ARGON2_TIME_COST")
    argon2_memory_kib: int = Field(65_536, ge=19_456, le=1_048_576, alias="LOUPE_ARGON2_MEMORY_KIB")
    argon2_parallelism: int = Field(4, ge=1, le=16, alias="LOUPE_ARGON2_PARALLELISM")

    kms_key_id: str | None = Field(None, min_length=1, alias="LOUPE_KMS_KEY_ID")
    allow_private_datasource_hosts: bool = Field(False, alias="LOUPE_ALLOW_PRIVATE_DATASOURCE_HOSTS")
    duckdb_root: Path | None = Field(None, alias="LOUPE_DUCKDB_ROOT")
    schedule_min_interval_seconds: int = Field(
        300, ge=60, le=31 * 86_400, alias="LOUPE_SCHEDULE_MIN_INTERVAL_SECONDS"
    )

    runs_queue_url: str | None = Field(None, min_length=1, alias="LOUPE_RUNS_QUEUE_URL")
    results_bucket: str | None = Field(None, min_length=3, max_length=63, alias="LOUPE_RESULTS_BUCKET")
    max_active_runs_per_user: int = Field(5, ge=1, le=1_000, alias="LOUPE_MAX_ACTIVE_RUNS_PER_USER")
    run_max_rows: int = Field(10_000_000, ge=1, le=100_000_000, alias="LOUPE_RUN_MAX_ROWS")
    run_max_result_bytes: int = Field(
        4 * 1024**3, ge=1_024, le=50 * 1024**3, alias="LOUPE_RUN_MAX_RESULT_BYTES"
    )
    scheduled_runs_queue_url: str | None = Field(None, min_length=1, alias="LOUPE_SCHEDULED_RUNS_QUEUE_URL")
    exports_queue_url: str | None = Field(None, min_length=1, alias="LOUPE_EXPORTS_QUEUE_URL")
    schedule_max_failures: int = Field(5, ge=1, le=100, alias="LOUPE_SCHEDULE_MAX_FAILURES")
    run_cancel_poll_seconds: float = Field(1.0, ge=0.1, le=60, alias="LOUPE_RUN_CANCEL_POLL_SECONDS")
    slow_run_seconds: float = Field(30.0, gt=0, le=86_400, alias="LOUPE_SLOW_RUN_SECONDS")
    alerts_topic_arn: str | None = Field(None, min_length=1, alias="LOUPE_ALERTS_TOPIC_ARN")
    # The bucket S3 destinations write under (each at a prefix of its own); none: no S3 destinations.
    delivery_bucket: str | None = Field(None, min_length=3, max_length=63, alias="LOUPE_DELIVERY_BUCKET")
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=30, alias="LOUPE_WEBHOOK_TIMEOUT_SECONDS")

    # Application rate limits, shared by every instance through PostgreSQL (the edge limits per IP in
    # template.yaml come first); defaults a busy analyst never meets.
    rate_limit_auth_per_ip: int = Field(60, ge=1, le=100_000, alias="LOUPE_RATE_LIMIT_AUTH_PER_IP_PER_MINUTE")
    rate_limit_reset_per_email: int = Field(
        5, ge=1, le=1_000, alias="LOUPE_RATE_LIMIT_RESET_PER_EMAIL_PER_HOUR"
    )
    rate_limit_runs_per_user: int = Field(
        120, ge=1, le=100_000, alias="LOUPE_RATE_LIMIT_RUNS_PER_USER_PER_MINUTE"
    )
    rate_limit_api_key: int = Field(1_200, ge=1, le=1_000_000, alias="LOUPE_RATE_LIMIT_API_KEY_PER_MINUTE")
    rate_limit_user: int = Field(600, ge=1, le=1_000_000, alias="LOUPE_RATE_LIMIT_USER_PER_MINUTE")

    # Mail (password resets): SES in AWS, files under $LOUPE_HOME/outbox locally, memory in tests.
    notifier: Literal["ses", "outbox", "memory"] | None = Field(None, alias="LOUPE_NOTIFIER")
    mail_from: str | None = Field(None, min_length=3, max_length=254, alias="LOUPE_MAIL_FROM")
    outbox_dir: Path | None = Field(None, alias="LOUPE_OUTBOX_DIR")
    password_reset_url: str | None = Field(None, max_length=2048, alias="LOUPE_PASSWORD_RESET_URL")
    invitation_url: str | None = Field(None, max_length=2048, alias="LOUPE_INVITATION_URL")
    # The page that draws a share link's resource; a report's chat messages link to it.
    share_url: str | None = Field(None, max_length=2048, alias="LOUPE_SHARE_URL")
    # A reset request takes at least this long whether or not the email has an account.
    password_reset_min_ms: int = Field(400, ge=50, le=5_000, alias="LOUPE_PASSWORD_RESET_MIN_MS")

    # Optional error tracking: unhandled errors also go to Sentry (sentry-sdk's Lambda integration).
    sentry_dsn: SecretStr | None = Field(None, alias="LOUPE_SENTRY_DSN")

    cors_origins: tuple[str, ...] = Field((), alias="LOUPE_CORS_ORIGINS")
    # At most 3 MB: the event Lambda receives holds the body JSON-escaped (up to twice its size) or
    # base64-encoded (4/3), and must stay under Lambda's 6 MB synchronous payload with its headers.
    max_body_bytes: int = Field(1_048_576, ge=1_024, le=3_000_000, alias="LOUPE_MAX_BODY_BYTES")

    @field_validator("database_url")
    @classmethod
    def _database_url_shape(cls, value: SecretStr) -> SecretStr:
        # Messages never repeat the URL: it carries a password.
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError("DATABASE_URL must use the postgresql:// scheme")
        if not parts.path.strip("/"):
            raise ValueError("DATABASE_URL must name a database")
        if not parts.hostname and "host=" not in parts.query:
            raise ValueError("DATABASE_URL must name a host (or a socket folder as ?host=)")
        return value

    @field_validator(
        "kms_key_id",
        "duckdb_root",
        "runs_queue_url",
        "exports_queue_url",
        "results_bucket",
        "alerts_topic_arn",
        "delivery_bucket",
        "notifier",
        "mail_from",
        "outbox_dir",
        "password_reset_url",
        "invitation_url",
        "share_url",
        "sentry_dsn",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(origin.strip() for origin in value.split(",") if origin.strip())
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if origin == "*":
                continue
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
                raise ValueError(f"LOUPE_CORS_ORIGINS entry {origin!r} is not an origin like https://host")
        return value

    @model_validator(mode="after")
    def _production_rules(self) -> Settings:
        if self.env is Environment.PRODUCTION:
            mode = self.db_sslmode or "require"
            if SSL_MODES_IN_STRENGTH_ORDER.index(mode) < SSL_MODES_IN_STRENGTH_ORDER.index("require"):
                raise ValueError("LOUPE_DB_SSLMODE must be require or stricter in production")
            if "*" in self.cors_origins:
                raise ValueError("LOUPE_CORS_ORIGINS may not be * in production")
        sources = [self.jwt_secret, self.jwt_secret_file, self.jwt_secret_arn, self.jwt_secret_parameter]
        if sum(source is not None for source in sources) > 1:
            raise ValueError(
                "set only one of LOUPE_JWT_SECRET, LOUPE_JWT_SECRET_FILE, LOUPE_JWT_SECRET_ARN, "
                "LOUPE_JWT_SECRET_PARAMETER"
            )
        return self

    @field_validator("password_reset_url", "invitation_url", "share_url")
    @classmethod
    def _link_takes_the_token(cls, value: str | None) -> str | None:
        if value is not None and "{token}" not in value:
            raise ValueError(
                "LOUPE_PASSWORD_RESET_URL, LOUPE_INVITATION_URL and LOUPE_SHARE_URL must contain {token}"
            )
        return value

    @property
    def effective_notifier(self) -> Literal["ses", "outbox", "memory"]:
        if self.notifier is not None:
            return self.notifier
        return "outbox" if self.env in (Environment.DEVELOPMENT, Environment.TEST) else "ses"

    @property
    def effective_sslmode(self) -> SslMode:
        if self.db_sslmode is not None:
            return self.db_sslmode
        return "require" if self.env is Environment.PRODUCTION else "prefer"

    @property
    def signing_keys(self) -> SigningKeys:
        """The JWT keys from whichever source is configured, checked. Secrets Manager and SSM values are
        cached 5 minutes (Powertools Parameters), so a rotated secret takes effect without a deploy."""
        return parse_signing_keys(self._read_signing_secret())

    @property
    def signing_secret(self) -> bytes:
        """The current key: new tokens are signed with it."""
        return self.signing_keys.current

    def _read_signing_secret(self) -> str:
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        if self.jwt_secret_file is not None:
            try:
                return self.jwt_secret_file.read_text(encoding="utf-8").strip()
            except OSError as error:
                raise ConfigurationError(f"cannot read LOUPE_JWT_SECRET_FILE: {error.strerror}") from None
        if self.jwt_secret_arn is not None:
            from aws_lambda_powertools.utilities import parameters

            return str(parameters.get_secret(self.jwt_secret_arn, max_age=300))
        if self.jwt_secret_parameter is not None:
            from aws_lambda_powertools.utilities import parameters

            return str(parameters.get_parameter(self.jwt_secret_parameter, decrypt=True, max_age=300))
        raise ConfigurationError(
            "no JWT signing secret: set LOUPE_JWT_SECRET, LOUPE_JWT_SECRET_FILE, LOUPE_JWT_SECRET_ARN "
            "or LOUPE_JWT_SECRET_PARAMETER"
        )


@dataclass(frozen=True)
class RetiredKey:
    """A previous signing key: tokens it signed before `retired_at` stay valid until they expire."""

    secret: bytes
    retired_at: datetime


@dataclass(frozen=True)
class SigningKeys:
    current: bytes
    previous: tuple[RetiredKey, ...] = ()

    @functools.cached_property
    def by_kid(self) -> dict[str, tuple[bytes, datetime | None]]:
        """Each key by its fingerprint (the JWT `kid`), with its retirement time (None: current)."""
        keys: dict[str, tuple[bytes, datetime | None]] = {
            secret_fingerprint(key.secret): (key.secret, key.retired_at) for key in self.previous
        }
        keys[secret_fingerprint(self.current)] = (self.current, None)
        return keys


@functools.lru_cache(maxsize=8)
def parse_signing_keys(raw: str) -> SigningKeys:
    """A key as plain text, or for rotation a JSON object `{"current": "...", "previous": [{"secret":
    "...", "retired_at": "2026-11-26T08:00:00Z"}]}`. Every key must pass check_signing_secret."""
    if not raw.lstrip().startswith("{"):
        check_signing_secret(raw)
        return SigningKeys(current=raw.encode())
    try:
        document = json.loads(raw)
        current = document["current"]
        previous = [
            (entry["secret"], datetime.fromisoformat(entry["retired_at"]))
            for entry in document.get("previous", [])
        ]
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(
            'the JWT key set must be {"current": ..., "previous": [{"secret": ..., "retired_at": ...}]}'
        ) from None
    for secret in [current, *(secret for secret, _ in previous)]:
        if not isinstance(secret, str):
            raise ConfigurationError("every JWT key must be a string")
        check_signing_secret(secret)
    if any(retired_at.tzinfo is None for _, retired_at in previous):
        raise ConfigurationError("retired_at needs a time zone (e.g. 2026-11-26T08:00:00Z)")
    if current in (secret for secret, _ in previous):
        raise ConfigurationError("the current JWT key is also listed as a previous one")
    return SigningKeys(
        current=current.encode(),
        previous=tuple(RetiredKey(secret.encode(), retired_at) for secret, retired_at in previous),
    )


def check_signing_secret(secret: str) -> None:
    """Refuse secrets that are short, well known, or made of one repeated character."""
    if secret in KNOWN_PLACEHOLDER_SECRETS or secret.lower() in KNOWN_PLACEHOLDER_SECRETS:
        raise ConfigurationError("the JWT signing secret is a known placeholder; generate a random one")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigurationError(f"the JWT signing secret must be at least {MIN_SECRET_BYTES} bytes")
    if len(set(secret)) < 8:
        raise ConfigurationError("the JWT signing secret has too little variety to be random")


def secret_fingerprint(secret: bytes) -> str:
    """A short non-reversible id for a key, safe to log (used as the JWT `kid`)."""
    return hashlib.sha256(secret).hexdigest()[:12]


def database_url_from_secret(secret_arn: str) -> str:
    """Build a URL from a Secrets Manager secret: {"url": ...} or RDS's {username, password, host, ...}."""
    import json
    from urllib.parse import quote

    from aws_lambda_powertools.utilities import parameters

    raw = parameters.get_secret(secret_arn, max_age=300)
    try:
        secret = json.loads(str(raw))
    except ValueError:
        raise ConfigurationError("the database secret is not JSON") from None
    if "url" in secret:
        return str(secret["url"])
    try:
        return (
            f"postgresql://{quote(secret['username'], safe='')}:{quote(secret['password'], safe='')}"
            f"@{secret['host']}:{int(secret.get('port', 5432))}"
            f"/{quote(secret.get('dbname', 'loupe'), safe='')}"
        )
    except (KeyError, TypeError, ValueError):
        raise ConfigurationError("the database secret lacks username, password or host") from None


def environment() -> dict[str, str]:
    """The process environment, with DATABASE_URL filled in from Secrets Manager when so configured;
    LOUPE_DATABASE_HOST replaces the secret's host (the stack's RDS Proxy in front of its cluster)."""
    values = dict(os.environ)
    if not values.get("DATABASE_URL") and values.get("LOUPE_DATABASE_SECRET_ARN"):
        url = database_url_from_secret(values["LOUPE_DATABASE_SECRET_ARN"])
        host = values.get("LOUPE_DATABASE_HOST", "").strip()
        if host:
            parts = urlsplit(url)
            credentials = parts.netloc.rpartition("@")[0]
            port = f":{parts.port}" if parts.port else ""
            url = urlunsplit(parts._replace(netloc=f"{credentials}@{host}{port}"))
        values["DATABASE_URL"] = url
    return values


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings; raises ConfigurationError with a readable message if invalid."""
    from pydantic import ValidationError

    try:
        settings = Settings.model_validate(environment())
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc']) or 'settings'}: {issue['msg']}"
            for issue in error.errors(include_input=False)
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None
    # The signing keys are checked by the API functions at their cold start (loupe.api.resolver); the
    # background functions (runner, scheduler, janitor...) never need them, nor the right to read them.
    return settings
