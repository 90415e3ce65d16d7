"""Runs: a saved query's or an editor's SQL queued for the runner, with values validated against the
declared types and bound as driver parameters; cached results by age; a limit on active runs per user
and per API key; the stored results, page by page."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from loupe import db, queue
from loupe.config import get_settings
from loupe.connectors import DatasourceType, engine
from loupe.errors import (
    Conflict,
    DependencyUnavailable,
    ExportTooLarge,
    FieldIssue,
    NotFound,
    RateLimited,
    ReferenceNotFound,
    ResultExpired,
)
from loupe.models import time_ranges
from loupe.models.common import ListQuery, Page
from loupe.models.identity import Principal, Role
from loupe.models.organizations import OrganizationSettings
from loupe.models.queries import RANGE_TYPES
from loupe.models.runs import (
    ACTIVE_STATUSES,
    AdhocRunCreate,
    QueryRunCreate,
    ResultsQuery,
    RunListQuery,
    RunOrigin,
    RunOut,
    RunPage,
    RunsQuery,
    RunStatus,
)
from loupe.repositories import crud
from loupe.repositories import organizations as organizations_repository
from loupe.repositories import runs as runs_repository
from loupe.repositories.datasources import DATASOURCES
from loupe.repositories.queries import QUERIES
from loupe.repositories.runs import RUNS, RunMoment, RunRecord, RunStarter
from loupe.results.exports import InstantExportFormat, export_to_s3, signed_url
from loupe.results.page import RunResults
from loupe.results.store import ResultReader
from loupe.security import row_policies, sql_guard
from loupe.security.row_policies import Effective, TableName
from loupe.services import parameter_options, query_parameters, rate_limits, snippets
from loupe.services import row_policies as row_policies_service
from loupe.services.resources import ResourceReader, Versioned
from loupe.versions import version_of_content

# A client told "too many runs" retries after this long: about the time a typical run takes.
RETRY_AFTER_SECONDS = 5
# The most GET /runs/{id}/export builds inside the request (its time is bounded by API Gateway's 29 s);
# larger results export in the background (loupe.services.exports). Bytes are the stored JSON text's.
INSTANT_EXPORT_MAX_ROWS = 50_000
INSTANT_EXPORT_MAX_BYTES = 16 * 1024 * 1024
# The error a cancelled run ends with, whether it was queued or running.
CANCELLED = {"code": "cancelled", "message": "The run was cancelled"}
PageT = TypeVar("PageT", bound=Page[RunOut])
NO_POLICY = Effective()
UTC_ZONE = ZoneInfo("UTC")
# A long poll looks again this often: one indexed read of a few columns, in a transaction of its own.
WAIT_CHECK_SECONDS = 0.5


@dataclass(frozen=True)
class RunSettings:
    queue_url: str
    # Scheduled runs' own queue; the interactive one where none is configured.
    scheduled_queue_url: str
    results_bucket: str
    max_active_per_user: int
    max_rows: int
    max_result_bytes: int

    def queue_for(self, origin: RunOrigin) -> str:
        """A run nobody waits on (a schedule's, a report's) goes to the scheduled runs' queue, so a burst
        of them never delays a person's run."""
        background = origin in (RunOrigin.SCHEDULE, RunOrigin.SUBSCRIPTION)
        return self.scheduled_queue_url if background else self.queue_url


def run_settings() -> RunSettings:
    """The settings of runs and the runner; without a queue or a bucket, runs are unavailable (503)."""
    settings = get_settings()
    if settings.runs_queue_url is None or settings.results_bucket is None:
        raise DependencyUnavailable("Runs are not configured: LOUPE_RUNS_QUEUE_URL and LOUPE_RESULTS_BUCKET")
    return RunSettings(
        queue_url=settings.runs_queue_url,
        scheduled_queue_url=settings.scheduled_runs_queue_url or settings.runs_queue_url,
        results_bucket=settings.results_bucket,
        max_active_per_user=settings.max_active_runs_per_user,
        max_rows=settings.run_max_rows,
        max_result_bytes=settings.run_max_result_bytes,
    )


