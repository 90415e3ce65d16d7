"""Routes of the bundles function: export the organization's saved objects as one document, plan a bundle
against the organization, apply a plan (editors); bundles too large for a request or response pass by
short-lived signed URLs."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from loupe.api.auth import Caller, Editor
from loupe.api.resolver import LoupeRouter
from loupe.models.bundles import (
    Bundle,
    BundleApplied,
    BundleApplyRequest,
    BundleDownload,
    BundleExportQuery,
    BundlePlan,
    BundlePlanRequest,
    BundleUpload,
)
from loupe.services import bundles

router = LoupeRouter()
TAGS = ["bundles"]


@router.get(
    "/bundles",
    operation_id="exportBundle",
    errors=(409,),
    tags=TAGS,
    summary="Export saved objects as one bundle, named by stable keys (never secrets)",
    description="Only the kinds asked for (all by default). A bundle larger than a response is a 409:"
    " GET /bundles/download gives a signed URL of it instead.",
    responses={200: {"description": "The bundle", "content": {"application/json": {"model": Bundle}}}},
)
def export_bundle(caller: Caller, query: Annotated[BundleExportQuery, Query()]) -> Response[dict[str, Any]]:
    body = bundles.export_document(caller, query.include)
    return Response(status_code=200, content_type="application/json", body=body)


@router.get(
    "/bundles/download",
    operation_id="exportBundleToUrl",
    errors=(503,),
    tags=TAGS,
    summary="Export a bundle as a short-lived signed URL of it (for one larger than a response)",
)
def export_bundle_to_url(caller: Caller, query: Annotated[BundleExportQuery, Query()]) -> BundleDownload:
    return bundles.export_url(caller, query.include)


@router.post(
    "/bundles/uploads",
    operation_id="createBundleUpload",
    status_code=201,
    errors=(503,),
    tags=TAGS,
    summary="A short-lived signed URL to PUT a bundle too large for a request; plan and apply it by id",
)
def create_bundle_upload(caller: Editor) -> Response[BundleUpload]:
    return Response(status_code=201, content_type="application/json", body=bundles.new_upload(caller))


@router.post(
    "/bundles/plan",
    operation_id="planBundle",
    errors=(404, 503),
    tags=TAGS,
    summary="What applying a bundle would create, update and (with prune) delete, and its conflicts",
)
def plan_bundle(body: BundlePlanRequest, caller: Editor) -> BundlePlan:
    return bundles.plan_only(caller, body)


@router.post(
    "/bundles/apply",
    operation_id="applyBundle",
    errors=(404, 409, 503),
    tags=TAGS,
    summary="Apply a bundle's plan in one transaction (409 if the organization changed since the plan)",
)
def apply_bundle(body: BundleApplyRequest, caller: Editor) -> BundleApplied:
    return bundles.apply(caller, body)
