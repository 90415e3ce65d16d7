"""The canvases table."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from loupe.db import execute, fetch_all
from loupe.repositories.listing import Collection

CANVASES = Collection(
    table="canvases",
    columns=(
        "id",
        "name",
        "time_preset",
        "time_from",
        "time_to",
        "nodes",
        "edges",
        "tags",
        "created_by",
        "created_at",
        "updated_at",
    ),
    sortable=frozenset({"name", "time_preset", "created_at", "updated_at"}),
    writable=frozenset(
        {"name", "time_preset", "time_from", "time_to", "nodes", "edges", "tags", "created_by"}
    ),
    json_columns=frozenset({"nodes", "edges"}),
)


def referencing(organization_id: UUID, ref_ids: list[UUID]) -> list[dict[str, Any]]:
    """The id and name of each canvas with a node showing one of the queries or visualizations, by name."""
    return fetch_all(
        "SELECT id, name FROM canvases WHERE organization_id = %s AND EXISTS ("
        " SELECT FROM jsonb_array_elements(nodes) AS node WHERE node ->> 'ref_id' = ANY(%s::text[]))"
        " ORDER BY name, id",
        (organization_id, [str(ref_id) for ref_id in ref_ids]),
    )


def detach(organization_id: UUID, ref_ids: list[UUID]) -> int:
    """Remove the nodes showing any of the queries or visualizations, and the edges that touch them, from
    every canvas of the organization; the number of canvases changed."""
    return execute(
        "WITH gone AS ("
        "  SELECT canvases.id, array_agg(node ->> 'id') AS node_ids FROM canvases,"
        "  jsonb_array_elements(canvases.nodes) AS node"
        "  WHERE canvases.organization_id = %(organization_id)s AND node ->> 'ref_id' = ANY(%(refs)s::text[])"
        "  GROUP BY canvases.id)"
        " UPDATE canvases SET"
        " nodes = COALESCE((SELECT jsonb_agg(node ORDER BY position)"
        "   FROM jsonb_array_elements(canvases.nodes) WITH ORDINALITY AS kept(node, position)"
        "   WHERE NOT (node ->> 'id' = ANY(gone.node_ids))), '[]'),"
        " edges = COALESCE((SELECT jsonb_agg(edge ORDER BY position)"
        "   FROM jsonb_array_elements(canvases.edges) WITH ORDINALITY AS kept(edge, position)"
        "   WHERE NOT (edge ->> 'source' = ANY(gone.node_ids)"
        "   OR edge ->> 'target' = ANY(gone.node_ids))), '[]')"
        " FROM gone WHERE canvases.id = gone.id",
        {"organization_id": organization_id, "refs": [str(ref_id) for ref_id in ref_ids]},
    )
