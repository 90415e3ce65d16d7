"""The janitor's SQL: runs and results past their organization's retention, and expired credentials,
tokens and invitations, each found and deleted in bounded batches."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import sql

from loupe.db import execute, fetch_all

# Runs past an organization's retention setting (days), or the default when it sets none; oldest
# first. Nothing is locked: deleting a run's objects twice is harmless, and the delete that follows
# checks the age again.
_PAST_RETENTION = (
    "SELECT runs.id, runs.organization_id FROM runs"
    " JOIN organizations ON organizations.id = runs.organization_id"
    " WHERE {stored} runs.finished_at < %(now)s - interval '1 day'"
    " AND runs.finished_at < %(now)s - make_interval(days =>"
    " COALESCE((organizations.settings->>{setting})::int, %(default_days)s))"
    " ORDER BY runs.finished_at LIMIT %(limit)s"
)


def _past_retention(
    setting: str, default_days: int, now: datetime, limit: int, *, stored: bool
) -> list[dict[str, Any]]:
    query = sql.SQL(_PAST_RETENTION).format(
        stored=sql.SQL("runs.result_location IS NOT NULL AND" if stored else ""),
        setting=sql.Literal(setting),
    )
    return fetch_all(query, {"now": now, "default_days": default_days, "limit": limit})


def results_to_expire(default_days: int, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Succeeded runs whose stored result is older than result_retention_days."""
    return _past_retention("result_retention_days", default_days, now, limit, stored=True)


def runs_to_delete(default_days: int, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Finished runs older than run_retention_days."""
    return _past_retention("run_retention_days", default_days, now, limit, stored=False)


def forget_results(run_ids: list[UUID]) -> int:
    # Their exports' files went with the result's objects.
    execute("DELETE FROM run_exports WHERE run_id = ANY(%s)", (run_ids,))
    return execute("UPDATE runs SET result_location = NULL WHERE id = ANY(%s)", (run_ids,))


def delete_runs(run_ids: list[UUID]) -> int:
    return execute("DELETE FROM runs WHERE id = ANY(%s)", (run_ids,))


# What each purge removes: the rows no request can use any more. Conditions are code, never input.
PURGES: dict[str, str] = {
    "sessions": "expires_at < %(now)s OR revoked_at < %(now)s - interval '1 day'",
    "refresh_tokens": "expires_at < %(now)s",
    "password_resets": "expires_at < %(now)s OR used_at IS NOT NULL",
    "invitations": "expires_at < %(now)s",
    # Attempts count for minutes (the login window); a day is kept for investigations.
    "login_attempts": "created_at < %(now)s - interval '1 day'",
    # The longest rate-limit window is an hour.
    "rate_limit_hits": "created_at < %(now)s - interval '1 day'",
    # Firings go with the runs they are about.
    "alert_firings": (
        "created_at < %(now)s - make_interval(days => COALESCE((SELECT (settings->>'run_retention_days')::int"
        " FROM organizations WHERE organizations.id = alert_firings.organization_id), %(run_days)s))"
    ),
    # A resource's revisions past its organization's count or age, never its newest; and every revision
    # of a resource gone (a cascade deleted it).
    "revisions": (
        "(resource_type, resource_id, number) IN (SELECT resource_type, resource_id, number FROM ("
        " SELECT revisions.resource_type, revisions.resource_id, revisions.number, revisions.created_at,"
        " row_number() OVER (PARTITION BY revisions.resource_type, revisions.resource_id"
        " ORDER BY revisions.number DESC) AS newness,"
        " COALESCE((organizations.settings->>'revision_retention_count')::int, %(revision_count)s) AS kept,"
        " COALESCE((organizations.settings->>'revision_retention_days')::int, %(revision_days)s) AS days"
        " FROM revisions JOIN organizations ON organizations.id = revisions.organization_id) AS ranked"
        " WHERE newness > 1 AND (newness > kept OR created_at < %(now)s - make_interval(days => days)))"
        " OR NOT CASE resource_type"
        " WHEN 'query' THEN EXISTS (SELECT FROM queries WHERE queries.id = revisions.resource_id)"
        " WHEN 'visualization' THEN"
        " EXISTS (SELECT FROM visualizations WHERE visualizations.id = revisions.resource_id)"
        " WHEN 'dashboard' THEN EXISTS (SELECT FROM dashboards WHERE dashboards.id = revisions.resource_id)"
        " ELSE EXISTS (SELECT FROM canvases WHERE canvases.id = revisions.resource_id) END"
    ),
}


@dataclass(frozen=True)
class PurgeDefaults:
    """The organization settings' defaults the purge conditions fall back on."""

    run_days: int
    revision_count: int
    revision_days: int


def purge(table: str, now: datetime, defaults: PurgeDefaults, limit: int) -> int:
    """Delete up to `limit` rows of `table` matching its purge condition; rows another janitor holds are
    skipped. Returns the rows deleted."""
    query = sql.SQL(
        "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {condition}"
        " LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
    ).format(table=sql.Identifier(table), condition=sql.SQL(PURGES[table]))
    return execute(query, {"now": now, "limit": limit, **asdict(defaults)})
