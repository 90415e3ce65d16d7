"""ETags of API.md: a resource's version as a strong validator, and the If-None-Match / If-Match headers."""

from __future__ import annotations

from loupe.versions import ExpectedVersions


def etag_of(version: str) -> str:
    return f'"{version}"'


def _listed(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def not_modified(if_none_match: str | None, version: str) -> bool:
    """True when the client's copy is current (weak comparison, as RFC 9110 asks for GET)."""
    if not if_none_match:
        return False
    tags = {tag.removeprefix("W/") for tag in _listed(if_none_match)}
    return "*" in tags or etag_of(version) in tags


def named_versions(if_none_match: str | None) -> frozenset[str]:
    """The versions If-None-Match names (weakly compared, as for `not_modified`); none for `*`."""
    tags = {tag.removeprefix("W/") for tag in _listed(if_none_match or "")}
    return frozenset(tag[1:-1] for tag in tags if len(tag) >= 2 and tag[0] == tag[-1] == '"')


def expected_versions(if_match: str | None) -> ExpectedVersions:
    """The versions a write may change, from If-Match: None without the header or with `*`. The strong
    comparison applies, so a weak or unquoted tag names no version and can never match."""
    if if_match is None:
        return None
    tags = _listed(if_match)
    if "*" in tags:
        return None
    return frozenset(tag[1:-1] for tag in tags if len(tag) >= 2 and tag[0] == tag[-1] == '"')
