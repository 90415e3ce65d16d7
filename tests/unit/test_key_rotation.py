"""JWT signing-key rotation: a key set with a current key and retired ones; tokens of a retired key stay
valid until they expire, and a retired key cannot sign new ones; a rotated Secrets Manager secret takes
effect without a restart."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import jwt
import pytest
from moto import mock_aws

from loupe.config import ConfigurationError, Settings, parse_signing_keys, secret_fingerprint
from loupe.security import tokens

OLD, NEW = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
CLAIMS = tokens.AccessClaims(user_id=uuid.uuid4(), session_id=uuid.uuid4(), organization_id=uuid.uuid4())


def settings_with(secret: str) -> Settings:
    return Settings.model_validate({"DATABASE_URL": "postgresql://u:p@h/db", "LOUPE_JWT_SECRET": secret})


def key_set(current: str, *previous: tuple[str, datetime]) -> str:
    return json.dumps(
        {
            "current": current,
            "previous": [
                {"secret": secret, "retired_at": retired.isoformat()} for secret, retired in previous
            ],
        }
    )


def forged(secret: str, issued_at: float, kid: str | None) -> str:
    settings = settings_with(NEW)
    payload: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(CLAIMS.user_id),
        "sid": str(CLAIMS.session_id),
        "org": str(CLAIMS.organization_id),
        "iat": int(issued_at),
        "exp": int(issued_at) + settings.access_token_ttl_seconds,
    }
    return jwt.encode(payload, secret, algorithm="HS256", headers={"kid": kid} if kid else None)


def test_tokens_of_the_previous_key_live_out_their_time() -> None:
    old_token = tokens.issue_access_token(settings_with(OLD), CLAIMS)
    rotated = settings_with(key_set(NEW, (OLD, datetime.now(UTC) + timedelta(seconds=2))))

    assert tokens.decode_access_token(rotated, old_token) == CLAIMS
    new_token = tokens.issue_access_token(rotated, CLAIMS)
    assert jwt.get_unverified_header(new_token)["kid"] == secret_fingerprint(NEW.encode())
    assert tokens.decode_access_token(rotated, new_token) == CLAIMS
    # Without the old key in the set, its tokens are refused at once.
    with pytest.raises(tokens.InvalidToken):
        tokens.decode_access_token(settings_with(NEW), old_token)


def test_a_retired_key_cannot_sign_new_tokens_and_its_old_ones_expire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    retired_at = datetime.now(UTC) - timedelta(minutes=1)
    rotated = settings_with(key_set(NEW, (OLD, retired_at)))
    old_kid = secret_fingerprint(OLD.encode())

    before = forged(OLD, retired_at.timestamp() - 30, old_kid)
    after = forged(OLD, retired_at.timestamp() + 1, old_kid)

    assert tokens.decode_access_token(rotated, before) == CLAIMS
    with pytest.raises(tokens.InvalidToken, match="RetiredKey"):
        tokens.decode_access_token(rotated, after)
    later = time.time() + rotated.access_token_ttl_seconds + tokens.LEEWAY_SECONDS
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    with pytest.raises(tokens.InvalidToken):
        tokens.decode_access_token(rotated, before)


def test_the_kid_picks_the_key() -> None:
    rotated = settings_with(key_set(NEW, (OLD, datetime.now(UTC) + timedelta(minutes=5))))
    now = time.time()
    assert tokens.decode_access_token(rotated, forged(NEW, now, None)) == CLAIMS, "no kid: the current key"
    for token in (
        forged(OLD, now, None),  # the old key without its kid
        forged(NEW, now, secret_fingerprint(OLD.encode())),  # a kid naming another key
        forged(NEW, now, "unknown"),
        forged(secrets.token_urlsafe(48), now, "unknown"),
    ):
        with pytest.raises(tokens.InvalidToken):
            tokens.decode_access_token(rotated, token)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"current": "changeme"}', "placeholder"),
        (key_set(NEW, ("changeme", datetime.now(UTC))), "placeholder"),
        (key_set(NEW, ("short", datetime.now(UTC))), "at least 32 bytes"),
        (key_set(NEW, (NEW, datetime.now(UTC))), "also listed"),
        (
            json.dumps({"current": NEW, "previous": [{"secret": OLD, "retired_at": "2026-11-26T08:00:00"}]}),
            "time zone",
        ),
        (json.dumps({"current": NEW, "previous": [{"secret": OLD}]}), "key set must be"),
        (json.dumps({"previous": []}), "key set must be"),
        (json.dumps({"current": 12345}), "must be a string"),
        ("{not json", "key set must be"),
    ],
)
def test_bad_key_sets_are_refused(raw: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_signing_keys(raw)


def test_a_rotated_secret_takes_effect_without_a_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_lambda_powertools.utilities import parameters

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("secretsmanager")
        arn = client.create_secret(Name="jwt-keys", SecretString=OLD)["ARN"]
        settings = Settings.model_validate(
            {"DATABASE_URL": "postgresql://u:p@h/db", "LOUPE_JWT_SECRET_ARN": arn}
        )
        old_token = tokens.issue_access_token(settings, CLAIMS)

        client.put_secret_value(SecretId=arn, SecretString=key_set(NEW, (OLD, datetime.now(UTC))))
        parameters.clear_caches()  # what the 5-minute cache expiry does

        assert settings.signing_keys.current == NEW.encode()
        assert tokens.decode_access_token(settings, old_token) == CLAIMS
        new_token = tokens.issue_access_token(settings, CLAIMS)
        assert jwt.get_unverified_header(new_token)["kid"] == secret_fingerprint(NEW.encode())
        parameters.clear_caches()


def test_no_token_outlives_an_access_token_and_a_retired_key_dies_with_its_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    retired_at = datetime.now(UTC) - timedelta(seconds=5)
    rotated = settings_with(key_set(NEW, (OLD, retired_at)))
    old_kid = secret_fingerprint(OLD.encode())
    # Backdated with a far expiry: whoever holds the old key chooses both.
    payload = jwt.decode(
        forged(OLD, retired_at.timestamp() - 60, old_kid), options={"verify_signature": False}
    )
    payload["exp"] = payload["iat"] + 30 * 86_400
    long_lived = jwt.encode(payload, OLD, algorithm="HS256", headers={"kid": old_kid})
    with pytest.raises(tokens.InvalidToken, match="LifetimeTooLong"):
        tokens.decode_access_token(rotated, long_lived)
    # An ordinary old-key token from before the retirement is refused once no such token can still live.
    before = forged(OLD, retired_at.timestamp() - 60, old_kid)
    assert tokens.decode_access_token(rotated, before) == CLAIMS
    later = retired_at.timestamp() + rotated.access_token_ttl_seconds + tokens.LEEWAY_SECONDS + 1
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    with pytest.raises(tokens.InvalidToken):
        tokens.decode_access_token(rotated, before)
