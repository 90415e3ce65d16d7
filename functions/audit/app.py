"""Lambda entry point of the audit-events function: the organization's audit trail (admins)."""

from loupe.api.routes.audit import router
from loupe.entry.http import http_function

app, lambda_handler = http_function(router)
