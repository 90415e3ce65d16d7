"""Lambda entry point of the audit-events function: the organization's audit trail (admins)."""

from loupe.api.function import http_function
from loupe.api.routes.audit import router

app, lambda_handler = http_function(router)
