"""The sample dashboard through `make dev`: three tiles, a relative date range, a multi-value country
dropdown and a city dropdown cascading from it, drawn in one call, waited for with one long poll, and
drawn again with other values; and its report mailed into the outbox."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from infra import bundles as bundles_cli
from infra.local import sample_dashboard
from infra.local.sample_dashboard import SAMPLE_DASHBOARD
from infra.local.stack_process import StackProcess
from tests.e2e.test_local_stack import stack

__all__ = ["stack"]  # the stack's fixture, shared with this module


@pytest.fixture
def demo(stack: StackProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{stack.url}/api/v1", timeout=60) as http:
        login = http.post("/auth/login", json={"email": stack.demo_email, "password": stack.demo_password})
        assert login.status_code == 200, login.text
        http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        yield http


def settled(http: httpx.Client, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dashboard's data once none of its runs is pending, waiting with long polls in between."""
    for _ in range(10):
        answer = http.post(path, json=body) if body is not None else http.get(path)
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()
        if not data["pending_run_ids"]:
            return data
        waited = http.get("/runs", params={"ids": data["pending_run_ids"], "wait": 20})
        assert waited.status_code in (200, 304), waited.text
    raise AssertionError("the dashboard's runs did not finish")


def finished(http: httpx.Client, run_id: str) -> str:
    """The run's status once it has ended: a long poll answers at each change (queued, then running)."""
    for _ in range(10):
        status: str = http.get(f"/runs/{run_id}", params={"wait": 20}).json()["status"]
        if status not in ("queued", "running"):
            return status
    raise AssertionError(f"the run {run_id} did not end")


def options(http: httpx.Client, path: str, filters: dict[str, Any]) -> list[Any]:
    for _ in range(10):
        answer = http.post(path, json={"filters": filters})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        if not page["pending"]:
            return [item["value"] for item in page["items"]]
        assert http.get(f"/runs/{page['run_id']}", params={"wait": 20}).status_code == 200
    raise AssertionError("the filter's options did not arrive")


def test_the_sample_dashboard_draws_in_one_call_and_again_with_other_filters(demo: httpx.Client) -> None:
    [dashboard] = [
        item
        for item in demo.get("/dashboards", params={"q": SAMPLE_DASHBOARD}).json()["items"]
        if item["name"] == SAMPLE_DASHBOARD
    ]
    assert [item["name"] for item in dashboard["filters"]] == ["period", "countries", "city"]
    path = f"/dashboards/{dashboard['id']}/data"
    # The countries' options query was queued when the stack seeded the dashboard.
    countries_source = dashboard["filters"][1]["options_query"]["query_id"]
    [latest] = demo.get(f"/queries/{countries_source}/runs").json()["items"][:1]
    assert finished(demo, latest["id"]) == "succeeded"

    first = settled(demo, path)
    assert first["filters"]["period"]["preset"] == "this_year"
    assert [tile["run"]["status"] for tile in first["tiles"]] == ["succeeded"] * 3
    assert all(tile["results"]["rows"] for tile in first["tiles"])

    cities = options(demo, f"/dashboards/{dashboard['id']}/filters/city/options", {"countries": ["FR"]})
    assert "Paris" in cities
    assert "New York" not in cities
    chosen = {
        "period": {"preset": "custom", "from": "2025-01-01", "to": "2025-07-01"},
        "countries": ["FR"],
        "city": "Paris",
    }
    again = settled(demo, path, {"filters": chosen})
    assert again["filters"]["countries"] == ["FR"]
    months = [row[0][:7] for row in again["tiles"][0]["results"]["rows"]]
    assert months == [f"2025-0{month}" for month in range(1, 7)]
    assert {row[0] for row in again["tiles"][2]["results"]["rows"]} <= {
        f"2025-0{month}-01" for month in range(1, 7)
    }
    assert [tile["run"]["id"] for tile in again["tiles"]] != [tile["run"]["id"] for tile in first["tiles"]]
    outside = demo.post(path, json={"filters": {**chosen, "city": "New York"}})
    assert outside.status_code == 422
    assert outside.json()["error"]["details"][0]["field"] == "body.filters.city"


