"""Lambda entry point of the schedules function: cron schedules that refresh queries, subscriptions that
deliver reports, and the destinations their reports and alerts go to."""

from loupe.api.routes import destinations, schedules, subscriptions
from loupe.entry.http import http_function

app, lambda_handler = http_function(schedules.router, subscriptions.router, destinations.router)
