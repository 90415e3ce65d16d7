"""The process-wide Powertools Logger, Metrics and Tracer every function shares. Every log line goes
through the secret masking of loupe.security.redaction."""

from __future__ import annotations

import functools
import json
import logging
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from loupe.security.redaction import line_might_need_masking, mask, mask_handlers

SERVICE_NAME = "loupe"


class MaskingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON lines with every field, the message and any exception text masked."""

    def serialize(self, log: LogRecord) -> str:
        line = super().serialize(log)
        # Most lines (ids, routes, timings) hold nothing to mask: one search of the line finds that.
        if not line_might_need_masking(line):
            return line
        masked: LogRecord = mask(log)
        return super().serialize(masked)


def _message_as_written(message: Any) -> Any:
    """Loupe's log messages are text: Powertools would try each one as JSON first (a tenth of a line's cost),
    and write a message such as "true" as a boolean."""
    return message


# POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL and POWERTOOLS_METRICS_NAMESPACE override these per function.
logger = Logger(
    service=SERVICE_NAME, logger_formatter=MaskingFormatter(json_deserializer=_message_as_written)
)
metrics = Metrics(namespace="Loupe", service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)

# Powertools' handler writes every line, masked; propagating would also hand each record to the root
# logger's handlers (the Lambda runtime's), a second time and unmasked.
logging.getLogger(logger.name).propagate = False
# Libraries log through the root logger, whose handlers (the Lambda runtime's) are set before this runs.
mask_handlers(logging.getLogger().handlers)


@functools.lru_cache(maxsize=256)
def _request_line(route: str) -> dict[str, Any]:
    """A route's request line as Powertools serializes it; each request puts in its time and values."""
    line = EphemeralMetrics(namespace=metrics.namespace)
    line.add_dimension(name="route", value=route)
    line.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    line.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=0)
    line.add_metric(name="ClientErrors", unit=MetricUnit.Count, value=0)
    line.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=0)
    return dict(line.serialize_metric_set())


class RouteMetrics:
    """Per-route request metrics (count, latency, 4xx, 5xx) and unhandled errors by fingerprint, as EMF
    lines with their own dimension: the shared Metrics object carries only the service."""

    def request(self, route: str, status: int, duration_ms: float) -> None:
        # Every request writes one: its line is Powertools' serialized once per route (building and
        # checking it each time was a tenth of a warm request's Python time), printed as flush_metrics does.
        if is_metrics_disabled():
            return
        line = _request_line(route[:250])
        aws = {**line["_aws"], "Timestamp": int(time.time() * 1000)}
        values = {
            "Latency": [float(duration_ms)],
            "ClientErrors": [float(400 <= status < 500)],
            "ServerErrors": [float(status >= 500)],
        }
        print(json.dumps({**line, "_aws": aws, **values}, separators=(",", ":")))  # noqa: T201  # EMF is stdout

    def unhandled_error(self, fingerprint: str) -> None:
        by_fingerprint = EphemeralMetrics(namespace=metrics.namespace)
        by_fingerprint.add_dimension(name="fingerprint", value=fingerprint[:250])
        by_fingerprint.add_metric(name="UnhandledErrors", unit=MetricUnit.Count, value=1)
        by_fingerprint.flush_metrics()
        # And once without dimensions (no service either): the total the alarm watches.
        total = EphemeralMetrics(namespace=metrics.namespace, service="")
        total.add_metric(name="UnhandledErrors", unit=MetricUnit.Count, value=1)
        total.flush_metrics()


route_metrics = RouteMetrics()
