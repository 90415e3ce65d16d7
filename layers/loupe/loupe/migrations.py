"""Yoyo SQL schema migrations (infra/migrations): apply, roll back and list pending ones,
from the CLI (`python -m loupe.migrations`) or the migrator Lambda (`lambda_handler`)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from yoyo import get_backend, read_migrations
from yoyo.migrations import MigrationList

from loupe.config import environment

logger = logging.getLogger(__name__)

_YOYO_SCHEME = "postgresql+psycopg"
_ACCEPTED_SCHEMES = frozenset({"postgresql", "postgres", _YOYO_SCHEME})
# Seconds to wait for another process's migration lock before giving up.
_LOCK_TIMEOUT_SECONDS = 60


def migrations_dir() -> Path:
    """The folder holding the migration files.

    `LOUPE_MIGRATIONS_DIR` wins; then `infra/migrations` of the source tree this file lives in;
    then `$LAMBDA_TASK_ROOT`, where the migrator function's package carries the SQL files.
    """
    configured = os.environ.get("LOUPE_MIGRATIONS_DIR")
    if configured:
        return Path(configured)
    parents = Path(__file__).resolve().parents
    if len(parents) > 3:
        in_repo = parents[3] / "infra" / "migrations"
        if in_repo.is_dir():
            return in_repo
    task_root = os.environ.get("LAMBDA_TASK_ROOT")
    if task_root:
        return Path(task_root)
    raise FileNotFoundError("no migrations folder found; set LOUPE_MIGRATIONS_DIR")


def _yoyo_url(database_url: str) -> str:
    """The URL with yoyo's psycopg 3 scheme; query arguments such as ?host=/tmp/sock are kept."""
    parts = urlsplit(database_url)
    if parts.scheme.lower() not in _ACCEPTED_SCHEMES:
        # The message names the scheme only: the URL itself carries the password.
        raise ValueError(f"unsupported database URL scheme {parts.scheme!r}; expected postgresql://")
    return urlunsplit(parts._replace(scheme=_YOYO_SCHEME))


def _read(directory: Path | None) -> Any:
    return read_migrations(str(directory or migrations_dir()))


def _ids(migrations: Any) -> list[str]:
    return [str(migration.id) for migration in migrations]


def apply(database_url: str, directory: Path | None = None) -> list[str]:
    """Apply every pending migration under yoyo's lock; return the ids applied, in order."""
    migrations = _read(directory)
    with get_backend(_yoyo_url(database_url)) as backend, backend.lock(_LOCK_TIMEOUT_SECONDS):
        to_apply = backend.to_apply(migrations)
        backend.apply_migrations(to_apply)
        return _ids(to_apply)


def rollback(database_url: str, count: int | None = None, directory: Path | None = None) -> list[str]:
    """Roll back the last `count` applied migrations (all when None); return their ids, newest first."""
    if count is not None and count < 0:
        raise ValueError("count must not be negative")
    migrations = _read(directory)
    with get_backend(_yoyo_url(database_url)) as backend, backend.lock(_LOCK_TIMEOUT_SECONDS):
        applied = list(backend.to_rollback(migrations))
        to_rollback = MigrationList(applied if count is None else applied[:count])
        backend.rollback_migrations(to_rollback)
        return _ids(to_rollback)


def pending(database_url: str, directory: Path | None = None) -> list[str]:
    """The ids of the migrations not yet applied, in the order they would be applied."""
    migrations = _read(directory)
    with get_backend(_yoyo_url(database_url)) as backend:
        return _ids(backend.to_apply(migrations))


def main(argv: list[str] | None = None) -> int:
    """`python -m loupe.migrations apply | rollback [--count N | --all] | pending`, using $DATABASE_URL."""
    parser = argparse.ArgumentParser(prog="python -m loupe.migrations", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("apply", help="apply every pending migration")
    undo = commands.add_parser("rollback", help="roll back the most recent migrations")
    how_many = undo.add_mutually_exclusive_group()
    how_many.add_argument("--count", type=int, default=1, help="how many to roll back (default 1)")
    how_many.add_argument("--all", action="store_true", help="roll back every applied migration")
    commands.add_parser("pending", help="list the migrations not yet applied")
    args = parser.parse_args(argv)

    database_url = environment().get("DATABASE_URL")
    if not database_url:
        print("DATABASE_URL (or LOUPE_DATABASE_SECRET_ARN) is not set", file=sys.stderr)
        return 2

    if args.command == "apply":
        ids = apply(database_url)
        verb = "applied"
    elif args.command == "rollback":
        if args.count < 0:
            parser.error("--count must not be negative")
        ids = rollback(database_url, count=None if args.all else args.count)
        verb = "rolled back"
    else:
        ids = pending(database_url)
        verb = "pending"
    for migration_id in ids:
        print(f"{verb}: {migration_id}")
    if not ids:
        print(f"{verb}: none")
    return 0


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """The migrator function: apply pending migrations (run once per deploy)."""
    applied = apply(environment()["DATABASE_URL"])
    logger.info("migrations applied", extra={"applied": applied})
    return {"applied": applied}


if __name__ == "__main__":
    sys.exit(main())
