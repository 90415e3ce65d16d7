"""Routes of the canvases function."""

from loupe.api.resolver import LoupeRouter

router = LoupeRouter()
