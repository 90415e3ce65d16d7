"""Insert, read, update and delete for any tenant table, always scoped by organization.

Table and column names come from the resource's Collection (code, never input); values are bound.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from loupe.db import execute, fetch_all, fetch_one
from loupe.repositories.listing import Collection


def _columns(collection: Collection) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(column) for column in collection.columns)


def _checked(collection: Collection, values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - collection.writable
    if unknown:
        raise ValueError(f"{collection.table} does not accept {sorted(unknown)}")
    return {
        name: Jsonb(value) if name in collection.json_columns and not isinstance(value, Jsonb) else value
        for name, value in values.items()
    }


def insert(collection: Collection, organization_id: UUID, values: dict[str, Any]) -> dict[str, Any]:
    checked = {"organization_id": organization_id, **_checked(collection, values)}
    row = fetch_one(
        sql.SQL("INSERT INTO {table} ({names}) VALUES ({values}) RETURNING {columns}").format(
            table=sql.Identifier(collection.table),
            names=sql.SQL(", ").join(sql.Identifier(name) for name in checked),
            values=sql.SQL(", ").join(sql.Placeholder(name) for name in checked),
            columns=_columns(collection),
        ),
        checked,
    )
    assert row is not None
    return row


def get(
    collection: Collection, organization_id: UUID, resource_id: UUID, *, for_update: bool = False
) -> dict[str, Any] | None:
    return fetch_one(
        sql.SQL("SELECT {columns} FROM {table} WHERE organization_id = %s AND id = %s{lock}").format(
            columns=_columns(collection),
            table=sql.Identifier(collection.table),
            lock=sql.SQL(" FOR UPDATE" if for_update else ""),
        ),
        (organization_id, resource_id),
    )


def get_many(collection: Collection, organization_id: UUID, resource_ids: list[UUID]) -> list[dict[str, Any]]:
    """The organization's rows among the ids, in no particular order (another's do not exist here)."""
    return fetch_all(
        sql.SQL("SELECT {columns} FROM {table} WHERE organization_id = %s AND id = ANY(%s)").format(
            columns=_columns(collection), table=sql.Identifier(collection.table)
        ),
        (organization_id, resource_ids),
    )


def update(
    collection: Collection, organization_id: UUID, resource_id: UUID, values: dict[str, Any]
) -> dict[str, Any] | None:
    checked = _checked(collection, values)
    if not checked:
        return get(collection, organization_id, resource_id)
    return fetch_one(
        sql.SQL(
            "UPDATE {table} SET {assignments} WHERE organization_id = %(organization_id)s AND id = %(id)s"
            " RETURNING {columns}"
        ).format(
            table=sql.Identifier(collection.table),
            assignments=sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in checked
            ),
            columns=_columns(collection),
        ),
        {**checked, "organization_id": organization_id, "id": resource_id},
    )


def delete(collection: Collection, organization_id: UUID, resource_id: UUID) -> bool:
    return (
        execute(
            sql.SQL("DELETE FROM {table} WHERE organization_id = %s AND id = %s").format(
                table=sql.Identifier(collection.table)
            ),
            (organization_id, resource_id),
        )
        > 0
    )


def named_by(
    collection: Collection, organization_id: UUID, column: str, values: list[UUID]
) -> list[dict[str, Any]]:
    """The id and name of the organization's rows whose `column` (a reference) is one of `values`,
    by name."""
    if column not in collection.columns:
        raise ValueError(f"{collection.table} has no column {column}")
    return fetch_all(
        sql.SQL(
            "SELECT id, name FROM {table} WHERE organization_id = %s AND {column} = ANY(%s) ORDER BY name, id"
        ).format(table=sql.Identifier(collection.table), column=sql.Identifier(column)),
        (organization_id, values),
    )


def delete_many(collection: Collection, organization_id: UUID, resource_ids: list[UUID]) -> int:
    return execute(
        sql.SQL("DELETE FROM {table} WHERE organization_id = %s AND id = ANY(%s)").format(
            table=sql.Identifier(collection.table)
        ),
        (organization_id, resource_ids),
    )


def touch(collection: Collection, organization_id: UUID, resource_ids: list[UUID]) -> int:
    """Mark the rows changed (a new `updated_at`, so a new version) when something they hold changed
    elsewhere."""
    return execute(
        sql.SQL("UPDATE {table} SET updated_at = now() WHERE organization_id = %s AND id = ANY(%s)").format(
            table=sql.Identifier(collection.table)
        ),
        (organization_id, resource_ids),
    )


def existing_ids(collection: Collection, organization_id: UUID, resource_ids: set[UUID]) -> set[UUID]:
    """Which of the ids name rows of the organization (another organization's rows do not exist here),
    locked against deletion until the transaction ends: a delete, which locks its row before it looks
    for what uses it, either waits for the reference to commit (and then sees it) or has gone first."""
    rows = fetch_all(
        sql.SQL("SELECT id FROM {table} WHERE organization_id = %s AND id = ANY(%s) FOR KEY SHARE").format(
            table=sql.Identifier(collection.table)
        ),
        (organization_id, list(resource_ids)),
    )
    return {row["id"] for row in rows}


# Parameters (a query's `parameters`, a dashboard's `filters`) whose options come from one of the queries.
_FED_BY = (
    "EXISTS (SELECT FROM jsonb_array_elements({column}) AS item"
    " WHERE item -> 'options_query' ->> 'query_id' = ANY({ids}::text[]))"
)


def fed_by(
    collection: Collection, column: str, organization_id: UUID, query_ids: list[UUID]
) -> list[dict[str, Any]]:
    """The id and name of each row (other than the queries themselves) with a parameter in `column` whose
    options come from one of `query_ids`, by name."""
    return fetch_all(
        sql.SQL(
            "SELECT id, name FROM {table} WHERE organization_id = %(organization_id)s"
            " AND NOT (id = ANY(%(ids)s)) AND {fed} ORDER BY name, id"
        ).format(
            table=sql.Identifier(collection.table),
            fed=sql.SQL(_FED_BY).format(column=sql.Identifier(column), ids=sql.Placeholder("texts")),
        ),
        {
            "organization_id": organization_id,
            "ids": query_ids,
            "texts": [str(query_id) for query_id in query_ids],
        },
    )


def drop_options_from(
    collection: Collection, column: str, organization_id: UUID, query_ids: list[UUID]
) -> int:
    """Drop the options query from each parameter in `column` that one of `query_ids` fed: the parameter
    stays, free. A query gets a new revision (its parameters changed)."""
    revision = sql.SQL("revision = revision + 1, ") if "revision" in collection.columns else sql.SQL("")
    return execute(
        sql.SQL(
            "UPDATE {table} SET {revision}{column} = (SELECT jsonb_agg(CASE"
            " WHEN item -> 'options_query' ->> 'query_id' = ANY(%(texts)s::text[])"
            " THEN jsonb_set(item, '{{options_query}}', 'null') ELSE item END ORDER BY position)"
            " FROM jsonb_array_elements({column}) WITH ORDINALITY AS listed(item, position))"
            " WHERE organization_id = %(organization_id)s AND {fed}"
        ).format(
            table=sql.Identifier(collection.table),
            revision=revision,
            column=sql.Identifier(column),
            fed=sql.SQL(_FED_BY).format(column=sql.Identifier(column), ids=sql.Placeholder("texts")),
        ),
        {"organization_id": organization_id, "texts": [str(query_id) for query_id in query_ids]},
    )


def all_of(collection: Collection, organization_id: UUID) -> list[dict[str, Any]]:
    """Every row of the organization, oldest first (a bundle's export and plan read them whole)."""
    return fetch_all(
        sql.SQL("SELECT {columns} FROM {table} WHERE organization_id = %s ORDER BY created_at, id").format(
            columns=_columns(collection), table=sql.Identifier(collection.table)
        ),
        (organization_id,),
    )
