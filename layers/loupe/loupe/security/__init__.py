"""Passwords, tokens and other security primitives."""
