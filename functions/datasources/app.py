"""Lambda entry point of the datasources function:
datasource connections: encrypted credentials, connection test, schema."""

from loupe.api.function import http_function
from loupe.api.routes.datasources import router

app, lambda_handler = http_function(router)
