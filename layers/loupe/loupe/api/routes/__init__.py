"""Route modules: one Powertools Router per resource, included by its function's resolver."""

from __future__ import annotations

import importlib

from loupe.api.resolver import LoupeRouter

ROUTE_MODULES = (
    "health",
    "auth",
    "organizations",
    "api_keys",
    "datasources",
    "queries",
    "visualizations",
    "dashboards",
    "embed",
    "schedules",
    "destinations",
    "subscriptions",
    "canvases",
    "bundles",
    "audit",
    "runs",
    "rendering",
)


def all_routers() -> list[LoupeRouter]:
    """Every resource's router, for the whole-API document; imported on demand so that a function
    loads only its own routes at cold start."""
    return [importlib.import_module(f"loupe.api.routes.{name}").router for name in ROUTE_MODULES]
