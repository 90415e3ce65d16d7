"""Visualizations: a query of the caller's organization, drawn as `type` with options valid for that type."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from loupe.errors import FieldIssue, InvalidInput
from loupe.models.identity import Principal
from loupe.models.visualizations import (
    OPTIONS_BY_TYPE,
    VisualizationCreate,
    VisualizationOut,
    VisualizationType,
    VisualizationUpdate,
)
from loupe.repositories.queries import QUERIES
from loupe.repositories.visualizations import VISUALIZATIONS
from loupe.services import dependents
from loupe.services.resources import ResourceService, require_reference


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


class VisualizationService(
    dependents.UsedByOthers, ResourceService[VisualizationCreate, VisualizationUpdate, VisualizationOut]
):
    find_dependents = staticmethod(dependents.of_visualization)

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
