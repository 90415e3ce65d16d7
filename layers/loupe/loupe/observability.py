"""The process-wide Powertools Logger, Metrics and Tracer every function shares."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE_NAME = "loupe"

# POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL and POWERTOOLS_METRICS_NAMESPACE override these per function.
logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace="Loupe", service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
