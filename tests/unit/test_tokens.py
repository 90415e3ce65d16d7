"""Access-token verification, including what is remembered between calls and what never is."""

from __future__ import annotations

import secrets
import time
import uuid

import jwt
import pytest

from loupe.config import Settings
from loupe.security import tokens

SETTINGS = Settings.model_validate(
    {"DATABASE_URL": "postgresql://u:p@h/db", "LOUPE_JWT_SECRET": secrets.token_urlsafe(48)}
)
CLAIMS = tokens.AccessClaims(user_id=uuid.uuid4(), session_id=uuid.uuid4(), organization_id=uuid.uuid4())


def test_round_trip() -> None:
    token = tokens.issue_access_token(SETTINGS, CLAIMS)
    assert tokens.decode_access_token(SETTINGS, token) == CLAIMS
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    token = tokens.issue_access_token(SETTINGS, CLAIMS)
    assert tokens.decode_access_token(SETTINGS, token) == CLAIMS
    later = time.time() + SETTINGS.access_token_ttl_seconds + tokens.LEEWAY_SECONDS
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    with pytest.raises(tokens.InvalidToken):
        tokens.decode_access_token(SETTINGS, token)


def test_a_failed_token_is_not_remembered_as_valid() -> None:
    token = tokens.issue_access_token(SETTINGS, CLAIMS)
    other = SETTINGS.model_copy(update={"jwt_audience": "another-api"})
    for _ in range(2):
        with pytest.raises(tokens.InvalidToken):
            tokens.decode_access_token(other, token)


def test_another_key_does_not_reuse_the_verdict() -> None:
    token = tokens.issue_access_token(SETTINGS, CLAIMS)
    assert tokens.decode_access_token(SETTINGS, token) == CLAIMS
    rotated = Settings.model_validate(
        {"DATABASE_URL": "postgresql://u:p@h/db", "LOUPE_JWT_SECRET": secrets.token_urlsafe(48)}
    )
    with pytest.raises(tokens.InvalidToken):
        tokens.decode_access_token(rotated, token)


def test_asymmetric_looking_secrets_are_still_refused_as_hmac_keys() -> None:
    pem = b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"
    with pytest.raises(jwt.InvalidKeyError):
        jwt.encode({"a": 1}, pem, algorithm="HS256")


def test_a_refresh_tokens_successor_is_keyed_and_fixed_by_its_predecessor() -> None:
    key, other_key = secrets.token_bytes(32), secrets.token_bytes(32)
    predecessor = tokens.new_secret_token(tokens.REFRESH_TOKEN_PREFIX)
    successor = tokens.refresh_successor(key, predecessor)
    assert successor == tokens.refresh_successor(key, predecessor)
    assert successor.startswith(tokens.REFRESH_TOKEN_PREFIX)
    assert len(successor) == len(predecessor)  # 256 bits, like a random one
    assert successor != tokens.refresh_successor(other_key, predecessor)
    assert successor != tokens.refresh_successor(key, predecessor + "x")
    assert tokens.refresh_successor(key, successor) not in (predecessor, successor)
