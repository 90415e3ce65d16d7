"""Lambda entry point of the bundles function:
saved objects exported, planned and applied as one document."""

from loupe.api.routes.bundles import router
from loupe.entry.http import http_function

app, lambda_handler = http_function(router)
