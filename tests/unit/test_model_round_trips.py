"""Every request model, fed bodies generated from the OpenAPI document: each is accepted or refused
with a validation error (a 422), never another exception, and an accepted one survives a JSON round trip."""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from pydantic import BaseModel, SecretStr, ValidationError

from loupe import models
from loupe.api.openapi import whole_api_document

MODULES: tuple[ModuleType, ...] = tuple(
    importlib.import_module(f"loupe.models.{module.name}") for module in pkgutil.iter_modules(models.__path__)
)
DOCUMENT: dict[str, Any] = json.loads(whole_api_document())
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)


def model_named(name: str) -> type[BaseModel]:
    for module in (*MODULES, models):
        found = getattr(module, name, None)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    raise LookupError(f"no model named {name}")


def secrets_in(value: object) -> list[str]:
    """The secret texts held anywhere in a model."""
    if isinstance(value, SecretStr):
        return [value.get_secret_value()]
    if isinstance(value, BaseModel):
        return [secret for field in type(value).model_fields for secret in secrets_in(getattr(value, field))]
    if isinstance(value, list | tuple):
        return [secret for item in value for secret in secrets_in(item)]
    if isinstance(value, dict):
        return [secret for item in value.values() for secret in secrets_in(item)]
    return []


def request_bodies() -> Iterator[tuple[str, str, str]]:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            reference = body.get("schema", {}).get("$ref")
            if reference:
                yield path, method.upper(), reference.rsplit("/", 1)[-1]


BODIES = sorted(set(request_bodies()))


def test_every_request_body_is_a_known_model() -> None:
    assert len(BODIES) > 20
    for _, _, name in BODIES:
        model_named(name)


@pytest.mark.parametrize(("path", "method", "name"), BODIES, ids=[f"{m} {p}" for p, m, _ in BODIES])
def test_generated_bodies_are_accepted_and_round_trip_or_refused_as_invalid(
    path: str, method: str, name: str
) -> None:
    model = model_named(name)
    outcomes: list[str] = []

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=SCHEMA[path][method].as_strategy())
    def check(case: Any) -> None:
        try:
            parsed = model.model_validate(case.body)
        except ValidationError:
            outcomes.append("refused")
            return
        outcomes.append("accepted")
        assert model.model_validate(parsed.model_dump(exclude_unset=True)) == parsed
        # Secrets are written masked ("**********"), so only a model without one can come back from JSON.
        if not secrets_in(parsed):
            assert model.model_validate_json(parsed.model_dump_json(exclude_unset=True)) == parsed

    check()
    # A model that refused every body its own schema allows would mean the document and the model drifted.
    assert "accepted" in outcomes, outcomes
