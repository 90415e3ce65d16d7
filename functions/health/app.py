"""Lambda entry point of the health function: liveness, readiness and the API documentation."""

from loupe.api.function import http_function
from loupe.api.routes.health import router

app, lambda_handler = http_function(router, with_database=False)
