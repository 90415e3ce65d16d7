"""Lambda entry point of the queries function: saved parameterized SQL queries."""

from loupe.api.routes.queries import router
from loupe.entry.http import http_function

app, lambda_handler = http_function(router)
