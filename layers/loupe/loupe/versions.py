"""Resource versions: a token that changes whenever a resource does, and the check a conditional write
makes."""

from __future__ import annotations

import hashlib
from datetime import datetime
from uuid import UUID

from loupe.errors import VersionMismatch

# The versions a conditional write accepts; None when the caller set no condition.
ExpectedVersions = frozenset[str] | None


def version_of(resource_id: UUID, changed_at: datetime) -> str:
    """Changes whenever the row's change time does (the database maintains it)."""
    return version_of_content(f"{resource_id}:{changed_at.isoformat()}")


def version_of_content(content: str) -> str:
    """For what has no change time of its own: changes whenever its serialized content does."""
    return hashlib.sha256(content.encode()).hexdigest()[:32]


def require_version(expected: ExpectedVersions, current: str) -> None:
    """Refuse a write based on a stale read: unless no version was expected, the current one must be."""
    if expected is not None and current not in expected:
        raise VersionMismatch()
