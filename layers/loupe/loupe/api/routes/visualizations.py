"""Routes of the visualizations function."""

from loupe.api.resolver import LoupeRouter

router = LoupeRouter()