def compiled(sql: str, kind: DatasourceType, values: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The SQL with each `{{ name }}` written as the connector's bound parameter (a list value's as one
    per value), and the values by the parameters' names: values never enter the text."""
    placeholder = engine(kind).placeholder
    text, flat = query_parameters.expanded(sql, values)
    return query_parameters.PLACEHOLDER.sub(lambda match: placeholder(match.group(1).strip()), text), flat


def run_columns(
    kind: DatasourceType,
    datasource_id: UUID,
    sql: str,
    values: Mapping[str, Any],
    *,
    query_id: UUID | None,
    created_by: UUID | None,
    allowed_functions: frozenset[str] = frozenset(),
    api_key_id: UUID | None = None,
    declared: Sequence[Mapping[str, Any]] = (),
    query_revision: int | None = None,
    origin: RunOrigin = RunOrigin.INTERACTIVE,
    policy: Effective = NO_POLICY,
) -> tuple[dict[str, Any], str | None]:
    """A new run's columns, and the guard's reason to refuse its SQL (None when it may run);
    `allowed_functions` are the datasource's own, `declared` the saved query's parameters, `policy` the
    row policies its SQL is rewritten with (the rewriter's refusal is the guard's)."""
    refusal = None
    try:
        normalized = guarded(compiled(sql, kind, values)[0], kind, frozenset(allowed_functions), policy)[0]
    except sql_guard.SqlNotAllowed as error:
        normalized, refusal = sql, error.reason
    columns = {
        "query_id": query_id,
        "datasource_id": datasource_id,
        "sql": sql,
        "parameters": dict(values),
        "cache_key": _cache_key(datasource_id, normalized, values, policy.key),
        "created_by": created_by,
        "api_key_id": api_key_id,
        "parameter_types": {parameter["name"]: parameter["type"] for parameter in declared},
        "query_revision": query_revision,
        "origin": origin,
        **policy.stored(),
    }
    return columns, refusal


def guarded(
    text: str,
    kind: DatasourceType,
    allowed_functions: frozenset[str],
    policy: Effective,
    refused: Collection[TableName] = (),
) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """The statement to send for compiled SQL: the guard's text, rewritten with the row policies and
    guarded again (predicates and all); its placeholders' names, and the claims' values among them.
    `refused` are relations reading a policy's table without it (known once connected)."""
    statement = sql_guard.check(text, kind, allowed_functions)
    if not policy.filters:
        return statement.sql, statement.parameters, {}
    rewritten, claims = row_policies.apply(statement.sql, kind, policy.filters, policy.claims, refused)
    final = sql_guard.check(rewritten, kind, allowed_functions)
    return final.sql, final.parameters, claims


