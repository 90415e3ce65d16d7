"""Pydantic request, response and domain models."""
