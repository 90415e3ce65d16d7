"""Lambda entry point of the canvases function:
free-form exploration boards of queries, visualizations and notes."""

from loupe.api.routes.canvases import router
from loupe.entry.http import http_function

app, lambda_handler = http_function(router)
