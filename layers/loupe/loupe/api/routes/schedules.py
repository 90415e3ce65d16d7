"""Routes of the schedules function."""

from loupe.api.resolver import LoupeRouter

router = LoupeRouter()
