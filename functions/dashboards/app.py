"""Lambda entry point of the dashboards function:
dashboards: visualization and text tiles on a 12-column grid; embed tokens and their guests."""

from loupe.api.routes.dashboards import router
from loupe.api.routes.embed import router as embed_router
from loupe.entry.http import http_function

app, lambda_handler = http_function(router, embed_router)