def parameter_values(
    declared: list[dict[str, Any]],
    given: Mapping[str, Any],
    organization_id: UUID,
    zone: Callable[[], ZoneInfo],
    reader: Principal | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Every declared parameter's value: the one given, checked against its type (and a dropdown's
    against its options as `reader` may read them), or its default; a range's preset resolved at `now`
    (the current time unless given), in `zone` (asked for only when a range has a value), to its ends."""
    checked = query_parameters.checked_parameters(declared, dict(given))
    values: dict[str, Any] = {
        parameter["name"]: checked.get(parameter["name"], parameter.get("default")) for parameter in declared
    }
    ranges = [
        parameter
        for parameter in declared
        if parameter["type"] in RANGE_TYPES and values.get(parameter["name"]) is not None
    ]
    if ranges:
        at, in_zone = now or datetime.now(UTC), zone()
        for parameter in ranges:
            values[parameter["name"]] = resolved_range(
                parameter["type"], values[parameter["name"]], at, in_zone
            )
    if any(parameter.get("options_query") for parameter in declared):
        parameter_options.require_within(
            organization_id, run_settings().results_bucket, declared, values, reader
        )
    return values


def organization_zone(organization_id: UUID) -> ZoneInfo:
    """The organization's time zone (its `default_timezone`), in which a range's preset is resolved."""
    record = organizations_repository.get(organization_id)
    return ZoneInfo(OrganizationSettings.model_validate(record.settings if record else {}).default_timezone)


def resolved_range(
    range_type: str, value: Mapping[str, str], now: datetime, zone: ZoneInfo
) -> dict[str, str]:
    """The range with its ends: a custom one's as given, a preset's as it names them at `now` in `zone`
    (days for a date range, aware times for a datetime range)."""
    preset = value["preset"]
    if preset == "custom":
        return dict(value)
    if RANGE_TYPES[range_type] == "date":
        first, after = time_ranges.resolve_dates(preset, now, zone)
        return {"preset": preset, "from": first.isoformat(), "to": after.isoformat()}
    start, end = time_ranges.resolve(preset, now, zone)
    return {"preset": preset, "from": start.isoformat(), "to": end.isoformat()}


def refused_run(columns: dict[str, Any], refusal: str) -> dict[str, Any]:
    """The columns of a run whose SQL the guard refused: it ends at once, failed."""
    return {
        **columns,
        "status": RunStatus.FAILED,
        "error": {"code": sql_guard.SqlNotAllowed.code, "message": refusal},
        "finished_at": datetime.now(UTC),
    }


def _cache_key(
    datasource_id: UUID, normalized_sql: str, values: Mapping[str, Any], policy_key: str | None
) -> str:
    # The policies' claims are bound values, not text: the policy's key tells two callers' runs apart.
    material = json.dumps(
        {
            "datasource_id": str(datasource_id),
            "sql": normalized_sql,
            "parameters": values,
            "policy": policy_key,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(material.encode()).hexdigest()


def _run_out(run: RunRecord, principal: Principal | None) -> RunOut:
    """The run as `principal` may see it: an editor's ad-hoc SQL only for editors and admins (a saved
    query's SQL every role reads anyway); None stands for a reader whose role is not known."""
    out = RunOut.model_validate(run, from_attributes=True)
    if run.query_id is None and (principal is None or principal.role < Role.EDITOR):
        return out.model_copy(update={"sql": None})
    return out


def _version(run_id: UUID, status: RunStatus, changed_at: datetime) -> str:
    # A run changes only when it starts or finishes (a retry starts it again).
    return version_of_content(f"{run_id}:{status}:{changed_at.isoformat()}")


def _run_version(run: RunRecord) -> str:
    return _version(run.id, run.status, run.finished_at or run.started_at or run.created_at)


def _batch_version(moments: Sequence[RunMoment]) -> str:
    """One version of many runs, which changes when any of them does."""
    ordered = sorted(moments, key=lambda moment: moment.id)
    return version_of_content(
        ",".join(_version(moment.id, moment.status, moment.changed_at) for moment in ordered)
    )


def _single_version(moments: Sequence[RunMoment]) -> str:
    return _version(moments[0].id, moments[0].status, moments[0].changed_at) if moments else ""


@dataclass(frozen=True)
class Started:
    """A run to answer a create with: `new` is False when a cached run was returned instead."""

    run: RunOut
    new: bool


