"""A datasource's allowed functions and accepted risks as the API reads them, and SHOW GRANTS lines as
the MySQL connector reads them, whatever the input: valid and normalized, or refused as invalid."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from loupe.connectors import LOGIN_FINDING_CODES, MAX_FINDING_OBJECTS
from loupe.connectors.mysql import findings_from_grants
from loupe.models.datasources import MAX_ALLOWED_FUNCTIONS, DatasourceUpdate
from loupe.security.sql_guard import valid_function_name


@given(st.lists(st.text(max_size=140), max_size=MAX_ALLOWED_FUNCTIONS + 2))
def test_allowed_functions_are_valid_names_or_refused(names: list[str]) -> None:
    try:
        update = DatasourceUpdate(allowed_functions=names)
    except ValidationError:
        return
    assert update.allowed_functions is not None
    assert all(valid_function_name(name) for name in update.allowed_functions)
    assert len(set(update.allowed_functions)) == len(update.allowed_functions) <= MAX_ALLOWED_FUNCTIONS


@pytest.mark.parametrize(
    ("given_names", "kept"),
    [
        (["Upper", "upper", " public.Fiscal_Quarter "], ["upper", "public.fiscal_quarter"]),
        (["_private2"], ["_private2"]),
    ],
)
def test_allowed_functions_are_lowered_and_deduplicated(given_names: list[str], kept: list[str]) -> None:
    assert DatasourceUpdate(allowed_functions=given_names).allowed_functions == kept


@pytest.mark.parametrize("name", ["a.b.c", "1abc", "upper()", "pg sleep", "x" * 129, "schema.", "é"])
def test_names_that_are_not_function_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="not a function name"):
        DatasourceUpdate(allowed_functions=[name])


def test_accepted_risks_are_finding_codes_without_duplicates() -> None:
    assert DatasourceUpdate(accepted_risks=["superuser", "superuser"]).accepted_risks == ["superuser"]
    with pytest.raises(ValidationError):
        DatasourceUpdate.model_validate({"accepted_risks": ["root"]})


@given(st.lists(st.text(max_size=200), max_size=30))
def test_any_show_grants_text_gives_known_findings(lines: list[str]) -> None:
    for found in findings_from_grants(lines):
        assert found.code in LOGIN_FINDING_CODES
        assert len(found.objects) <= MAX_FINDING_OBJECTS
