"""Lambda entry point of the janitor, fired daily by an EventBridge schedule: runs and results past
their organization's retention, and expired sessions, tokens and invitations, are deleted."""

from datetime import timedelta

from loupe.entry.scheduled import scheduled_function
from loupe.services.janitor import sweep

# The batch under way finishes and its metrics are written before the invocation's time is up.
lambda_handler = scheduled_function(sweep, "janitor sweep", stop_margin=timedelta(seconds=60))
