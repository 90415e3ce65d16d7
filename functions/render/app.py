"""Lambda entry point of the render function: visualizations and dashboards drawn as pictures."""

from loupe.api.routes.rendering import router
from loupe.entry.http import http_function

app, lambda_handler = http_function(router)
