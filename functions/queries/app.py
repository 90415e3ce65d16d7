"""Lambda entry point of the queries function: saved parameterized SQL queries."""

from loupe.api.function import http_function
from loupe.api.routes.queries import router

app, lambda_handler = http_function(router)
