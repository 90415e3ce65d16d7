"""The process-wide Powertools Logger, Metrics and Tracer every function shares. Every log line goes
through the secret masking of loupe.security.redaction."""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord

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
