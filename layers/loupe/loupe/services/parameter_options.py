"""Dropdowns fed by a query: a parameter's allowed values are another saved query's latest succeeded
result (a value column and a label column), listed page by page with a search, and a run's value outside
them is refused. Running the options query refreshes them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any
from uuid import UUID

from loupe import db
from loupe.config import get_settings
from loupe.errors import DependencyUnavailable, FieldIssue, InvalidInput, NotFound, OptionsUnavailable
from loupe.models.identity import Principal
from loupe.models.queries import ParameterOption, ParameterOptionsPage, ParameterOptionsQuery, QueryParameter
from loupe.repositories import crud
from loupe.repositories import runs as runs_repository
from loupe.repositories.queries import QUERIES
from loupe.results.store import ResultReader
from loupe.services import row_policies
from loupe.services.resources import require_references

# The options are the first this many rows of the options query's result.
MAX_OPTIONS = 10_000


@dataclass(frozen=True)
class OptionSet:
    run_id: UUID
    refreshed_at: datetime
    options: list[ParameterOption]
    # The result had more rows than MAX_OPTIONS.
    truncated: bool


def depends_on(source: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The options query's parameter values a cascading source takes from its siblings' `values`."""
    mapped = source.get("parameters") or {}
    return {
        parameter: values[sibling] for parameter, sibling in mapped.items() if values.get(sibling) is not None
    }


def option_set(
    organization_id: UUID,
    bucket: str,
    source: Mapping[str, Any],
    values: Mapping[str, Any],
    reader: Principal | None,
) -> OptionSet:
    """The options `source` (a stored OptionsQuery) names, read from its query's latest stored result under
    the row policies binding `reader` (for a cascading source, the latest that ran with the values it
    takes from its siblings' `values`); None reads as no policy binds (a schedule whose creator left)."""
    query_id = UUID(str(source["query_id"]))
    query = crud.get(QUERIES, organization_id, query_id)
    if query is None:
        raise OptionsUnavailable(f"The options query {source['query_id']} no longer exists")
    policy_key = row_policies.policy_key(reader, query["datasource_id"]) if reader is not None else None
    latest = runs_repository.latest_stored(query_id, depends_on(source, values), policy_key)
    if latest is None:
        raise OptionsUnavailable(f"The options query {source['query_id']} has no result yet: run it")
    return options_of_run(organization_id, bucket, latest["id"], latest["finished_at"], source)


def options_of_run(
    organization_id: UUID, bucket: str, run_id: UUID, finished_at: datetime, source: Mapping[str, Any]
) -> OptionSet:
    """The options in a succeeded run's stored result: the value and label columns `source` names."""
    reader = ResultReader.for_run(bucket, organization_id, run_id)
    columns = [column.name for column in reader.manifest.columns]
    value_column, label_column = source.get("value_column"), source.get("label_column")
    for named in (value_column, label_column):
        if named is not None and named not in columns:
            raise OptionsUnavailable(f"The options query's result has no column {named!r}")
    value_at = columns.index(value_column) if value_column else 0
    label_at = columns.index(label_column) if label_column else (1 if len(columns) > 1 else value_at)
    rows = list(islice(reader.iter_rows(), MAX_OPTIONS + 1))
    options = [
        ParameterOption(value=row[value_at], label="" if row[label_at] is None else str(row[label_at]))
        for row in rows[:MAX_OPTIONS]
        if row[value_at] is not None
    ]
    return OptionSet(run_id, finished_at, options, truncated=len(rows) > MAX_OPTIONS)


