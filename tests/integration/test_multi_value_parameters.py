"""Multi-value parameters through the API: declared with `multi: true`, given as a list, bound one
placeholder per value (`IN {{ ids }}`), an empty list matching no row, the list's size and each value
checked against the declared type; the run records the list it ran with."""

from __future__ import annotations

from typing import Any

import pytest

from loupe.models.queries import MAX_MULTI_VALUES
from tests.integration import runs_support
from tests.integration.runs_support import deliver, run_query

aws = runs_support.aws
postgres_database = runs_support.postgres_database


IDS_SQL = "SELECT id, label FROM widgets WHERE id IN {{ ids }} ORDER BY id"


def saved_query(api: Any, token: str, database: str, **ids: Any) -> Any:
    return runs_support.saved_query(api, token, database, IDS_SQL, [{"name": "ids", "type": "number", **ids}])


def rows_of(api: Any, token: str, run_id: str) -> list[list[Any]]:
    rows: list[list[Any]] = api.get(f"/api/v1/runs/{run_id}/results", token=token).json()["rows"]
    return rows


def test_a_list_is_bound_value_by_value_and_an_empty_list_matches_nothing(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    token = register().access_token
    query = saved_query(api, token, postgres_database, multi=True, default=[1, 2])
    assert query.status == 201, query.body
    assert query.json()["parameters"][0]["multi"] is True
    query_id = query.json()["id"]

    chosen = run_query(api, token, query_id, parameters={"ids": [2, 4, 99]})
    defaulted = run_query(api, token, query_id)
    empty = run_query(api, token, query_id, parameters={"ids": []})
    for started in (chosen, defaulted, empty):
        assert started.status == 202, started.body
    deliver(aws)
    assert rows_of(api, token, chosen.json()["id"]) == [[2, "widget 2"], [4, "widget 4"]]
    assert rows_of(api, token, defaulted.json()["id"]) == [[1, "widget 1"], [2, "widget 2"]]
    assert rows_of(api, token, empty.json()["id"]) == []
    run = api.get(f"/api/v1/runs/{chosen.json()['id']}", token=token).json()
    assert run["parameters"] == {"ids": [2, 4, 99]}


@pytest.mark.parametrize(
    ("value", "issue"),
    [
        (3, "must be a list of values: the parameter is multi-value"),
        ([1, "two"], "value 1 must be a finite number"),
        (list(range(MAX_MULTI_VALUES + 1)), f"must hold at most {MAX_MULTI_VALUES} values"),
    ],
)
def test_a_list_of_the_wrong_shape_is_a_422_naming_it(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, value: Any, issue: str
) -> None:
    token = register().access_token
    query_id = saved_query(api, token, postgres_database, multi=True).json()["id"]
    refused = run_query(api, token, query_id, parameters={"ids": value})
    assert refused.status == 422, refused.body
    assert refused.json()["error"]["details"] == [{"field": "body.parameters.ids", "issue": issue}]


def test_declarations_keep_lists_to_multi_value_parameters(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    token = register().access_token
    single_with_list = saved_query(api, token, postgres_database, default=[1])
    assert single_with_list.status == 422
    assert "must be one value" in single_with_list.body
    multi_with_scalar = saved_query(api, token, postgres_database, multi=True, default=1)
    assert multi_with_scalar.status == 422
    assert "must be a list of values" in multi_with_scalar.body
    query_id = saved_query(api, token, postgres_database).json()["id"]
    refused = run_query(api, token, query_id, parameters={"ids": [1, 2]})
    assert refused.status == 422
    assert (
        refused.json()["error"]["details"][0]["issue"]
        == "must be one value: the parameter is not multi-value"
    )