class RunService(ResourceReader[RunOut]):
    def to_out(self, row: dict[str, Any]) -> RunOut:
        return _run_out(RunRecord.from_row(row), None)

    def get(
        self,
        principal: Principal,
        resource_id: UUID,
        *,
        wait_seconds: float = 0,
        known_versions: frozenset[str] = frozenset(),
    ) -> Versioned[RunOut]:
        """The run; with `wait_seconds`, once its version is none of `known_versions` (the one it has
        when asked, if empty) or the time is up."""
        if wait_seconds > 0:
            self._wait(principal, [resource_id], _single_version, wait_seconds, known_versions)
        with db.transaction():
            run = self._run(principal, resource_id)
        return Versioned(_run_out(run, principal), _run_version(run))

    def of_ids(
        self,
        principal: Principal,
        query: RunsQuery,
        *,
        wait_seconds: float = 0,
        known_versions: frozenset[str] = frozenset(),
    ) -> Versioned[RunPage]:
        """The runs `query.ids` names, in that order, once any of them changes (as `get` waits for one)."""
        assert query.ids is not None
        if wait_seconds > 0:
            self._wait(principal, query.ids, _batch_version, wait_seconds, known_versions)
        with db.transaction():
            rows = crud.get_many(RUNS, principal.organization_id, query.ids)
        found = {row["id"]: RunRecord.from_row(row) for row in rows}
        present = [found[run_id] for run_id in query.ids if run_id in found]
        page = RunPage(
            items=[_run_out(run, principal) for run in present[query.offset : query.offset + query.limit]],
            total=len(present),
            limit=query.limit,
            offset=query.offset,
            missing=[run_id for run_id in query.ids if run_id not in found],
        )
        moments = [
            RunMoment(run.id, run.status, run.finished_at or run.started_at or run.created_at)
            for run in present
        ]
        return Versioned(page, _batch_version(moments))

    def _wait(
        self,
        principal: Principal,
        run_ids: list[UUID],
        version_of_moments: Callable[[Sequence[RunMoment]], str],
        seconds: float,
        known_versions: frozenset[str],
    ) -> None:
        """Return once the runs' version is none of `known_versions` (the first one seen, if empty), once
        none of them can change any more, or after `seconds`. The request's transaction ends first and
        each look is a transaction of its own: between looks none is open and no lock is held."""
        deadline = time.monotonic() + seconds
        baseline = known_versions
        organization_id = principal.organization_id
        with db.suspended(organization_id):
            while True:
                with db.transaction():
                    db.bind_tenant(organization_id)
                    moments = runs_repository.moments(organization_id, run_ids)
                version = version_of_moments(moments)
                baseline = baseline or frozenset({version})
                finished = all(moment.status not in ACTIVE_STATUSES for moment in moments)
                remaining = deadline - time.monotonic()
                if version not in baseline or finished or remaining <= 0:
                    return
                time.sleep(min(WAIT_CHECK_SECONDS, remaining))

    def run_query(self, principal: Principal, query_id: UUID, body: QueryRunCreate) -> Started:
        """Run a saved query with values for its declared parameters (defaults fill the rest)."""
        with db.transaction():
            query = crud.get(QUERIES, principal.organization_id, query_id)
            if query is None:
                raise NotFound("No such query")
            values = parameter_values(
                query["parameters"],
                body.parameters,
                principal.organization_id,
                lambda: organization_zone(principal.organization_id),
                principal,
            )
            return self._start(
                principal,
                query["datasource_id"],
                snippets.expand_saved(principal.organization_id, query["sql"], query["parameters"]),
                values,
                query_id,
                body.max_age_seconds,
                query=query,
            )

    def serve(
        self,
        principal: Principal,
        planned: Sequence[tuple[Mapping[str, Any], dict[str, Any]]],
        max_age_seconds: int | None,
        origin: RunOrigin = RunOrigin.DASHBOARD,
    ) -> list[RunOut]:
        """A run for each (saved query, checked values) of a dashboard's tiles: a succeeded one at most
        `max_age_seconds` old when there is one, else a new one; a pair met twice is served once. The
        active-run limit applies to the batch as a whole, as for a refresh."""
        served: dict[str, RunOut] = {}
        keys = [
            json.dumps([str(query["id"]), values], sort_keys=True, default=str) for query, values in planned
        ]
        limited = True
        for key, (query, values) in zip(keys, planned, strict=True):
            if key in served:
                continue
            started = self._start(
                principal,
                query["datasource_id"],
                snippets.expand_saved(principal.organization_id, query["sql"], query["parameters"]),
                values,
                query["id"],
                max_age_seconds,
                limited=limited,
                query=query,
                origin=origin,
            )
            limited = limited and not started.new
            served[key] = started.run
        return [served[key] for key in keys]

    def run_sql(self, principal: Principal, body: AdhocRunCreate) -> Started:
        """Run an editor's SQL; each `{{ name }}` in it needs a value and each value a placeholder."""
        with db.transaction():
            sql = snippets.expand(principal.organization_id, body.sql)
            query_parameters.require_match(sql, list(body.parameters))
            return self._start(principal, body.datasource_id, sql, body.parameters, None, None)

    def list(self, principal: Principal, query: ListQuery) -> RunPage:
        """Runs of the organization; a reader who may not see ad-hoc SQL searches saved queries' only."""
        return self._listed(principal, query, RunPage)

    def query_runs(self, principal: Principal, query_id: UUID, query: RunListQuery) -> Page[RunOut]:
        with db.transaction():
            if crud.get(QUERIES, principal.organization_id, query_id) is None:
                raise NotFound("No such query")
            return self._listed(principal, query.model_copy(update={"query_id": query_id}), Page[RunOut])

    def results(self, principal: Principal, run_id: UUID, query: ResultsQuery) -> RunResults:
        return self.result_reader(principal, run_id).page(query.offset, query.limit)

    def cancel(self, principal: Principal, run_id: UUID) -> RunOut:
        """A queued run ends now; a running one's statement is stopped inside the datasource by its
        runner's watchdog within LOUPE_RUN_CANCEL_POLL_SECONDS, and the run then ends `cancelled`."""
        with db.transaction():
            run = self._run(principal, run_id)
            if not runs_repository.request_cancel(run_id, CANCELLED):
                raise Conflict(f"The run has already finished: it is {run.status}")
            return _run_out(self._run(principal, run_id), principal)

    def export(self, principal: Principal, run_id: UUID, fmt: InstantExportFormat) -> str:
        """Write a small run's rows as a file beside its result; returns a short-lived signed URL of it."""
        reader = self.result_reader(principal, run_id)
        manifest = reader.manifest
        if (
            manifest.row_count > INSTANT_EXPORT_MAX_ROWS
            or manifest.uncompressed_bytes > INSTANT_EXPORT_MAX_BYTES
        ):
            raise ExportTooLarge(
                f"Exports at once take at most {INSTANT_EXPORT_MAX_ROWS} rows and"
                f" {INSTANT_EXPORT_MAX_BYTES // 1024**2} MiB; POST /runs/{run_id}/exports exports it in the"
                " background"
            )
        return signed_url(reader.bucket, export_to_s3(reader, fmt))

    def _listed(self, principal: Principal, query: ListQuery, page: type[PageT]) -> PageT:
        filters = {name: getattr(query, name, None) for name in self.collection.filters}
        with db.transaction():
            rows, total = runs_repository.list_runs(
                principal.organization_id, query, search_adhoc=principal.role >= Role.EDITOR, **filters
            )
        return page(
            items=[_run_out(RunRecord.from_row(row), principal) for row in rows],
            total=total,
            limit=query.limit,
            offset=query.offset,
        )

    def result_reader(self, principal: Principal, run_id: UUID) -> ResultReader:
        """The stored result of the caller's organization's run; only a succeeded run has one."""
        with db.transaction():
            run = self._run(principal, run_id)
            row_policies_service.require_same_policy(principal, run.datasource_id, run.policy_key)
        if run.status is not RunStatus.SUCCEEDED:
            raise Conflict(f"The run has no results: it is {run.status}")
        if run.result_location is None:
            raise ResultExpired(
                "The run's result has expired under this organization's retention; run the query again"
            )
        return ResultReader.for_run(run_settings().results_bucket, principal.organization_id, run_id)

    def _run(self, principal: Principal, run_id: UUID) -> RunRecord:
        run = runs_repository.get(principal.organization_id, run_id)
        if run is None:
            raise NotFound(f"No such {self.noun}")
        return run

    def _check_active_limit(self, principal: Principal) -> None:
        """LOUPE_MAX_ACTIVE_RUNS_PER_USER queued or running runs at most: a user's, or an API key's."""
        starter: RunStarter
        if principal.user_id is not None:
            rate_limits.runs_user(principal.user_id)
            starter, starter_id = "created_by", principal.user_id
        elif principal.api_key_id is not None:
            rate_limits.runs_api_key(principal.api_key_id)
            starter, starter_id = "api_key_id", principal.api_key_id
        elif principal.guest_token_id is not None:
            rate_limits.runs_guest(principal.guest_token_id, principal.guest_resource_id)
            starter, starter_id = "embed_token_id", principal.guest_token_id
        else:
            return
        limit = run_settings().max_active_per_user
        runs_repository.lock_runs_of(starter, starter_id)
        if runs_repository.active_count(principal.organization_id, starter, starter_id) >= limit:
            raise RateLimited(
                f"At most {limit} of your runs may be queued or running at once",
                retry_after_seconds=RETRY_AFTER_SECONDS,
            )

    def _columns(
        self,
        principal: Principal,
        datasource_id: UUID,
        sql: str,
        values: Mapping[str, Any],
        query_id: UUID | None,
        query: Mapping[str, Any] | None,
        origin: RunOrigin,
    ) -> tuple[dict[str, Any], str | None]:
        """A run's columns (its cache key among them) under the caller's row policies, and why it could
        never run (None: it can)."""
        organization_id = principal.organization_id
        datasource = crud.get(DATASOURCES, organization_id, datasource_id)
        if datasource is None:
            raise ReferenceNotFound("No such datasource", issues=[FieldIssue("datasource_id", "not found")])
        policy = row_policies_service.effective(principal, datasource_id, datasource["type"])
        if principal.guest_token_id is not None:
            origin = RunOrigin.SHARE if principal.guest_kind == "share" else RunOrigin.EMBED
        columns, refusal = run_columns(
            datasource["type"],
            datasource_id,
            sql,
            values,
            query_id=query_id,
            created_by=principal.user_id,
            allowed_functions=frozenset(datasource["allowed_functions"]),
            api_key_id=principal.api_key_id,
            declared=query["parameters"] if query else (),
            query_revision=query["revision"] if query else None,
            origin=origin,
            policy=policy,
        )
        columns["embed_token_id"] = principal.guest_token_id
        return columns, refusal

    def newest_result(
        self, principal: Principal, query: Mapping[str, Any], values: Mapping[str, Any]
    ) -> RunOut | None:
        """The newest succeeded run of the saved query with these values under the caller's row policies,
        whatever its age, while its result is stored; None when there is none."""
        sql = snippets.expand_saved(principal.organization_id, query["sql"], query["parameters"])
        columns, refusal = self._columns(
            principal, query["datasource_id"], sql, values, query["id"], query, RunOrigin.DASHBOARD
        )
        if refusal is not None:
            return None
        found = runs_repository.newest_succeeded(
            principal.organization_id, columns["cache_key"], datetime.min.replace(tzinfo=UTC)
        )
        return _run_out(self._run(principal, found), principal) if found is not None else None

    def _start(
        self,
        principal: Principal,
        datasource_id: UUID,
        sql: str,
        values: Mapping[str, Any],
        query_id: UUID | None,
        max_age_seconds: int | None,
        *,
        limited: bool = True,
        query: Mapping[str, Any] | None = None,
        origin: RunOrigin = RunOrigin.INTERACTIVE,
    ) -> Started:
        """Queue a run; `query` is the saved query it runs (None for an editor's SQL)."""
        organization_id = principal.organization_id
        columns, refusal = self._columns(principal, datasource_id, sql, values, query_id, query, origin)
        cache_key = columns["cache_key"]
        if refusal is not None:
            # It could never run: it ends at once, and takes no place in the queue or the limit.
            row = crud.insert(RUNS, organization_id, refused_run(columns, refusal))
            return Started(_run_out(RunRecord.from_row(row), principal), new=True)
        if max_age_seconds is not None:
            since = datetime.now(UTC) - timedelta(seconds=max_age_seconds)
            cached = runs_repository.newest_succeeded(organization_id, cache_key, since)
            if cached is not None:
                return Started(_run_out(self._run(principal, cached), principal), new=False)
        settings = run_settings()
        if limited:
            self._check_active_limit(principal)
        run = RunRecord.from_row(
            crud.insert(
                RUNS,
                organization_id,
                {**columns, "status": RunStatus.QUEUED, "enqueued_at": datetime.now(UTC)},
            )
        )
        # Sent inside the transaction: a queue that refuses rolls the run back. The runner retries a
        # message whose run it cannot see yet (this transaction has not committed).
        queue.send_run(settings.queue_for(origin), run.id)
        return Started(_run_out(run, principal), new=True)


runs = RunService(RUNS, RunOut, "run")
