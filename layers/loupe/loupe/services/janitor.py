"""The daily janitor: results and runs past their organization's retention are deleted with their
stored objects, then expired sessions, tokens, resets, invitations and old login attempts are purged.
Bounded batches, each in its own short transaction; running it twice changes nothing more."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from loupe import db
from loupe.config import ConfigurationError, get_settings
from loupe.models.organizations import OrganizationSettings
from loupe.observability import metrics
from loupe.repositories import retention
from loupe.results.store import delete_run_objects

# Runs per batch: each costs an S3 listing, so a batch stays well inside a minute.
RUN_BATCH = 200
# Rows per purge statement.
PURGE_BATCH = 1000
DEFAULTS = OrganizationSettings()
PURGE_DEFAULTS = retention.PurgeDefaults(
    run_days=DEFAULTS.run_retention_days,
    revision_count=DEFAULTS.revision_retention_count,
    revision_days=DEFAULTS.revision_retention_days,
)


def sweep(now: datetime, deadline: datetime | None = None) -> dict[str, int]:
    """One pass of everything the janitor does, stopping at `deadline` (the next pass goes on where
    this one stopped); the count of what each step removed."""
    bucket = get_settings().results_bucket
    if bucket is None:
        raise ConfigurationError("the janitor needs LOUPE_RESULTS_BUCKET to delete stored results")

    def in_time() -> bool:
        return deadline is None or datetime.now(now.tzinfo) < deadline

    counts = {"results_expired": 0, "runs_deleted": 0, "objects_deleted": 0}

    def runs_step(
        find: Callable[[], list[dict[str, Any]]], apply: Callable[[list[Any]], int], key: str
    ) -> None:
        while in_time():
            with db.transaction():
                found = find()
            if not found:
                return
            # Objects first: a row deleted while its objects stayed would leave them with no owner.
            counts["objects_deleted"] += delete_run_objects(
                bucket, [(run["organization_id"], run["id"]) for run in found]
            )
            with db.transaction():
                counts[key] += apply([run["id"] for run in found])
            if len(found) < RUN_BATCH:
                return

    # Old runs first: their results go with them, not counted as expired.
    runs_step(
        lambda: retention.runs_to_delete(DEFAULTS.run_retention_days, now, RUN_BATCH),
        retention.delete_runs,
        "runs_deleted",
    )
    runs_step(
        lambda: retention.results_to_expire(DEFAULTS.result_retention_days, now, RUN_BATCH),
        retention.forget_results,
        "results_expired",
    )
    for table in retention.PURGES:
        counts[f"{table}_purged"] = 0
        while in_time():
            with db.transaction():
                deleted = retention.purge(table, now, PURGE_DEFAULTS, PURGE_BATCH)
            counts[f"{table}_purged"] += deleted
            if deleted < PURGE_BATCH:
                break
    for name, value in counts.items():
        metrics.add_metric(name="Janitor" + name.title().replace("_", ""), unit=MetricUnit.Count, value=value)
    return counts
