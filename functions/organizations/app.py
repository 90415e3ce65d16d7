"""Lambda entry point of the organizations function:
organization settings, members and roles, invitations, usage."""

from loupe.api.routes.organizations import router
from loupe.entry.http import http_function

app, lambda_handler = http_function(router)
