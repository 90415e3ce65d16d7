"""Routes of the queries function: saved parameterized SQL queries (editors write, every role reads)."""

from loupe.api.crud import crud_routes
from loupe.api.resolver import LoupeRouter
from loupe.models.queries import QueryCreate, QueryListQuery, QueryUpdate
from loupe.services.queries import queries

router = LoupeRouter()

crud_routes(
    router,
    collection_path="/queries",
    service=queries,
    create_model=QueryCreate,
    update_model=QueryUpdate,
    list_query=QueryListQuery,
    tag="queries",
)
