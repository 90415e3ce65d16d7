"""Lambda entry point of the auth function: registration, login, tokens, sessions."""

from loupe.api.function import http_function
from loupe.api.routes.auth import router

app, lambda_handler = http_function(router)
