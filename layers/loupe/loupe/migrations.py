"""Yoyo SQL schema migrations (infra/migrations): apply, roll back and list pending ones, from the CLI
(`python -m loupe.migrations`) or the migrator function (functions/migrator), which a deploy runs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from yoyo import get_backend, read_migrations
from yoyo.migrations import MigrationList

from loupe import db
from loupe.config import environment

_YOYO_SCHEME = "postgresql+psycopg"
_ACCEPTED_SCHEMES = frozenset({"postgresql", "postgres", _YOYO_SCHEME})
# Seconds to wait for another process's migration lock before giving up.
_LOCK_TIMEOUT_SECONDS = 60


def migrations_dir() -> Path:
    """The folder holding the migration files.

    `LOUPE_MIGRATIONS_DIR` wins; then `infra/migrations` of the source tree this file lives in;
    then `migrations` under `$LAMBDA_TASK_ROOT`, where the migrator function's package carries them.
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
        return Path(task_root) / "migrations"
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


# pg_advisory_lock key held while migrating (any constant; only migrations take it).
MIGRATION_LOCK_KEY = 7_467_001


class MigrationLocked(RuntimeError):
    """Another process has been migrating for longer than the lock timeout."""


@contextmanager
def migration_lock(database_url: str, timeout_seconds: int = _LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """A session advisory lock around a migration: a second deploy waits for the first, then finds
    nothing pending, instead of racing it."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"SET lock_timeout = '{int(timeout_seconds)}s'")
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        except psycopg.errors.LockNotAvailable:
            raise MigrationLocked(f"another migration held the lock for over {timeout_seconds} s") from None
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))


# A paused Aurora cluster resumes in about 15 s; the migrator (5 minutes) waits up to this for it.
_WAKE_WAIT_SECONDS = 120


def _wait_until_reachable(database_url: str, wait_seconds: float = _WAKE_WAIT_SECONDS) -> None:
    """Return once the database answers a connection; a refusal (a wrong login) is raised at once."""

    def answered(timeout: int) -> None:
        psycopg.connect(database_url, connect_timeout=timeout).close()

    db.while_waking(answered, wait_seconds, timeout_seconds=10)


def apply(database_url: str, directory: Path | None = None) -> list[str]:
    """Apply every pending migration under the migration lock; return the ids applied, in order."""
    migrations = _read(directory)
    backend_url = _yoyo_url(database_url)  # refuses other schemes before any connection
    _wait_until_reachable(database_url)
    with (
        migration_lock(database_url),
        get_backend(backend_url) as backend,
        backend.lock(_LOCK_TIMEOUT_SECONDS),
    ):
        to_apply = backend.to_apply(migrations)
        backend.apply_migrations(to_apply)
        return _ids(to_apply)


def rollback(database_url: str, count: int | None = None, directory: Path | None = None) -> list[str]:
    """Roll back the last `count` applied migrations (all when None); return their ids, newest first."""
    if count is not None and count < 0:
        raise ValueError("count must not be negative")
    migrations = _read(directory)
    backend_url = _yoyo_url(database_url)
    with (
        migration_lock(database_url),
        get_backend(backend_url) as backend,
        backend.lock(_LOCK_TIMEOUT_SECONDS),
    ):
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


def deployed_database_url() -> str:
    """The deployed database's URL with the functions' TLS settings (LOUPE_DB_SSLMODE): the migrator
    connects as the master login, and verifies the server as they do."""
    from loupe.config import get_settings
    from loupe.db import tls_options

    url = environment()["DATABASE_URL"]
    parts = urlsplit(url)
    query = "&".join(
        [parts.query, *(f"{name}={value}" for name, value in tls_options(get_settings()).items())]
    ).strip("&")
    return urlunsplit(parts._replace(query=query))


if __name__ == "__main__":
    sys.exit(main())
