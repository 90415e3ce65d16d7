"""Lambda entry point of the auth function: registration, login, tokens, sessions, passwords. Every
POST is counted against its address before it runs, whatever its outcome."""

from loupe.api.routes.auth import router
from loupe.entry.http import http_function
from loupe.services.rate_limits import count_auth_request

app, lambda_handler = http_function(router, request_gate=count_auth_request)
