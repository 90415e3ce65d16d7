"""The process-wide Powertools Logger, Metrics and Tracer every function shares, and each API request's
line (its access record and metrics, ADR 21). Every log line's secrets are masked
(loupe.security.redaction)."""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from loupe.security.redaction import line_might_need_masking, mask, mask_handlers, mask_text

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


# Named here, so POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE do not change them (the request
# line's metrics take the function's service from the former); POWERTOOLS_LOG_LEVEL sets the level.
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


# What Powertools' formatter fills in for each record; its other keys are the invocation's context
# (service, correlation id, the Lambda context), which every line of the invocation carries.
_PER_RECORD_KEYS = frozenset({"level", "location", "message", "timestamp"})


@functools.lru_cache(maxsize=256)
def _request_metrics(route: str) -> tuple[dict[str, Any], str]:
    """A route's request metrics as Powertools serializes them: the line's members (the dimensions and
    the metrics' values, which each request replaces) and the metric directive, written as JSON."""
    line = EphemeralMetrics(namespace=metrics.namespace)
    line.add_dimension(name="route", value=route)
    line.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    line.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=0)
    line.add_metric(name="ClientErrors", unit=MetricUnit.Count, value=0)
    line.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=0)
    serialized: dict[str, Any] = dict(line.serialize_metric_set())
    directive = json.dumps(serialized.pop("_aws")["CloudWatchMetrics"], separators=(",", ":"))
    return serialized, directive


def _invocation_context() -> dict[str, Any]:
    """The keys every log line of this invocation carries, as Powertools' formatter writes them."""
    # A copy first: in the local stack other functions' threads append keys to the same logger.
    keys = dict(logger.get_current_keys())
    context = {
        name: value for name, value in keys.items() if name not in _PER_RECORD_KEYS and value is not None
    }
    trace_header = os.environ.get("_X_AMZN_TRACE_ID")
    if trace_header:
        context["xray_trace_id"] = trace_header.split(";")[0].replace("Root=", "")
    return context


def write_request_line(route: str, status: int, duration_ms: float, **access: Any) -> None:
    """A request's one line: its access record with the invocation's log context and, unless metrics are
    disabled, its metrics (count, latency, 4xx, 5xx by route) as an EMF record (ADR 21).

    Written whatever the log level: it is the request's metrics too. Its values are ids, numbers and
    names Loupe chose, but for a route no rule matched: that one is the client's path, masked."""
    route = mask_text(route)
    record = {
        "level": "INFO",
        "message": "request",
        **_invocation_context(),
        "route": route,
        "status": status,
        "duration_ms": duration_ms,
        **{name: value for name, value in access.items() if value is not None},
    }
    if is_metrics_disabled():
        print(json.dumps(record, separators=(",", ":"), default=str))  # noqa: T201  # Lambda ships stdout
        return
    members, directive = _request_metrics(route[:250])
    record.update(members)
    record["Latency"] = [float(duration_ms)]
    record["ClientErrors"] = [float(400 <= status < 500)]
    record["ServerErrors"] = [float(status >= 500)]
    # Each route's directive is serialized once; the record, never empty, ends with its closing brace.
    aws = f'{{"Timestamp":{int(time.time() * 1000)},"CloudWatchMetrics":{directive}}}'
    print(f'{json.dumps(record, separators=(",", ":"), default=str)[:-1]},"_aws":{aws}}}')  # noqa: T201  # EMF is stdout


def count_unhandled_error(fingerprint: str) -> None:
    """An unhandled error's EMF lines: one by fingerprint, and the total the alarm watches."""
    by_fingerprint = EphemeralMetrics(namespace=metrics.namespace)
    by_fingerprint.add_dimension(name="fingerprint", value=fingerprint[:250])
    by_fingerprint.add_metric(name="UnhandledErrors", unit=MetricUnit.Count, value=1)
    by_fingerprint.flush_metrics()
    # Without dimensions (no service either): the total.
    total = EphemeralMetrics(namespace=metrics.namespace, service="")
    total.add_metric(name="UnhandledErrors", unit=MetricUnit.Count, value=1)
    total.flush_metrics()
