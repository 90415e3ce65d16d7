"""Routes of the datasources function."""

from loupe.api.resolver import LoupeRouter

router = LoupeRouter()
