"""Visualizations: a query of the caller's organization, drawn as `type` with options valid for that type."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from loupe import db
from loupe.errors import FieldIssue, InvalidInput
from loupe.models.common import ListQuery, Page
from loupe.models.identity import Principal
from loupe.models.visualizations import (
    OPTIONS_BY_TYPE,
    VisualizationCreate,
    VisualizationOut,
    VisualizationType,
    VisualizationUpdate,
)
from loupe.repositories import runs as runs_repository
from loupe.repositories.queries import QUERIES
from loupe.repositories.visualizations import VISUALIZATIONS
from loupe.services import dependents
from loupe.services.resources import ResourceService, Versioned, require_reference


def checked_options(visualization_type: VisualizationType, options: dict[str, Any]) -> dict[str, Any]:
    """The options with their defaults filled in, or a 422 naming each invalid one (`options.x`)."""
    try:
        model = OPTIONS_BY_TYPE[visualization_type].model_validate(options)
    except ValidationError as error:
        raise InvalidInput(
            f"The options do not fit a {visualization_type} visualization",
            issues=[
                FieldIssue(".".join(["options", *(str(part) for part in issue["loc"])]), issue["msg"])
                for issue in error.errors(include_url=False, include_input=False)
            ],
        ) from None
    return model.model_dump(mode="json")


def column_warnings(row: Mapping[str, Any], latest: Mapping[UUID, list[str]]) -> list[str]:
    """What the visualization's options name that its query's latest result (`latest`, by query) lacks."""
    columns = latest.get(row["query_id"])
    if columns is None:
        return []
    options = OPTIONS_BY_TYPE[row["type"]].model_validate(row["options"])
    missing = [name for name in dict.fromkeys(options.named_columns()) if name not in columns]
    return [f"the query's latest result has no column {name!r}" for name in missing]


def visualization_warnings(rows: Iterable[Mapping[str, Any]]) -> dict[UUID, list[str]]:
    """Each visualization's column warnings, with one look at the latest results of all their queries."""
    shown = list(rows)
    latest = runs_repository.latest_columns(list({row["query_id"] for row in shown}))
    return {row["id"]: column_warnings(row, latest) for row in shown}


class VisualizationService(
    dependents.UsedByOthers, ResourceService[VisualizationCreate, VisualizationUpdate, VisualizationOut]
):
    find_dependents = staticmethod(dependents.of_visualization)
    revised = "visualization"
    unrevised = ResourceService.unrevised | {"warnings"}

    def versioned(self, row: dict[str, Any]) -> Versioned[VisualizationOut]:
        found = super().versioned(row)
        found.resource.warnings = column_warnings(row, runs_repository.latest_columns([row["query_id"]]))
        return found

    def list(self, principal: Principal, query: ListQuery) -> Page[VisualizationOut]:
        page = super().list(principal, query)
        with db.transaction():
            warnings = visualization_warnings(item.model_dump() for item in page.items)
        for item in page.items:
            item.warnings = warnings[item.id]
        return page

    def values_for_create(self, principal: Principal, body: VisualizationCreate) -> dict[str, Any]:
        require_reference(QUERIES, principal.organization_id, body.query_id, "query_id")
        return {**body.model_dump(), "options": checked_options(body.type, body.options)}

    def values_for_update(
        self, principal: Principal, body: VisualizationUpdate, current: dict[str, Any]
    ) -> dict[str, Any]:
        values = body.model_dump(exclude_unset=True)
        if body.query_id is not None:
            require_reference(QUERIES, principal.organization_id, body.query_id, "query_id")
        if body.options is not None:
            values["options"] = checked_options(body.type or current["type"], body.options)
        elif body.type is not None:
            # A new type keeps the stored options it knows (line → bar keeps x and y) and must find in
            # them the columns it needs (table → line without options names no x: 422).
            known = OPTIONS_BY_TYPE[body.type].model_fields
            kept = {name: value for name, value in current["options"].items() if name in known}
            values["options"] = checked_options(body.type, kept)
        return values


visualizations = VisualizationService(VISUALIZATIONS, VisualizationOut, "visualization")
