"""Bounds on a JSON request body's shape, checked on its text before it is parsed.

Python's parser recurses once per level and refuses integers of more than 4,300 digits with a
ValueError: either would be a 500, and deep nesting costs memory and stack before any model sees it.
"""

from __future__ import annotations

import re

MAX_DEPTH = 64  # arrays and objects inside one another; canvas node data and chart options need a few
# A number literal's characters. PostgreSQL's jsonb writes a double in full (1e308 as 309 digits), so a
# body read back and sent again must pass; Python's parser refuses integers past 4,300 digits.
MAX_NUMBER_CHARS = 400

# Strings are blanked first, so brackets and digits inside them count for nothing. Possessive
# quantifiers keep an unterminated string from backtracking.
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_LONG_NUMBER = re.compile(rf"[-+0-9.eE]{{{MAX_NUMBER_CHARS + 1},}}")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def shape_problem(text: str) -> str | None:
    """What makes the body's shape unacceptable, or None. Malformed JSON is left to the parser."""
    skeleton = _STRING.sub('""', text)
    if _LONG_NUMBER.search(skeleton):
        return f"A number in the request body is longer than {MAX_NUMBER_CHARS} characters"
    depth = 0
    for bracket in _BRACKET.finditer(skeleton):
        depth += _DEPTH_STEP[bracket.group()]
        if depth > MAX_DEPTH:
            return f"The request body nests arrays and objects deeper than {MAX_DEPTH} levels"
    return None
