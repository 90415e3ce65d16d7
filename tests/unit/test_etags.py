"""Versions, their ETags, and the conditional-request checks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from loupe.api.etags import etag_of, expected_versions, not_modified
from loupe.errors import VersionMismatch
from loupe.versions import require_version, version_of

ID = uuid.uuid4()
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_version_changes_with_updated_at_and_its_etag_is_quoted() -> None:
    first, second = version_of(ID, NOW), version_of(ID, NOW + timedelta(microseconds=1))
    assert first != second
    assert version_of(ID, NOW) == first
    assert etag_of(first) == f'"{first}"'


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
        ("{version}", False),  # an unquoted tag is not the ETag
    ],
)
def test_not_modified(header: str | None, expected: bool) -> None:
    version = version_of(ID, NOW)
    given = header.format(tag=etag_of(version), version=version) if header else header
    assert not_modified(given, version) is expected


def require_match(if_match: str | None, version: str) -> None:
    require_version(expected_versions(if_match), version)


def test_require_match() -> None:
    version = version_of(ID, NOW)
    tag = etag_of(version)
    require_match(None, version)
    require_match("*", version)
    require_match(tag, version)
    require_match(f'"other", {tag}', version)
    with pytest.raises(VersionMismatch):
        require_match('"stale"', version)
    with pytest.raises(VersionMismatch):
        require_match(f"W/{tag}", version)  # If-Match uses the strong comparison
    with pytest.raises(VersionMismatch):
        require_match(version, version)  # unquoted: not an entity tag
    with pytest.raises(VersionMismatch):
        require_match("", version)
