"""Routes of the queries function."""

from loupe.api.resolver import LoupeRouter

router = LoupeRouter()
