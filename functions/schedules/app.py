"""Lambda entry point of the schedules function: cron schedules that refresh queries."""

from loupe.api.function import http_function
from loupe.api.routes.schedules import router

app, lambda_handler = http_function(router)
