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
from loupe.models.queries import ParameterOption, ParameterOptionsPage, ParameterOptionsQuery
from loupe.repositories import crud
from loupe.repositories import runs as runs_repository
from loupe.repositories.queries import QUERIES
from loupe.results.store import ResultReader

# The options are the first this many rows of the options query's result.
MAX_OPTIONS = 10_000


@dataclass(frozen=True)
class OptionSet:
    run_id: UUID
    refreshed_at: datetime
    options: list[ParameterOption]
    # The result had more rows than MAX_OPTIONS.
    truncated: bool


def option_set(organization_id: UUID, bucket: str, source: Mapping[str, Any]) -> OptionSet:
    """The options `source` (a stored OptionsQuery) names, read from its query's latest stored result."""
    latest = runs_repository.latest_stored(UUID(str(source["query_id"])))
    if latest is None:
        raise OptionsUnavailable(f"The options query {source['query_id']} has no result yet: run it")
    reader = ResultReader.for_run(bucket, organization_id, latest["id"])
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
    return OptionSet(latest["id"], latest["finished_at"], options, truncated=len(rows) > MAX_OPTIONS)


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
    organization_id: UUID, bucket: str, declared: Sequence[Mapping[str, Any]], values: Mapping[str, Any]
) -> None:
    """A 422 naming each value of a dropdown parameter that is not among its options."""
    issues = []
    for parameter in declared:
        source, value = parameter.get("options_query"), values.get(parameter["name"])
        if source is None or value is None:
            continue
        try:
            options = option_set(organization_id, bucket, source).options
        except OptionsUnavailable as error:
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
        bucket = get_settings().results_bucket
        if bucket is None:
            raise DependencyUnavailable("Results are not configured: LOUPE_RESULTS_BUCKET")
        options = option_set(principal.organization_id, bucket, source)
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
