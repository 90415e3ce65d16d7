"""Lambda entry point of the canvases function:
free-form exploration boards of queries, visualizations and notes."""

from loupe.api.function import http_function
from loupe.api.routes.canvases import router

app, lambda_handler = http_function(router)
