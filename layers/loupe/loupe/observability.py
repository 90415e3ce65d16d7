"""The process-wide Powertools Logger, Metrics and Tracer every function shares. Every log line goes
through the secret masking of loupe.security.redaction."""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from loupe.security.redaction import mask, mask_handlers

SERVICE_NAME = "loupe"


class MaskingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON lines with every field, the message and any exception text masked."""

    def serialize(self, log: LogRecord) -> str:
        masked: LogRecord = mask(log)
        return super().serialize(masked)


# POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL and POWERTOOLS_METRICS_NAMESPACE override these per function.
logger = Logger(service=SERVICE_NAME, logger_formatter=MaskingFormatter())
metrics = Metrics(namespace="Loupe", service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)

# Powertools' handler writes every line, masked; propagating would also hand each record to the root
# logger's handlers (the Lambda runtime's), a second time and unmasked.
logging.getLogger(logger.name).propagate = False
# Libraries log through the root logger, whose handlers (the Lambda runtime's) are set before this runs.
mask_handlers(logging.getLogger().handlers)


class RouteMetrics:
    """Per-route request metrics (count, latency, 4xx, 5xx) and unhandled errors by fingerprint, as EMF
    lines with their own dimension: the shared Metrics object carries only the service."""

    def request(self, route: str, status: int, duration_ms: float) -> None:
        line = EphemeralMetrics(namespace=metrics.namespace)
        line.add_dimension(name="route", value=route[:250])
        line.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
        line.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=duration_ms)
        line.add_metric(name="ClientErrors", unit=MetricUnit.Count, value=int(400 <= status < 500))
        line.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=int(status >= 500))
        line.flush_metrics()

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
