"""Access tokens (short-lived JWTs, HS256 pinned) and opaque secrets stored only as SHA-256 digests."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import jwt

from loupe.config import Settings, secret_fingerprint

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("iss", "aud", "sub", "sid", "org", "iat", "exp")
REFRESH_TOKEN_PREFIX = "lrt_"  # noqa: S105  # a label, not a secret
API_KEY_PREFIX = "lk_"


class InvalidToken(Exception):
    """The token is malformed, tampered with, expired, or not for this service."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: UUID
    session_id: UUID
    organization_id: UUID


def issue_access_token(settings: Settings, claims: AccessClaims) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(claims.user_id),
        "sid": str(claims.session_id),
        "org": str(claims.organization_id),
        "iat": now,
        "exp": now + settings.access_token_ttl_seconds,
    }
    headers = {"kid": secret_fingerprint(settings.signing_secret)}
    return jwt.encode(payload, settings.signing_secret, algorithm=ALGORITHM, headers=headers)


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    try:
        payload = jwt.decode(
            token,
            settings.signing_secret,
            algorithms=[ALGORITHM],  # pinned: "none" and algorithm confusion are refused
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": list(REQUIRED_CLAIMS)},
            leeway=5,
        )
        return AccessClaims(
            user_id=UUID(payload["sub"]),
            session_id=UUID(payload["sid"]),
            organization_id=UUID(payload["org"]),
        )
    except (jwt.PyJWTError, ValueError, TypeError, AttributeError) as error:
        raise InvalidToken(type(error).__name__) from None


def new_secret_token(prefix: str) -> str:
    """A random bearer secret (256 bits) with a short prefix saying what it is."""
    return prefix + secrets.token_urlsafe(32)


def digest(token: str) -> bytes:
    """What the database stores instead of a bearer secret: its SHA-256 (the secret has full entropy)."""
    return hashlib.sha256(token.encode()).digest()
