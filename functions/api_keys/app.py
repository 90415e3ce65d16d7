"""Lambda entry point of the api-keys function: organization API keys: create (shown once), list, revoke."""

from loupe.api.function import http_function
from loupe.api.routes.api_keys import router

app, lambda_handler = http_function(router)
