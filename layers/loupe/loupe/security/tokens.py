"""Access tokens (short-lived JWTs, HS256 pinned) and opaque secrets stored only as SHA-256 digests."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from loupe.config import Settings, SigningKeys, secret_fingerprint

# PyJWT imports cryptography's X.509 and elliptic-curve modules, when it finds them, for algorithms Loupe
# never accepts: tens of milliseconds of cold start. Hidden while it loads, it registers only HMAC.
_HIDDEN = [
    name
    for name in ("cryptography.x509", "cryptography.hazmat.primitives.asymmetric.ec")
    if name not in sys.modules
]
sys.modules.update(dict.fromkeys(_HIDDEN))  # type: ignore[arg-type]  # None: "cannot be imported"
try:
    import jwt
    from jwt.algorithms import HMACAlgorithm
finally:
    for _name in _HIDDEN:
        del sys.modules[_name]

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("iss", "aud", "sub", "sid", "org", "iat", "exp")
REFRESH_TOKEN_PREFIX = "lrt_"  # noqa: S105  # a label, not a secret
API_KEY_PREFIX = "lk_"
PASSWORD_RESET_PREFIX = "lpr_"  # noqa: S105  # a label, not a secret
SHARE_LINK_PREFIX = "lsh_"
WEBHOOK_SECRET_PREFIX = "lwhs_"  # noqa: S105  # a label, not a secret


class _CheckedKeyHMAC(HMACAlgorithm):
    """HMAC whose key check runs once per key instead of once per token.

    PyJWT re-checks the secret on every decode (refusing PEM, DER or JWK-shaped secrets, which would
    open algorithm confusion); our key is fixed per process and was checked at cold start, so the
    verdict is remembered. Signing and verification are PyJWT's own.
    """

    @functools.lru_cache(maxsize=8)  # noqa: B019  # one instance per process; keys are a handful of bytes
    def prepare_key(self, key: str | bytes) -> bytes:
        return super().prepare_key(key)


# The process-wide PyJWT registry is ours to configure: only HS256 is ever accepted (ALGORITHM below).
jwt.unregister_algorithm(ALGORITHM)
jwt.register_algorithm(ALGORITHM, _CheckedKeyHMAC(HMACAlgorithm.SHA256))


class InvalidToken(Exception):
    """The token is malformed, tampered with, expired, or not for this service."""


class RetiredKey(ValueError):
    """The token was signed by a previous key after that key was retired."""


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
    current = settings.signing_keys.current
    headers = {"kid": secret_fingerprint(current)}
    return jwt.encode(payload, current, algorithm=ALGORITHM, headers=headers)


LEEWAY_SECONDS = 5


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    """Verify signature, algorithm, issuer, audience, required claims and expiry; return the ids.

    The key is the one the token's `kid` names (the current key when it names none): a previous key,
    kept while its tokens live out their time, verifies only tokens issued before it was retired, and
    nothing once the longest such token has expired. No token may live longer than an access token
    does (`iat` and `exp` are the signer's to choose: a leaked retired key must not mint backdated,
    long-lived ones). A token's verification is remembered (the same bytes verify the same way), but
    its times are checked on every call; revocation is checked by the caller, every time.
    """
    try:
        claims, issued_at, expires_at, retired_at = _verified(
            token, settings.signing_keys, settings.jwt_audience, settings.jwt_issuer
        )
    except (jwt.PyJWTError, ValueError, TypeError, AttributeError, KeyError) as error:
        raise InvalidToken(type(error).__name__) from None
    now = time.time()
    longest = settings.access_token_ttl_seconds + LEEWAY_SECONDS
    if expires_at - issued_at > longest:
        raise InvalidToken("LifetimeTooLong")
    if retired_at is not None and now > retired_at.timestamp() + longest:
        raise InvalidToken("RetiredKey")
    if expires_at + LEEWAY_SECONDS <= now:
        raise InvalidToken("ExpiredSignatureError")
    return claims


@functools.lru_cache(maxsize=1024)
def _verified(
    token: str, keys: SigningKeys, audience: str, issuer: str
) -> tuple[AccessClaims, int, int, datetime | None]:
    """The token's claims, issue and expiry times, and its key's retirement, once that key (by `kid`)
    verifies it. Failures raise, and lru_cache does not keep exceptions: only verified tokens are
    remembered."""
    kid = jwt.get_unverified_header(token).get("kid")
    secret, retired_at = keys.by_kid[kid] if kid is not None else (keys.current, None)
    payload = jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],  # pinned: "none" and algorithm confusion are refused
        audience=audience,
        issuer=issuer,
        options={"require": list(REQUIRED_CLAIMS)},
        leeway=LEEWAY_SECONDS,
    )
    if retired_at is not None and int(payload["iat"]) >= retired_at.timestamp():
        raise RetiredKey(kid)
    claims = AccessClaims(
        user_id=UUID(payload["sub"]),
        session_id=UUID(payload["sid"]),
        organization_id=UUID(payload["org"]),
    )
    return claims, int(payload["iat"]), int(payload["exp"]), retired_at


def new_secret_token(prefix: str) -> str:
    """A random bearer secret (256 bits) with a short prefix saying what it is."""
    return prefix + secrets.token_urlsafe(32)


def refresh_successor(key: bytes, predecessor: str) -> str:
    """The refresh token a session's `predecessor` rotates to: an HMAC of it under a server key, so the
    same token presented twice yields the same successor without the successor being stored."""
    mac = hmac.new(key, b"loupe refresh successor\x00" + predecessor.encode(), hashlib.sha256).digest()
    return REFRESH_TOKEN_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def digest(token: str) -> bytes:
    """What the database stores instead of a bearer secret: its SHA-256 (the secret has full entropy)."""
    return hashlib.sha256(token.encode()).digest()


# Guest (embed) tokens: signed like access tokens, for an audience of their own, so neither is ever
# taken for the other. They name an embed token's row (`jti`), which is checked on every request.
GUEST_AUDIENCE_SUFFIX = ":embed"
GUEST_REQUIRED_CLAIMS = ("iss", "aud", "jti", "org", "iat", "exp")
MAX_GUEST_SECONDS = 86_400


@dataclass(frozen=True)
class GuestClaims:
    token_id: UUID
    organization_id: UUID


def issue_guest_token(settings: Settings, claims: GuestClaims, expires_at: int) -> str:
    payload: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience + GUEST_AUDIENCE_SUFFIX,
        "jti": str(claims.token_id),
        "org": str(claims.organization_id),
        "iat": int(time.time()),
        "exp": expires_at,
    }
    current = settings.signing_keys.current
    return jwt.encode(payload, current, algorithm=ALGORITHM, headers={"kid": secret_fingerprint(current)})


def decode_guest_token(settings: Settings, token: str) -> GuestClaims:
    """Verify a guest token as `decode_access_token` verifies an access token (key by `kid`, a retired
    key only for tokens issued before it retired), with guest tokens' longest lifetime."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        secret, retired_at = (
            settings.signing_keys.by_kid[kid] if kid is not None else (settings.signing_keys.current, None)
        )
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience + GUEST_AUDIENCE_SUFFIX,
            issuer=settings.jwt_issuer,
            options={"require": list(GUEST_REQUIRED_CLAIMS)},
            leeway=LEEWAY_SECONDS,
        )
        issued_at, expires_at = int(payload["iat"]), int(payload["exp"])
        claims = GuestClaims(UUID(payload["jti"]), UUID(payload["org"]))
    except (jwt.PyJWTError, ValueError, TypeError, AttributeError, KeyError) as error:
        raise InvalidToken(type(error).__name__) from None
    longest = MAX_GUEST_SECONDS + LEEWAY_SECONDS
    if expires_at - issued_at > longest:
        raise InvalidToken("LifetimeTooLong")
    if retired_at is not None and (
        issued_at >= retired_at.timestamp() or time.time() > retired_at.timestamp() + longest
    ):
        raise InvalidToken("RetiredKey")
    return claims
