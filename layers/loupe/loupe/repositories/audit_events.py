"""Reading the audit trail (services/audit.py writes it)."""

from __future__ import annotations

from loupe.repositories.listing import Collection

AUDIT_EVENTS = Collection(
    table="audit_events",
    columns=("id", "actor_id", "action", "target_type", "target_id", "ip", "created_at", "metadata"),
    sortable=frozenset({"created_at", "action"}),
    default_sort="-created_at",
    searchable=("action",),
    tagged=False,
    filters=frozenset({"action", "actor_id"}),
)
