"""Lambda entry point of the schedules function: cron schedules that refresh queries, and the destinations
their reports and alerts are delivered to."""

from loupe.api.routes import destinations, schedules
from loupe.entry.http import http_function

app, lambda_handler = http_function(schedules.router, destinations.router)
