"""The destinations table, and which addresses belong to an organization's members."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from loupe.db import fetch_all
from loupe.repositories.listing import Collection

DESTINATIONS = Collection(
    table="destinations",
    columns=(
        "id",
        "name",
        "type",
        "recipients",
        "prefix",
        "url_display",
        "secrets_ciphertext",
        "previous_secret_until",
        "created_by",
        "created_at",
        "updated_at",
    ),
    sortable=frozenset({"name", "created_at", "updated_at"}),
    writable=frozenset(
        {
            "name",
            "type",
            "recipients",
            "prefix",
            "url_display",
            "secrets_ciphertext",
            "previous_secret_until",
            "created_by",
        }
    ),
    json_columns=frozenset({"recipients"}),
    default_sort="name",
    tagged=False,
    filters=frozenset({"type"}),
)


def member_addresses(organization_id: UUID, addresses: Sequence[str]) -> set[str]:
    """Which of the (lower-case) addresses are the organization's members'."""
    rows = fetch_all(
        "SELECT lower(u.email) AS email FROM memberships m JOIN users u ON u.id = m.user_id"
        " WHERE m.organization_id = %s AND lower(u.email) = ANY(%s)",
        (organization_id, list(addresses)),
    )
    return {row["email"] for row in rows}
