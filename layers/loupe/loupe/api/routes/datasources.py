"""Routes of the datasources function: CRUD (admin writes, every role reads), connection test, schema, and
row policies (admins)."""

from typing import Any
from uuid import UUID

from aws_lambda_powertools.event_handler import Response

from loupe.api.auth import Admin, Caller
from loupe.api.crud import crud_routes
from loupe.api.openapi import conditional_read_responses
from loupe.api.prefix import API_PREFIX
from loupe.api.resolver import LoupeRouter
from loupe.api.responses import created, no_content, with_etag
from loupe.models.datasources import (
    ConnectionTestOut,
    DatasourceCreate,
    DatasourceListQuery,
    DatasourceSchema,
    DatasourceUpdate,
)
from loupe.models.row_policies import RowPolicyCreate, RowPolicyList, RowPolicyOut
from loupe.services.datasources import DATASOURCES_SERVICE
from loupe.services.row_policies import row_policy_service

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


@router.post(
    "/datasources/<datasource_id>/row-policies",
    operation_id="createRowPolicy",
    status_code=201,
    errors=(404, 409),
    tags=TAGS,
    summary="Add a row policy: the principals it names read the table only through its predicate",
)
def create_row_policy(datasource_id: UUID, body: RowPolicyCreate, caller: Admin) -> Response[RowPolicyOut]:
    made = row_policy_service.create(caller, datasource_id, body)
    return created(made, f"{API_PREFIX}/datasources/{datasource_id}/row-policies/{made.id}")


@router.get(
    "/datasources/<datasource_id>/row-policies",
    operation_id="listRowPolicies",
    errors=(404,),
    tags=TAGS,
    summary="The datasource's row policies, oldest first",
)
def list_row_policies(datasource_id: UUID, caller: Admin) -> RowPolicyList:
    return row_policy_service.list(caller, datasource_id)


@router.get(
    "/datasources/<datasource_id>/row-policies/<policy_id>",
    operation_id="getRowPolicy",
    errors=(404,),
    tags=TAGS,
    summary="A row policy",
    responses=conditional_read_responses(RowPolicyOut, "row policy"),
)
def get_row_policy(datasource_id: UUID, policy_id: UUID, caller: Admin) -> Response[Any]:
    found = row_policy_service.get(caller, datasource_id, policy_id)
    return with_etag(found.resource, found.version)


@router.delete(
    "/datasources/<datasource_id>/row-policies/<policy_id>",
    operation_id="deleteRowPolicy",
    status_code=204,
    errors=(404,),
    tags=TAGS,
    summary="Remove a row policy; runs started after it read the table without it",
)
def delete_row_policy(datasource_id: UUID, policy_id: UUID, caller: Admin) -> Response[None]:
    row_policy_service.delete(caller, datasource_id, policy_id)
    return no_content()
