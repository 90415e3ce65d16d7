"""Lambda entry point of the runs function: ad-hoc SQL runs, runs and their results."""

from loupe.api.function import http_function
from loupe.api.routes.runs import router

app, lambda_handler = http_function(router)
