"""Lambda entry point of the dashboards function:
dashboards: visualization and text tiles on a 12-column grid."""

from loupe.api.function import http_function
from loupe.api.routes.dashboards import router

app, lambda_handler = http_function(router)
