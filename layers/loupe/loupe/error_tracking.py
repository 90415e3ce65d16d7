"""Optional error tracking: with LOUPE_SENTRY_DSN set, sentry-sdk's Lambda integration reports
unhandled errors (with their fingerprint and error_id), masked like the logs; without it, nothing is
imported."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from loupe.config import get_settings
from loupe.security.redaction import mask

if TYPE_CHECKING:
    from sentry_sdk.types import Event


def _masked_event(event: Event, hint: dict[str, Any]) -> Event | None:
    masked: Event = mask(event)
    return masked


@functools.cache
def enabled() -> bool:
    """Start Sentry once per process when a DSN is configured; whether it is on."""
    dsn = get_settings().sentry_dsn
    if dsn is None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.aws_lambda import AwsLambdaIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=dsn.get_secret_value(),
        # Log lines are breadcrumbs, not events: an error is reported once, by report(), with its
        # error_id and fingerprint (an event from the log line would be deduplicated in its place).
        integrations=[AwsLambdaIntegration(timeout_warning=True), LoggingIntegration(event_level=None)],
        environment=get_settings().env.value,
        include_local_variables=False,
        traces_sample_rate=0.0,
        before_send=_masked_event,
    )
    return True


def report(error: BaseException, error_id: str, fingerprint: str) -> None:
    """Send an error the API answered with a 500 (so the integration never sees it raised)."""
    if not enabled():
        return
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        scope.set_tag("error_id", error_id)
        scope.set_tag("fingerprint", fingerprint)
        scope.fingerprint = [fingerprint]
        sentry_sdk.capture_exception(error)
