"""Snippets: an organization's SQL fragments, written into a query's (or an editor's) SQL as `{{> name }}`
and expanded before the placeholders are matched and before the guard sees the SQL; a run keeps the SQL
as expanded, so a later edit of a snippet never rewrites what a run ran."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from loupe.errors import Dependent, FieldIssue, InvalidInput
from loupe.models.identity import Principal
from loupe.models.queries import RANGE_TYPES
from loupe.models.snippets import SnippetCreate, SnippetOut, SnippetUpdate
from loupe.repositories import crud
from loupe.repositories import queries as queries_repository
from loupe.repositories.queries import QUERIES
from loupe.repositories.snippets import SNIPPETS, sql_by_name
from loupe.services import query_parameters
from loupe.services.resources import ResourceService

REFERENCE = re.compile(r"\{\{>\s*(.*?)\s*\}\}", re.DOTALL)


def expand(organization_id: UUID, sql: str, replacing: Mapping[str, str] | None = None) -> str:
    """`sql` with each `{{> name }}` replaced by the organization's snippet of that name, or by
    `replacing`'s SQL for it (a 422 naming each one it does not have)."""
    names = list(dict.fromkeys(match.group(1) for match in REFERENCE.finditer(sql)))
    if not names:
        return sql
    found = {**sql_by_name(organization_id, names), **(replacing or {})}
    missing = [name for name in names if name not in found]
    if missing:
        raise InvalidInput(
            "The SQL names snippets the organization does not have",
            issues=[FieldIssue("sql", f"{{{{> {name[:100]} }}}}: no such snippet") for name in missing],
        )
    return REFERENCE.sub(lambda match: found[match.group(1)], sql)


def _mismatches(sql: str, declared: Sequence[Mapping[str, Any]]) -> list[FieldIssue]:
    return query_parameters.mismatches(
        sql,
        [parameter["name"] for parameter in declared],
        frozenset(parameter["name"] for parameter in declared if parameter["type"] in RANGE_TYPES),
    )


def expand_saved(organization_id: UUID, sql: str, declared: Sequence[Mapping[str, Any]]) -> str:
    """A saved query's SQL expanded, once its placeholders still match its declared parameters (a 422
    otherwise: a snippet's edit is checked against the queries using it, this holds when two edits race)."""
    expanded = expand(organization_id, sql)
    if expanded != sql:
        issues = _mismatches(expanded, declared)
        if issues:
            raise InvalidInput("The query's snippets no longer fit its parameters", issues=issues)
    return expanded


class SnippetService(ResourceService[SnippetCreate, SnippetUpdate, SnippetOut]):
    def values_for_update(
        self, principal: Principal, body: SnippetUpdate, current: dict[str, Any]
    ) -> dict[str, Any]:
        if body.sql is not None and body.sql != current["sql"]:
            _require_fits_users(principal.organization_id, current["name"], body.sql)
        return super().values_for_update(principal, body, current)

    def dependents(self, principal: Principal, current: dict[str, Any]) -> list[Dependent]:
        rows = queries_repository.using_snippet(principal.organization_id, current["name"])
        return [Dependent("query", row["id"], row["name"]) for row in rows]


snippets = SnippetService(SNIPPETS, SnippetOut, "snippet")


def _require_fits_users(organization_id: UUID, name: str, sql: str) -> None:
    """Refuse a snippet's new SQL when a query using it would then have a placeholder it does not declare,
    or declare a parameter it no longer uses (a 422 naming each such query)."""
    users = [row["id"] for row in queries_repository.using_snippet(organization_id, name)]
    issues = [
        FieldIssue("sql", f"query {query['name']!r} ({query['id']}): {mismatch.issue}")
        for query in sorted(crud.get_many(QUERIES, organization_id, users), key=lambda row: row["name"])
        for mismatch in _mismatches(expand(organization_id, query["sql"], {name: sql}), query["parameters"])
    ]
    if issues:
        raise InvalidInput("The new SQL does not fit the queries using the snippet", issues=issues)
