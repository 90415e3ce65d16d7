"""Loupe's shared Lambda layer: models, services, repositories, connectors and HTTP glue."""
