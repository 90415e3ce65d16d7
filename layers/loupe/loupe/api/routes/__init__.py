"""Route modules: one Powertools Router per resource, included by its function's resolver."""

from __future__ import annotations

from loupe.api.resolver import LoupeRouter
from loupe.api.routes import auth, health

ALL_ROUTERS: tuple[LoupeRouter, ...] = (health.router, auth.router)
