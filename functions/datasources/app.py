"""Lambda entry point of the datasources function:
datasource connections: encrypted credentials, connection test, schema."""

from loupe.api.routes.datasources import router
from loupe.entry.http import http_function

app, lambda_handler = http_function(router)
