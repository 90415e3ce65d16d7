"""One list query for every collection: tenancy, filters, text search, sorting and paging.

Sort fields come from each resource's allowlist and are quoted as identifiers; values are bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from psycopg import sql

from loupe.db import fetch_all
from loupe.errors import FieldIssue, InvalidListQuery
from loupe.models.common import ListQuery, ResourceListQuery


@dataclass(frozen=True)
class Collection:
    """How one table is listed: its columns, what may be sorted on, what the text search reads."""

    table: str
    columns: tuple[str, ...]
    sortable: frozenset[str]
    writable: frozenset[str] = frozenset()
    json_columns: frozenset[str] = frozenset()  # jsonb columns: values are sent as JSON, whatever their shape
    default_sort: str = "-updated_at"
    searchable: tuple[str, ...] = ("name",)
    tagged: bool = True
    filters: frozenset[str] = field(default_factory=frozenset)


def parse_sort(sort: str | None, collection: Collection) -> list[tuple[str, bool]]:
    """`-updated_at,name` → [("updated_at", True), ("name", False)]; unknown fields are a 422."""
    spec = sort or collection.default_sort
    order: list[tuple[str, bool]] = []
    for part in spec.split(","):
        name, descending = part.removeprefix("-"), part.startswith("-")
        if name not in collection.sortable:
            allowed = ", ".join(sorted(collection.sortable))
            raise InvalidListQuery(issues=[FieldIssue("sort", f"unknown field {name!r}; use {allowed}")])
        if any(existing == name for existing, _ in order):
            raise InvalidListQuery(issues=[FieldIssue("sort", f"{name!r} is repeated")])
        order.append((name, descending))
    return order


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_page(
    collection: Collection,
    organization_id: UUID,
    query: ListQuery,
    *,
    search_only_where: sql.Composable | None = None,
    **equals: Any,
) -> tuple[list[dict[str, Any]], int]:
    """Rows of one page and the total matching the filters. `equals` are column = value filters
    named in the collection's `filters` (e.g. datasource_id); `search_only_where` narrows the rows a
    text search may match (the caller may not read the searched column of the others)."""
    conditions: list[sql.Composable] = [sql.SQL("organization_id = %(organization_id)s")]
    params: dict[str, Any] = {"organization_id": organization_id}
    for name, value in equals.items():
        if name not in collection.filters:
            raise ValueError(f"{collection.table} cannot be filtered by {name}")
        if value is not None:
            conditions.append(sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(f"eq_{name}")))
            params[f"eq_{name}"] = value
    if query.q:
        if not collection.searchable:
            raise InvalidListQuery(issues=[FieldIssue("q", "this collection has no text search")])
        conditions.append(
            sql.SQL("({})").format(
                sql.SQL(" OR ").join(
                    sql.SQL("{} ILIKE %(q)s").format(sql.Identifier(column))
                    for column in collection.searchable
                )
            )
        )
        params["q"] = f"%{escape_like(query.q)}%"
        if search_only_where is not None:
            conditions.append(search_only_where)
    if query.tag:
        if not collection.tagged:
            raise InvalidListQuery(issues=[FieldIssue("tag", "this collection has no tags")])
        conditions.append(sql.SQL("%(tag)s = ANY(tags)"))
        params["tag"] = query.tag
    if query.created_after:
        conditions.append(sql.SQL("created_at > %(created_after)s"))
        params["created_after"] = query.created_after
    if query.created_before:
        conditions.append(sql.SQL("created_at < %(created_before)s"))
        params["created_before"] = query.created_before
    if isinstance(query, ResourceListQuery) and query.updated_after:
        conditions.append(sql.SQL("updated_at > %(updated_after)s"))
        params["updated_after"] = query.updated_after
    if isinstance(query, ResourceListQuery) and query.updated_before:
        conditions.append(sql.SQL("updated_at < %(updated_before)s"))
        params["updated_before"] = query.updated_before
    order: list[sql.Composable] = [
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL("DESC" if descending else "ASC"))
        for name, descending in parse_sort(query.sort, collection)
    ]
    order.append(sql.SQL("id ASC"))  # a unique tiebreaker keeps pages stable
    statement = sql.SQL(
        "SELECT {columns}, count(*) OVER () AS total_count FROM {table} WHERE {where}"
        " ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s"
    ).format(
        columns=sql.SQL(", ").join(sql.Identifier(column) for column in collection.columns),
        table=sql.Identifier(collection.table),
        where=sql.SQL(" AND ").join(conditions),
        order=sql.SQL(", ").join(order),
    )
    params.update(limit=query.limit, offset=query.offset)
    rows = fetch_all(statement, params)
    total = int(rows[0]["total_count"]) if rows else _count_beyond_last_page(collection, statement, params)
    return [{key: value for key, value in row.items() if key != "total_count"} for row in rows], total


def _count_beyond_last_page(collection: Collection, statement: sql.Composed, params: dict[str, Any]) -> int:
    # An offset past the end returns no rows, so no window count: ask for the first row instead.
    if params["offset"] == 0:
        return 0
    rows = fetch_all(statement, {**params, "offset": 0, "limit": 1})
    return int(rows[0]["total_count"]) if rows else 0
