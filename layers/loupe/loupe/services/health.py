"""Readiness checks of the dependencies a request needs."""

from __future__ import annotations

from loupe import db
from loupe.observability import logger


def check_dependencies() -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        with db.transaction() as conn:
            conn.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:  # any failure means "not ready"; the reason goes to the log only
        logger.warning("readiness: database check failed", extra={"error_type": type(error).__name__})
        checks["database"] = "unavailable"
    return checks
