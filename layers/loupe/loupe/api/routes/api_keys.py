"""Routes of the api-keys function."""

from loupe.api.resolver import LoupeRouter

router = LoupeRouter()
