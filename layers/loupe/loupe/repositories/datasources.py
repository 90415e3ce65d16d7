"""The datasources table: what clients see of a datasource, and its sealed credentials."""

from __future__ import annotations

from loupe.repositories.listing import Collection

DATASOURCES = Collection(
    table="datasources",
    columns=(
        "id",
        "organization_id",
        "name",
        "type",
        "connection_display",
        "options",
        "allowed_functions",
        "accepted_risks",
        "login_audit_status",
        "login_findings",
        "login_inspected_at",
        "configured",
        "created_at",
        "updated_at",
    ),
    sortable=frozenset({"name", "type", "created_at", "updated_at"}),
    writable=frozenset(
        {
            "name",
            "type",
            "connection_ciphertext",
            "connection_display",
            "options",
            "created_by",
            "allowed_functions",
            "accepted_risks",
            "login_audit_status",
            "login_findings",
            "login_inspected_at",
        }
    ),
    tagged=False,
    filters=frozenset({"type"}),
    json_columns=frozenset({"options", "login_findings"}),
)


# The encrypted credentials, read only where a connection is about to be opened.
CREDENTIALS = Collection(
    table="datasources",
    columns=("id", "type", "connection_ciphertext", "options", "accepted_risks", "login_audit_status"),
    sortable=frozenset(),
    tagged=False,
)
