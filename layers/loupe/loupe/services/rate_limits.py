"""Application rate limits (LOUPE_RATE_LIMIT_*): each counts in the request's transaction and answers
429 with Retry-After once its window is full. The edge (API Gateway throttling, the WAF's per-IP rule)
limits everything else."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from loupe import db
from loupe.config import Settings, get_settings
from loupe.errors import RateLimited
from loupe.repositories import rate_limits

MINUTE = 60
HOUR = 3_600


@dataclass(frozen=True)
class Limit:
    name: str
    per_window: int
    window_seconds: int
    message: str


def _limit(name: str, settings: Settings) -> Limit:
    if name == "auth-ip":
        return Limit(
            name, settings.rate_limit_auth_per_ip, MINUTE, "Too many sign-in requests from your address"
        )
    if name == "reset-email":
        return Limit(name, settings.rate_limit_reset_per_email, HOUR, "Too many password reset requests")
    if name == "guest":
        return Limit(name, settings.rate_limit_user, MINUTE, "Too many requests with this embed token")
    if name == "runs-guest-resource":
        return Limit(
            name,
            settings.rate_limit_runs_per_user * 10,
            MINUTE,
            "Too many runs started by this dashboard's guests",
        )
    if name in ("runs-user", "runs-api-key", "runs-guest"):
        return Limit(
            name, settings.rate_limit_runs_per_user, MINUTE, "Too many runs started in the last minute"
        )
    if name == "user":
        return Limit(name, settings.rate_limit_user, MINUTE, "Too many requests from your account")
    return Limit(name, settings.rate_limit_api_key, MINUTE, "Too many requests with this API key")


def window(name: str, key: str) -> rate_limits.RateWindow:
    """The named limit's window for `key`, for a repository to count a request in."""
    limit = _limit(name, get_settings())
    return rate_limits.RateWindow(f"{name}:{key}", limit.window_seconds, limit.per_window)


def enforce(name: str, counted: bool, oldest: datetime | None) -> None:
    """RateLimited, with the seconds until the window has room, for a request that was not counted."""
    if counted:
        return
    limit = _limit(name, get_settings())
    frees_at = (oldest or datetime.now(UTC)) + timedelta(seconds=limit.window_seconds)
    wait = math.ceil((frees_at - datetime.now(UTC)).total_seconds())
    raise RateLimited(limit.message, retry_after_seconds=wait)


def check(name: str, key: str) -> None:
    """Count a request against the named limit for `key`; RateLimited when over it. A refused request
    is not counted, so Retry-After is exact. Counted in the caller's transaction: see count_auth_request
    for a count that stands whatever the request's outcome."""
    with db.as_system():
        counted, oldest = rate_limits.hit(window(name, key))
    enforce(name, counted, oldest)


def count_auth_request(method: str, ip: str | None) -> None:
    """The auth function's gate, run in a transaction of its own before the request's: every POST to
    auth/* counts against its address, whether it then succeeds or fails (a wrong token, a taken
    email), so the limit holds against guessing."""
    if method == "POST" and ip:
        with db.transaction():
            check("auth-ip", ip)


def reset_email(email: str) -> None:
    check("reset-email", email)


def runs_user(user_id: UUID) -> None:
    check("runs-user", str(user_id))


def runs_api_key(key_id: UUID) -> None:
    """Run creation per API key, counted as run creation per user is."""
    check("runs-api-key", str(key_id))


def runs_guest(token_id: UUID, resource_id: UUID | None) -> None:
    """Run creation per embed token or share link, counted as run creation per user is, and by every
    guest of the same dashboard together (at ten times that)."""
    check("runs-guest", str(token_id))
    if resource_id is not None:
        check("runs-guest-resource", str(resource_id))


def api_key(key_id: UUID) -> None:
    check("api-key", str(key_id))
