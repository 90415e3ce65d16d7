"""Who is calling: the organization roles and the authenticated principal services authorize."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Literal
from uuid import UUID


class Role(IntEnum):
    """Organization roles; each includes the ones below it (admin ⊃ editor ⊃ viewer)."""

    VIEWER = 1
    EDITOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, name: str) -> Role:
        return cls[name.upper()]

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user through a session, an API key acting with its own role, or a guest through
    an embed token (read-only, and only through the /embed/ routes); and from which address, which the
    audit trail records."""

    organization_id: UUID
    role: Role
    user_id: UUID | None = None
    session_id: UUID | None = None
    api_key_id: UUID | None = None
    client_ip: str | None = None
    # A guest's embed token or share link (its row), which kind, and the dashboard it shows.
    guest_token_id: UUID | None = None
    guest_kind: Literal["embed", "share"] | None = None
    guest_resource_id: UUID | None = None


RoleName = Literal["admin", "editor", "viewer"]
