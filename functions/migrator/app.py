"""Lambda entry point of the migrator: applies pending migrations, as the stack's `Migrations` custom
resource on every deploy (a failed migration fails the deploy), or when invoked directly. The SQL files
are in its package (`migrations`, the repository's infra/migrations)."""

from typing import Any

from loupe import migrations
from loupe.entry.custom_resource import custom_resource_function
from loupe.observability import logger


def migrate() -> list[str]:
    applied = migrations.apply(migrations.deployed_database_url())
    logger.info("migrations applied", extra={"applied": applied})
    return applied


def deploy() -> dict[str, str]:
    return {"Applied": ",".join(migrate()) or "none"}


def invoked() -> dict[str, Any]:
    return {"applied": migrate()}


lambda_handler = custom_resource_function(
    deploy, what="migrations", physical_resource_id="loupe-migrations", invoked=invoked
)
