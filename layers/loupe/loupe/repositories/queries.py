"""The queries table."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from loupe.db import execute, fetch_all
from loupe.repositories.listing import Collection

QUERIES = Collection(
    table="queries",
    columns=(
        "id",
        "name",
        "description",
        "datasource_id",
        "sql",
        "parameters",
        "revision",
        "tags",
        "created_by",
        "created_at",
        "updated_at",
    ),
    sortable=frozenset({"name", "created_at", "updated_at"}),
    writable=frozenset(
        {"name", "description", "datasource_id", "sql", "parameters", "revision", "tags", "created_by"}
    ),
    searchable=("name", "description"),
    filters=frozenset({"datasource_id", "created_by"}),
    json_columns=frozenset({"parameters"}),
)


def using_snippet(organization_id: UUID, snippet_name: str) -> list[dict[str, Any]]:
    """The id and name of each of the organization's queries whose SQL includes the snippet, by name."""
    return fetch_all(
        "SELECT id, name FROM queries WHERE organization_id = %s AND sql ~ %s ORDER BY name, id",
        (organization_id, rf"\{{\{{>\s*{snippet_name}\s*\}}\}}"),
    )


def fed_by(organization_id: UUID, query_ids: list[UUID]) -> list[dict[str, Any]]:
    """The id and name of each other query of the organization with a dropdown fed by one of `query_ids`."""
    return fetch_all(
        "SELECT id, name FROM queries WHERE organization_id = %s AND NOT (id = ANY(%s)) AND EXISTS ("
        " SELECT FROM jsonb_array_elements(parameters) AS parameter"
        " WHERE parameter -> 'options_query' ->> 'query_id' = ANY(%s::text[])) ORDER BY name, id",
        (organization_id, query_ids, [str(query_id) for query_id in query_ids]),
    )


def detach_options(organization_id: UUID, query_ids: list[UUID]) -> int:
    """Drop the options query from each dropdown `query_ids` fed: the parameter stays, free (a new revision
    of each query changed)."""
    return execute(
        "UPDATE queries SET revision = revision + 1, parameters = (SELECT jsonb_agg(CASE"
        "   WHEN parameter -> 'options_query' ->> 'query_id' = ANY(%(ids)s::text[])"
        "   THEN jsonb_set(parameter, '{options_query}', 'null') ELSE parameter END ORDER BY position)"
        "   FROM jsonb_array_elements(parameters) WITH ORDINALITY AS listed(parameter, position))"
        " WHERE organization_id = %(organization_id)s AND EXISTS ("
        "  SELECT FROM jsonb_array_elements(parameters) AS parameter"
        "  WHERE parameter -> 'options_query' ->> 'query_id' = ANY(%(ids)s::text[]))",
        {"organization_id": organization_id, "ids": [str(query_id) for query_id in query_ids]},
    )
