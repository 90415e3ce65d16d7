"""Saved queries: their datasource must be the caller's organization's, and their SQL's placeholders
must match their declared parameters, on create and after every update."""

from __future__ import annotations

from typing import Any

from loupe.models.identity import Principal
from loupe.models.queries import RANGE_TYPES, LatestRun, QueryCreate, QueryOut, QueryParameter, QueryUpdate
from loupe.repositories import runs as runs_repository
from loupe.repositories.datasources import DATASOURCES
from loupe.repositories.queries import QUERIES
from loupe.services import dependents, parameter_options, query_parameters, snippets
from loupe.services.resources import ResourceService, Versioned, require_reference
from loupe.versions import version_of, version_of_content


def _stored(parameters: list[QueryParameter]) -> list[dict[str, Any]]:
    return [parameter.model_dump(mode="json") for parameter in parameters]


def _version(row: dict[str, Any], latest: dict[str, Any] | None) -> str:
    # A new succeeded run changes what GET shows (latest_run), so it changes the ETag too.
    return version_of_content(f"{version_of(row['id'], row['updated_at'])}:{latest and latest['id']}")


def _require_match(sql: str, parameters: list[QueryParameter]) -> None:
    query_parameters.require_match(
        sql,
        [parameter.name for parameter in parameters],
        frozenset(parameter.name for parameter in parameters if parameter.type in RANGE_TYPES),
    )


class QueryService(dependents.UsedByOthers, ResourceService[QueryCreate, QueryUpdate, QueryOut]):
    find_dependents = staticmethod(dependents.of_query)
    revised = "query"
    unrevised = ResourceService.unrevised | {"revision", "latest_run"}

    def revision_number(self, row: dict[str, Any]) -> int | None:
        # A query's revision is its history's number: runs record it, and it names their definition.
        number: int = row["revision"]
        return number

    def version(self, row: dict[str, Any]) -> str:
        return _version(row, runs_repository.latest_succeeded(row["id"]))

    def versioned(self, row: dict[str, Any]) -> Versioned[QueryOut]:
        latest = runs_repository.latest_succeeded(row["id"])
        out = self.to_out(row).model_copy(update={"latest_run": LatestRun(**latest) if latest else None})
        return Versioned(out, _version(row, latest))

    def values_for_create(self, principal: Principal, body: QueryCreate) -> dict[str, Any]:
        require_reference(DATASOURCES, principal.organization_id, body.datasource_id, "datasource_id")
        _require_match(snippets.expand(principal.organization_id, body.sql), body.parameters)
        parameter_options.require_sources(principal.organization_id, body.parameters, "parameters")
        return {**body.model_dump(exclude={"parameters"}), "parameters": _stored(body.parameters)}

    def values_for_update(
        self, principal: Principal, body: QueryUpdate, current: dict[str, Any]
    ) -> dict[str, Any]:
        values = body.model_dump(exclude_unset=True, exclude={"parameters"})
        if body.datasource_id is not None:
            require_reference(DATASOURCES, principal.organization_id, body.datasource_id, "datasource_id")
        if body.sql is not None or body.parameters is not None:
            parameters = body.parameters
            if parameters is None:
                parameters = [QueryParameter.model_validate(stored) for stored in current["parameters"]]
            else:
                values["parameters"] = _stored(parameters)
                parameter_options.require_sources(principal.organization_id, parameters, "parameters")
            _require_match(snippets.expand(principal.organization_id, body.sql or current["sql"]), parameters)
        if any(value != current[name] for name, value in values.items()):
            values["revision"] = current["revision"] + 1
        return values


queries = QueryService(QUERIES, QueryOut, "query")
