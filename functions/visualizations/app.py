"""Lambda entry point of the visualizations function: charts and tables over a query's results."""

from loupe.api.function import http_function
from loupe.api.routes.visualizations import router

app, lambda_handler = http_function(router)
