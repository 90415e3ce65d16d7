"""The floor's response: the profile row validated by a small pydantic model, rendered as a proxy response."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel


class ProfileOut(BaseModel):
    id: UUID
    email: str
    name: str
    role: str
    organization_id: UUID
    organization_name: str


def respond(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": ProfileOut.model_validate(row).model_dump_json(),
        "isBase64Encoded": False,
    }
