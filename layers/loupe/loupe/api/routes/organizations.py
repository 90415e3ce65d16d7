"""Routes of the organizations function."""

from loupe.api.resolver import LoupeRouter

router = LoupeRouter()
