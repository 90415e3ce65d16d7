"""Routes of the bundles function: export the organization's saved objects as one document, plan a bundle
against the organization, apply a plan (editors)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from loupe.api.auth import Caller, Editor
from loupe.api.resolver import LoupeRouter
from loupe.models.bundles import (
    Bundle,
    BundleApplied,
    BundleApplyRequest,
    BundleExportQuery,
    BundlePlan,
    BundlePlanRequest,
)
from loupe.services import bundles

router = LoupeRouter()
TAGS = ["bundles"]


@router.get(
    "/bundles",
    operation_id="exportBundle",
    tags=TAGS,
    summary="Export saved objects as one bundle, named by stable keys (never secrets)",
    responses={200: {"description": "The bundle", "content": {"application/json": {"model": Bundle}}}},
)
def export_bundle(caller: Caller, query: Annotated[BundleExportQuery, Query()]) -> Response[dict[str, Any]]:
    # Only the kinds asked for: a kind a bundle holds is one whose objects `prune` may delete.
    exported = bundles.export(caller, query.include)
    body = exported.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return Response(status_code=200, content_type="application/json", body=body)


@router.post(
    "/bundles/plan",
    operation_id="planBundle",
    tags=TAGS,
    summary="What applying a bundle would create, update and (with prune) delete, and its conflicts",
)
def plan_bundle(body: BundlePlanRequest, caller: Editor) -> BundlePlan:
    return bundles.plan_only(caller, body)


@router.post(
    "/bundles/apply",
    operation_id="applyBundle",
    errors=(409,),
    tags=TAGS,
    summary="Apply a bundle's plan in one transaction (409 if the organization changed since the plan)",
)
def apply_bundle(body: BundleApplyRequest, caller: Editor) -> BundleApplied:
    return bundles.apply(caller, body)
