"""Lambda entry point of the visualizations function: charts and tables over a query's results."""

from loupe.api.routes.visualizations import router
from loupe.entry.http import http_function

app, lambda_handler = http_function(router)
