"""Lambda entry point of the health function: liveness, readiness and the API documentation."""

from loupe.api.routes.health import router
from loupe.entry.http import http_function

app, lambda_handler = http_function(router, with_database=False)
