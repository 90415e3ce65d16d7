"""ETags for single resources and the If-None-Match / If-Match checks of API.md."""

from __future__ import annotations

import hashlib
from datetime import datetime
from uuid import UUID

from loupe.errors import PreconditionFailed


def etag_for(resource_id: UUID, updated_at: datetime) -> str:
    """A strong validator that changes whenever the row's updated_at does (the database maintains it)."""
    digest = hashlib.sha256(f"{resource_id}:{updated_at.isoformat()}".encode()).hexdigest()[:32]
    return f'"{digest}"'


def _listed(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def not_modified(if_none_match: str | None, current: str) -> bool:
    """True when the client's copy is current (weak comparison, as RFC 9110 asks for GET)."""
    if not if_none_match:
        return False
    tags = _listed(if_none_match)
    return "*" in tags or current in tags


def require_match(if_match: str | None, current: str) -> None:
    """Refuse a write based on a stale read: 412 unless If-Match is absent, `*`, or the current ETag."""
    if if_match is None:
        return
    tags = {tag.strip() for tag in if_match.split(",") if tag.strip()}
    if "*" not in tags and current not in tags:
        raise PreconditionFailed()
