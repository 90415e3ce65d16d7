"""ETag computation and the conditional-request checks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from loupe.errors import PreconditionFailed
from loupe.etags import etag_for, not_modified, require_match

ID = uuid.uuid4()
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_etag_changes_with_updated_at_and_is_quoted() -> None:
    first, second = etag_for(ID, NOW), etag_for(ID, NOW + timedelta(microseconds=1))
    assert first != second
    assert first.startswith('"')
    assert first.endswith('"')
    assert etag_for(ID, NOW) == first


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        ("", False),
        ("*", True),
        ("{tag}", True),
        ("W/{tag}", True),
        ('"x", {tag}', True),
        ('"x"', False),
    ],
)
def test_not_modified(header: str | None, expected: bool) -> None:
    tag = etag_for(ID, NOW)
    assert not_modified(header.format(tag=tag) if header else header, tag) is expected


def test_require_match() -> None:
    tag = etag_for(ID, NOW)
    require_match(None, tag)
    require_match("*", tag)
    require_match(tag, tag)
    require_match(f'"other", {tag}', tag)
    with pytest.raises(PreconditionFailed):
        require_match('"stale"', tag)
    with pytest.raises(PreconditionFailed):
        require_match(f"W/{tag}", tag)  # If-Match uses the strong comparison
