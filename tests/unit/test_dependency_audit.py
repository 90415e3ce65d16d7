"""`make audit`'s license rule and its handling of unreachable vulnerability data."""

from __future__ import annotations

import urllib.error
from typing import Any

import pytest

from infra import audit


@pytest.mark.parametrize(
    ("license_text", "forbidden"),
    [
        ("GPL-3.0-only", True),
        ("GPL-2.0-or-later", True),
        ("AGPL-3.0", True),
        ("OSI Approved :: GNU General Public License v3 (GPLv3)", True),
        ("OSI Approved :: GNU Affero General Public License v3", True),
        ("LGPL-3.0-only", False),
        ("OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)", False),
        ("MIT; OSI Approved :: MIT License", False),
        ("Apache-2.0 OR BSD-3-Clause", False),
    ],
)
def test_the_forbidden_licenses(license_text: str, forbidden: bool) -> None:
    assert audit.PackageLicense("p", "1", license_text).forbidden is forbidden


def test_the_layer_ships_no_gpl_and_its_closure_is_complete() -> None:
    licenses = {package.name: package for package in audit.check_licenses()}
    # The layer's own requirements and what they pull in (psycopg's binary, boto3's botocore).
    assert {"psycopg", "psycopg-binary", "boto3", "botocore", "pydantic-core"} <= set(licenses)
    # The export and render functions' own layers too.
    assert {"duckdb", "vl-convert-python"} <= set(licenses)
    # Test-only tools are not in the layer.
    assert not {"pytest", "moto", "pgserver"} & set(licenses)
    assert [name for name, package in licenses.items() if package.forbidden] == []
    assert all(package.license != "UNKNOWN" for package in licenses.values())


def test_unreachable_vulnerability_data_is_reported_as_skipped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(audit.urllib.request, "urlopen", refuse)
    assert audit.main(["--pip-audit", "/nonexistent/pip-audit"]) == 0
    printed = capsys.readouterr().out
    assert "license check passed" in printed
    assert "vulnerability audit SKIPPED" in printed
    assert "no route to host" in printed
