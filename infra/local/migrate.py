"""`make migrate`: apply pending migrations to $DATABASE_URL, or to the local stack's database."""

from __future__ import annotations

import sys

from infra.local.devstack import loupe_home, metadata_database
from loupe import migrations


def main() -> int:
    with metadata_database(loupe_home()) as database_url:
        applied = migrations.apply(database_url)
    # The ids only: the URL can carry a password.
    for migration_id in applied:
        print(f"applied: {migration_id}")
    if not applied:
        print("applied: none (the database is up to date)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
