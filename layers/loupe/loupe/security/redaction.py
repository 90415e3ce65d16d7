"""Masks secrets wherever a log line could carry them: values of sensitive keys in structured fields,
and passwords in URLs, bearer and JSON web tokens, Loupe's own tokens and `password=...` pairs in text."""

from __future__ import annotations

import functools
import logging
import re
import traceback
from collections.abc import Iterable
from typing import Any

MASK = "****"
# Keys whose values are secrets whatever they hold (matched anywhere in the key, any case).
SENSITIVE_KEY = re.compile(
    r"password|passwd|secret|token|authorization|api[_-]?key|cookie|connection_string|credential|dsn",
    re.IGNORECASE,
)
# Keys that only look sensitive: their values are safe and useful.
SAFE_KEYS = frozenset({"token_type", "expires_in", "api_key_id", "secret_arn_set"})
TEXT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host (up to the last @ before the path: a raw @ in a password too)
    (re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]*):[^\s/]+@", re.IGNORECASE), rf"\1:{MASK}@"),
    (re.compile(r"(bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), rf"\1{MASK}"),
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), MASK),
    # Refresh tokens, API keys, reset tokens.
    (re.compile(r"\b(lrt_|lk_|lpr_)[A-Za-z0-9_-]{6,}"), rf"\1{MASK}"),
    # password=..., "token": "...", api_key: ... in free text (libpq DSNs, driver messages).
    (
        re.compile(
            r"""(?i)\b(password|passwd|pwd|secret|token|api[_-]?key)(["']?\s*[=:]\s*["']?)([^"'\s,;&}]+)"""
        ),
        rf"\1\2{MASK}",
    ),
)


# Text that none of the patterns above could match is returned as it is, after one search: most log
# values (ids, routes, timings) never contain these.
MIGHT_HOLD_A_SECRET = re.compile(
    r"://|eyJ|l(?:rt|k|pr)_|bearer|pass|pwd|secret|token|api[_-]?key", re.IGNORECASE
)


# The two searches above in one, for the lower-cased JSON line of a whole structure (a case-blind
# search of a long line is ten times slower). JSON escaping leaves letters, digits and `_-:/` as they
# are, so a sensitive key or a secret's marker shows in the line as it is.
_LINE_MARKERS = re.compile(f"{MIGHT_HOLD_A_SECRET.pattern}|{SENSITIVE_KEY.pattern}".lower())


def line_might_need_masking(line: str) -> bool:
    """False only when `mask` would change nothing in the structure serialized as this JSON line."""
    # Past ASCII, case-blind matching knows more than lower-casing does (the Kelvin sign is a K).
    return not line.isascii() or _LINE_MARKERS.search(line.lower()) is not None


def mask_text(text: str) -> str:
    if not MIGHT_HOLD_A_SECRET.search(text):
        return text
    for pattern, replacement in TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


@functools.lru_cache(maxsize=512)
def _sensitive(key: str) -> bool:
    return key not in SAFE_KEYS and SENSITIVE_KEY.search(key) is not None


def mask(value: Any, key: str | None = None) -> Any:
    """The value with every secret in it masked; dicts and lists are walked."""
    if key is not None and _sensitive(key) and value not in (None, ""):
        return MASK
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {name: mask(item, str(name)) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # Anything else (an exception, a UUID, a path) is written as its text: mask that text.
    return mask_text(str(value))


class MaskingFilter(logging.Filter):
    """For loggers other than Powertools' (libraries logging through the root logger): the message, its
    arguments and any traceback are masked before the handler formats them."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = mask_text(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            # logging.Formatter prints exc_text when set, instead of formatting exc_info again.
            record.exc_text = mask_text("".join(traceback.format_exception(*record.exc_info)).rstrip())
        return True


def mask_handlers(handlers: Iterable[logging.Handler]) -> None:
    """Give each handler the masking filter, once."""
    for handler in handlers:
        if not any(isinstance(existing, MaskingFilter) for existing in handler.filters):
            handler.addFilter(MaskingFilter())
