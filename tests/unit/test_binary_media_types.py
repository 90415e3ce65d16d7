"""The local gateway hands a base64 body back as bytes exactly when API Gateway would: when the first type
of the request's Accept header is one of the template's BinaryMediaTypes; any other client gets the text."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from infra.local.gateway import Gateway, HttpRequest, binary_media_types
from infra.local.template_routes import ApiRoute

PICTURE = b"\x89PNG\r\n\x1a\n\x00\xff"


def answer_with_picture(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "multiValueHeaders": {"Content-Type": ["image/png"]},
        "body": base64.b64encode(PICTURE).decode(),
        "isBase64Encoded": True,
    }


def gateway() -> Gateway:
    route = ApiRoute("PictureFunction", "/picture", "GET", Path(), "app.lambda_handler")
    return Gateway(route=lambda method, path: (route, {}), handler_for=lambda name: answer_with_picture)


def test_the_template_declares_the_picture_types_binary() -> None:
    assert binary_media_types() == {"image/png", "application/pdf"}


@pytest.mark.parametrize(
    ("accept", "binary"),
    [
        ("image/png", True),
        ("IMAGE/PNG;q=0.9, */*", True),
        ("application/pdf", True),
        ("text/html, image/png", False),
        ("*/*", False),
        (None, False),
    ],
)
def test_a_base64_body_is_bytes_only_for_a_client_that_accepts_a_binary_type_first(
    accept: str | None, binary: bool
) -> None:
    headers = [("Accept", accept)] if accept else []
    response = gateway().handle(HttpRequest("GET", "/picture", headers))
    assert response.status == 200
    assert response.body == (PICTURE if binary else base64.b64encode(PICTURE))
