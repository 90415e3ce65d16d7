"""Lambda entry point of the organizations function:
organization settings, members and roles, invitations, usage."""

from loupe.api.function import http_function
from loupe.api.routes.organizations import router

app, lambda_handler = http_function(router)
