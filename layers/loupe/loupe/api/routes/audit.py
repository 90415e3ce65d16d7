"""Routes of the audit-events function."""

from loupe.api.resolver import LoupeRouter

router = LoupeRouter()
