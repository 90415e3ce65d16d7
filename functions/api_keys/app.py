"""Lambda entry point of the api-keys function: organization API keys: create (shown once), list, revoke."""

from loupe.api.routes.api_keys import router
from loupe.entry.http import http_function

app, lambda_handler = http_function(router)