def test_the_demo_organization_moves_to_a_new_one_by_bundle_and_its_dashboard_draws_there(
    demo: httpx.Client, stack: StackProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pulled with the command line, pushed into a new organization (its datasource created
    unconfigured), configured by its admin, and the sample dashboard drawn there."""
    folder = tmp_path / "demo"
    monkeypatch.setenv("LOUPE_URL", f"{stack.url}/api/v1")
    monkeypatch.setenv("LOUPE_TOKEN", demo.headers["Authorization"].removeprefix("Bearer "))
    assert bundles_cli.main(["pull", str(folder)]) == 0
    assert list((folder / "dashboards").glob("*.yaml"))

    with httpx.Client(base_url=f"{stack.url}/api/v1", timeout=60) as fresh:
        registered = fresh.post(
            "/auth/register",
            json={
                "email": f"promoted-{secrets.token_hex(4)}@example.com",
                "password": "correct horse battery",
                "name": "Promoter",
                "organization_name": "Production",
            },
        )
        assert registered.status_code == 201, registered.text
        fresh.headers["Authorization"] = f"Bearer {registered.json()['access_token']}"
        monkeypatch.setenv("LOUPE_TOKEN", registered.json()["access_token"])
        assert bundles_cli.main(["push", str(folder)]) == 0
        assert bundles_cli.main(["push", str(folder)]) == 0  # nothing left to change

        [datasource] = fresh.get("/datasources").json()["items"]
        assert datasource["configured"] is False
        password = quote(stack.stored_secrets()["sample_reader_password"], safe="")
        configured = fresh.patch(
            f"/datasources/{datasource['id']}",
            json={
                "connection_string": f"postgresql://loupe_sample_reader:{password}@127.0.0.1:{stack.sample_port}"
                "/loupe_sample"
            },
            headers={"If-Match": fresh.get(f"/datasources/{datasource['id']}").headers["ETag"]},
        )
        assert configured.status_code == 200, configured.text
        [dashboard] = [
            item for item in fresh.get("/dashboards").json()["items"] if item["name"] == SAMPLE_DASHBOARD
        ]
        # As in any new organization, a dropdown's options query runs once before its values are checked.
        countries_source = dashboard["filters"][1]["options_query"]["query_id"]
        started = fresh.post(f"/queries/{countries_source}/runs", json={})
        assert started.status_code == 202, started.text
        waited = fresh.get(f"/runs/{started.json()['id']}", params={"wait": 20}).json()
        assert waited["status"] == "succeeded", waited
        drawn = settled(fresh, f"/dashboards/{dashboard['id']}/data")
        assert [tile["run"]["status"] for tile in drawn["tiles"]] == ["succeeded"] * 3
        assert all(tile["results"]["rows"] for tile in drawn["tiles"])


def test_the_demo_organization_mails_its_report_into_the_outbox_within_a_minute(
    demo: httpx.Client, stack: StackProcess
) -> None:
    listed = demo.get("/subscriptions").json()["items"]
    [seeded] = [item for item in listed if item["name"] == sample_dashboard.SAMPLE_REPORT]
    assert (seeded["formats"], seeded["cron"]) == (["png", "csv"], "0 8 * * 1")
    # A daily report whose slot is the next minute.
    slot = datetime.now(UTC) + timedelta(minutes=1)
    body = {**{name: seeded[name] for name in ("resource", "formats", "destination_ids")}}
    created = demo.post(
        "/subscriptions", json={**body, "name": "Right now", "cron": f"{slot.minute} {slot.hour} * * *"}
    )
    assert created.status_code == 201, created.text
    started = time.monotonic()
    outbox = stack.home / "outbox"
    deadline = started + 120
    mail: dict[str, Any] | None = None
    while mail is None and time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.json")) if outbox.exists() else []:
            written = json.loads(path.read_text())
            if written["subject"] == "Loupe report: Right now":
                mail = written
        time.sleep(1)
    assert mail is not None, "no report in the outbox"
    # Its slot is at most a minute away; drawing and sending take seconds more.
    assert time.monotonic() - started < 90
    assert mail["to"] == stack.demo_email
    names = [attachment["filename"] for attachment in mail["attachments"]]
    assert names[0] == "Right-now.png"
    assert all(name.endswith(".csv") for name in names[1:])
    assert len(names) == 4
    assert (outbox / mail["attachments"][0]["path"]).read_bytes().startswith(b"\x89PNG")
    [delivery] = demo.get(f"/subscriptions/{created.json()['id']}/deliveries").json()["items"]
    assert delivery["status"] == "delivered"
