"""Snippets: an organization's SQL fragments, written into a query's (or an editor's) SQL as `{{> name }}`
and expanded before the placeholders are matched and before the guard sees the SQL; a run keeps the SQL
as expanded, so a later edit of a snippet never rewrites what a run ran."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from loupe.errors import Dependent, FieldIssue, InvalidInput
from loupe.models.identity import Principal
from loupe.models.snippets import SnippetCreate, SnippetOut, SnippetUpdate
from loupe.repositories import queries as queries_repository
from loupe.repositories.snippets import SNIPPETS, sql_by_name
from loupe.services.resources import ResourceService

REFERENCE = re.compile(r"\{\{>\s*(.*?)\s*\}\}", re.DOTALL)


def expand(organization_id: UUID, sql: str) -> str:
    """`sql` with each `{{> name }}` replaced by the organization's snippet of that name (a 422 naming
    each one it does not have)."""
    names = list(dict.fromkeys(match.group(1) for match in REFERENCE.finditer(sql)))
    if not names:
        return sql
    found = sql_by_name(organization_id, names)
    missing = [name for name in names if name not in found]
    if missing:
        raise InvalidInput(
            "The SQL names snippets the organization does not have",
            issues=[FieldIssue("sql", f"{{{{> {name[:100]} }}}}: no such snippet") for name in missing],
        )
    return REFERENCE.sub(lambda match: found[match.group(1)], sql)


class SnippetService(ResourceService[SnippetCreate, SnippetUpdate, SnippetOut]):
    def dependents(self, principal: Principal, current: dict[str, Any]) -> list[Dependent]:
        rows = queries_repository.using_snippet(principal.organization_id, current["name"])
        return [Dependent("query", row["id"], row["name"]) for row in rows]


snippets = SnippetService(SNIPPETS, SnippetOut, "snippet")
