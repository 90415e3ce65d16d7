"""Lambda entry point of the schedules function: cron schedules that refresh queries."""

from loupe.api.routes.schedules import router
from loupe.entry.http import http_function

app, lambda_handler = http_function(router)
