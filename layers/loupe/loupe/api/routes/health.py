"""Routes of the health function: liveness, readiness, and the API's own documentation."""

from pathlib import Path
from typing import Any, Literal

import aws_lambda_powertools.event_handler.openapi.swagger_ui as bundled_swagger_ui
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html
from pydantic import BaseModel, ConfigDict

from loupe.api.openapi import whole_api_document
from loupe.api.resolver import LoupeRouter
from loupe.services import health

router = LoupeRouter()
TAGS = ["health"]

SWAGGER_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


class Liveness(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ok", "checks": {"database": "ok"}}]}
    )

    status: Literal["ok", "unavailable"]
    checks: dict[str, str]


@router.get(
    "/health",
    operation_id="getLiveness",
    authenticated=False,
    tags=TAGS,
    summary="Liveness: the function runs",
)
def liveness() -> Liveness:
    return Liveness()


@router.get(
    "/health/ready",
    operation_id="getReadiness",
    authenticated=False,
    errors=(503,),
    tags=TAGS,
    summary="Readiness: dependencies answer",
    responses={
        503: {"description": "A dependency is down", "content": {"application/json": {"model": Readiness}}}
    },
)
def readiness() -> Response[Readiness]:
    checks = health.check_dependencies()
    ready = all(result == "ok" for result in checks.values())
    return Response(
        status_code=200 if ready else 503,
        content_type="application/json",
        body=Readiness(status="ok" if ready else "unavailable", checks=checks),
    )


@router.get("/openapi.json", operation_id="getOpenApiDocument", authenticated=False, include_in_schema=False)
def openapi_document() -> Response[Any]:
    return Response(status_code=200, content_type="application/json", body=whole_api_document())


@router.get("/docs", operation_id="getSwaggerUi", authenticated=False, include_in_schema=False)
def swagger_ui() -> Response[Any]:
    assets = Path(bundled_swagger_ui.__file__).parent
    page = generate_swagger_html(
        whole_api_document().replace("</", "<\\/"),
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        swagger_base_url="",
        oauth2_config=None,
        persist_authorization=False,
    )
    # Without an icon of its own the browser asks for /favicon.ico, outside the API: a 403 and a
    # console error on every visit.
    page = page.replace("<head>", '<head>\n    <link rel="icon" href="data:,">', 1)
    return Response(
        status_code=200,
        content_type="text/html",
        body=page,
        headers={"Content-Security-Policy": SWAGGER_CSP},
    )
