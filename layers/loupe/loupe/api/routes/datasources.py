"""Routes of the datasources function: CRUD (admin writes, every role reads), connection test, schema."""

from uuid import UUID

from loupe.api.auth import Admin, Caller
from loupe.api.crud import crud_routes
from loupe.api.resolver import LoupeRouter
from loupe.models.datasources import (
    ConnectionTestOut,
    DatasourceCreate,
    DatasourceListQuery,
    DatasourceSchema,
    DatasourceUpdate,
)
from loupe.services.datasources import DATASOURCES_SERVICE

router = LoupeRouter()
TAGS = ["datasources"]

crud_routes(
    router,
    collection_path="/datasources",
    service=DATASOURCES_SERVICE,
    create_model=DatasourceCreate,
    update_model=DatasourceUpdate,
    list_query=DatasourceListQuery,
    writer=Admin,
    tag="datasources",
    names=("Datasource", "Datasources"),
    cascades=True,
)


@router.post(
    "/datasources/<datasource_id>/test",
    operation_id="testDatasource",
    errors=(404,),
    tags=TAGS,
    summary="Connect to the datasource and run a trivial query",
)
def test_connection(datasource_id: UUID, caller: Caller) -> ConnectionTestOut:
    return DATASOURCES_SERVICE.test(caller, datasource_id)


@router.get(
    "/datasources/<datasource_id>/schema",
    operation_id="getDatasourceSchema",
    errors=(404, 503),
    tags=TAGS,
    summary="The tables and columns the datasource's credentials can see",
)
def get_schema(datasource_id: UUID, caller: Caller) -> DatasourceSchema:
    return DATASOURCES_SERVICE.schema(caller, datasource_id)
