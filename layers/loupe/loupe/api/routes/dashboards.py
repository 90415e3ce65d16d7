"""Routes of the dashboards function."""

from loupe.api.resolver import LoupeRouter

router = LoupeRouter()