def require_sources(organization_id: UUID, parameters: Sequence[QueryParameter], field: str) -> None:
    """Each dropdown's options query is one of the organization's (404 naming `<field>.N.options_query.
    query_id` otherwise), and a cascading one feeds parameters that query has from siblings that exist
    (422): a query's parameters or a dashboard's filters."""
    sourced = [(index, parameter, parameter.options_query) for index, parameter in enumerate(parameters)]
    fed = [(index, parameter, source) for index, parameter, source in sourced if source is not None]
    require_references(
        QUERIES,
        organization_id,
        [(f"{field}.{index}.options_query.query_id", source.query_id) for index, _, source in fed],
    )
    cascading = [(index, parameter, source) for index, parameter, source in fed if source.parameters]
    if not cascading:
        return
    declared = {
        row["id"]: {item["name"] for item in row["parameters"]}
        for row in crud.get_many(QUERIES, organization_id, [source.query_id for _, _, source in cascading])
    }
    siblings = {parameter.name for parameter in parameters}
    issues = []
    for index, parameter, source in cascading:
        for fed_parameter, sibling in source.parameters.items():
            issue = None
            if fed_parameter not in declared.get(source.query_id, set()):
                issue = "the options query has no such parameter"
            elif sibling == parameter.name or sibling not in siblings:
                issue = f"{sibling!r} is not another of these parameters"
            if issue is not None:
                issues.append(FieldIssue(f"{field}.{index}.options_query.parameters.{fed_parameter}", issue))
    if issues:
        raise InvalidInput("The dropdowns' options queries do not fit", issues=issues)


def _same(value: Any, option: Any) -> bool:
    """A value equals an option as the result holds it (a decimal as text, a date as an ISO string)."""
    if isinstance(value, bool) or isinstance(option, bool):
        return value is option
    if isinstance(value, int | float) and isinstance(option, int | float | str):
        try:
            return float(option) == float(value)
        except ValueError:
            return False
    return str(value) == str(option)


def require_within(
    organization_id: UUID,
    bucket: str,
    declared: Sequence[Mapping[str, Any]],
    values: Mapping[str, Any],
    reader: Principal | None,
) -> None:
    """A 422 naming each value of a dropdown parameter that is not among its options."""
    issues = []
    for parameter in declared:
        source, value = parameter.get("options_query"), values.get(parameter["name"])
        if source is None or value is None:
            continue
        try:
            options = option_set(organization_id, bucket, source, values, reader).options
        except OptionsUnavailable as error:
            # A cascading dropdown's options for these values may not have been asked for yet.
            if not source.get("parameters"):
                issues.append(FieldIssue(f"parameters.{parameter['name']}", error.message))
            continue
        for item in value if isinstance(value, list) else [value]:
            if not any(_same(item, option.value) for option in options):
                issues.append(
                    FieldIssue(f"parameters.{parameter['name']}", f"{item!r} is not one of its options")
                )
    if issues:
        raise InvalidInput("The parameters do not fit the query", issues=issues)


def page(
    principal: Principal, query_id: UUID, name: str, query: ParameterOptionsQuery
) -> ParameterOptionsPage:
    """The options of the query's parameter `name`, those whose label or value holds `query.q`."""
    with db.transaction():
        found = crud.get(QUERIES, principal.organization_id, query_id)
        if found is None:
            raise NotFound("No such query")
        parameter = next((item for item in found["parameters"] if item["name"] == name), None)
        if parameter is None:
            raise NotFound("The query has no such parameter")
        source = parameter.get("options_query")
        if source is None:
            raise NotFound("The parameter takes its values from no query")
        # Looked up after the query: another organization's query is a 404 whatever the configuration.
        bucket = results_bucket()
        # A cascading dropdown's options here are those for its siblings' defaults.
        defaults = {item["name"]: item.get("default") for item in found["parameters"]}
        options = option_set(principal.organization_id, bucket, source, defaults, principal)
    return paged(options, query)


def results_bucket() -> str:
    bucket = get_settings().results_bucket
    if bucket is None:
        raise DependencyUnavailable("Results are not configured: LOUPE_RESULTS_BUCKET")
    return bucket


def paged(options: OptionSet, query: ParameterOptionsQuery) -> ParameterOptionsPage:
    """The options whose label or value holds `query.q`, one page of them."""
    needle = (query.q or "").casefold()
    matching = [
        option
        for option in options.options
        if needle in option.label.casefold() or needle in str(option.value).casefold()
    ]
    return ParameterOptionsPage(
        items=matching[query.offset : query.offset + query.limit],
        total=len(matching),
        limit=query.limit,
        offset=query.offset,
        run_id=options.run_id,
        refreshed_at=options.refreshed_at,
        options_truncated=options.truncated,
    )
