"""Lambda entry point of the runs function: ad-hoc SQL runs, runs and their results."""

from loupe.api.routes.runs import router
from loupe.entry.http import http_function

app, lambda_handler = http_function(router)
