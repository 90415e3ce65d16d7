"""Exports of a run's rows through real API Gateway events (S3 in moto): a redirect to a signed URL of a
CSV, JSON or XLSX file beside the result; only for a succeeded run of the caller's organization."""

from __future__ import annotations

import json
from typing import Any

import requests

from tests import factories
from tests.integration import runs_support
from tests.integration.test_runs import deliver, run_query, setup_org
from tests.unit.test_results import read_sheet

# pytest finds fixtures by the module's names: these make the shared ones this module's.
aws = runs_support.aws
postgres_database = runs_support.postgres_database

WIDGETS = [[2, "widget 2"], [3, "widget 3"], [4, "widget 4"], [5, "widget 5"]]


def succeeded_run(api: Any, register: Any, queue_url: str, database: str) -> tuple[Any, str]:
    """An admin and a succeeded run of the widgets from 2 on."""
    admin, _, query_id = setup_org(api, register, database)
    run_id = run_query(api, admin.access_token, query_id, parameters={"minimum": 2}).json()["id"]
    deliver(queue_url)
    assert api.get(f"/api/v1/runs/{run_id}", token=admin.access_token).json()["status"] == "succeeded"
    return admin, run_id


def export(api: Any, token: str, run_id: str, fmt: str) -> Any:
    return api.get(f"/api/v1/runs/{run_id}/export", token=token, query={"format": fmt})


def test_a_run_exports_as_csv_json_and_xlsx_through_a_signed_url(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, run_id = succeeded_run(api, register, aws, postgres_database)
    viewer = factories.member(api, clean_db, admin.organization_id, "viewer")[1]["access_token"]

    files: dict[str, requests.Response] = {}
    for fmt in ("csv", "json", "xlsx"):
        response = export(api, viewer, run_id, fmt)
        assert response.status == 302, response.body
        location = response.header("Location")
        assert f"/runs/{run_id}/export.{fmt}?" in location
        assert "X-Amz-Signature=" in location
        files[fmt] = requests.get(location, timeout=10)
        assert files[fmt].status_code == 200
        assert files[fmt].headers["Content-Disposition"] == f'attachment; filename="run-{run_id}.{fmt}"'

    assert files["csv"].headers["Content-Type"] == "text/csv; charset=utf-8"
    assert files["csv"].content == b"id,label\r\n" + b"".join(
        f"{number},{label}\r\n".encode() for number, label in WIDGETS
    )
    assert json.loads(files["json"].content) == {
        "columns": [{"name": "id", "type": "int4"}, {"name": "label", "type": "text"}],
        "total_rows": 4,
        "truncated": False,
        "rows": WIDGETS,
    }
    assert read_sheet(files["xlsx"].content) == [
        ["id", "label"],
        *([float(number), label] for number, label in WIDGETS),
    ]


def test_only_a_succeeded_run_of_the_callers_organization_exports_in_a_known_format(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, run_id = succeeded_run(api, register, aws, postgres_database)
    token = admin.access_token

    bad_format = export(api, token, run_id, "pdf")
    assert bad_format.status == 422
    assert [detail["field"] for detail in bad_format.json()["error"]["details"]] == ["query.format"]
    missing = api.get(f"/api/v1/runs/{run_id}/export", token=token)
    assert missing.status == 422

    query_id = api.get(f"/api/v1/runs/{run_id}", token=token).json()["query_id"]
    queued = run_query(api, token, query_id, parameters={"minimum": 4}).json()
    assert queued["status"] == "queued"
    not_yet = export(api, token, queued["id"], "csv")
    assert not_yet.status == 409
    assert not_yet.json()["error"]["code"] == "conflict"

    outsider = register().access_token
    assert export(api, outsider, run_id, "csv").status == 404
    assert export(api, token, "7a9e4c1d-2b3f-4e5a-8c6d-9f0e1a2b3c4d", "csv").status == 404
