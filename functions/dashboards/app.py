"""Lambda entry point of the dashboards function:
dashboards: visualization and text tiles on a 12-column grid."""

from loupe.api.routes.dashboards import router
from loupe.entry.http import http_function

app, lambda_handler = http_function(router)
