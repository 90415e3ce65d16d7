"""The bundles command line against the API: pull writes a folder of one YAML file per object, an edited
file pushes as exactly that change, a second push changes nothing, a dry run changes nothing, and the same
folder promotes into another organization."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from infra import bundles as cli
from loupe.services import bundles as bundles_service
from tests import factories
from tests.integration import runs_support
from tests.integration.test_bundles import build_organization

aws = runs_support.aws


def sender(api: Any, token: str) -> cli.Send:
    """The command line's HTTP calls, answered by the API's handlers."""

    def send(method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        route, _, query = path.partition("?")
        answer = api.request(
            method,
            f"/api/v1{route}",
            json_body=body,
            token=token,
            query=dict(urllib.parse.parse_qsl(query)) or None,
        )
        if answer.status >= 400:
            raise cli.ApiError(answer.status, f"{method} {path}: HTTP {answer.status} {answer.body}")
        parsed: dict[str, Any] = answer.json()
        return parsed

    return send


def test_pull_edit_push_and_promote(
    api: Any, register: Any, clean_db: str, tmp_path: Path, capsys: Any
) -> None:
    staging = register()
    ids = build_organization(api, staging.access_token, clean_db, staging.organization_id)
    folder = tmp_path / "analytics"
    send = sender(api, staging.access_token)
    assert cli.main(["pull", str(folder)], send=send) == 0
    revenue_file = folder / "queries" / f"{ids['revenue']}.yaml"
    assert len(list((folder / "dashboards").glob("*.yaml"))) == 1
    assert len(list((folder / "queries").glob("*.yaml"))) == 2
    assert yaml.safe_load((folder / "bundle.yaml").read_text())["kinds"] == list(cli.KINDS)

    revenue = yaml.safe_load(revenue_file.read_text())
    revenue["description"] = "Net of refunds"
    revenue_file.write_text(yaml.safe_dump(revenue))
    capsys.readouterr()
    assert cli.main(["push", str(folder), "--dry-run"], send=send) == 0
    assert f"update  queries/{ids['revenue']} (/description)" in capsys.readouterr().out
    assert (
        api.get(f"/api/v1/queries/{ids['revenue']}", token=staging.access_token).json()["description"] is None
    )
    assert cli.main(["push", str(folder)], send=send) == 0
    assert "applied 1 changes" in capsys.readouterr().out
    assert cli.main(["push", str(folder)], send=send) == 0
    assert "nothing to change" in capsys.readouterr().out
    read = api.get(f"/api/v1/queries/{ids['revenue']}", token=staging.access_token).json()
    assert read["description"] == "Net of refunds"
    # The push refreshed the folder's revisions: a second edit pushes without a conflict.
    revenue = yaml.safe_load(revenue_file.read_text())
    assert revenue["revision"] == read["revision"]
    revenue["description"] = "Net of refunds and taxes"
    revenue_file.write_text(yaml.safe_dump(revenue))
    assert cli.main(["push", str(folder)], send=send) == 0
    assert "applied 1 changes" in capsys.readouterr().out

    # Pulled again, the folder holds the same files; promoted, another organization gets the objects.
    before = {path.relative_to(folder): path.read_text() for path in folder.rglob("*.yaml")}
    assert cli.main(["pull", str(folder)], send=send) == 0
    after = {path.relative_to(folder): path.read_text() for path in folder.rglob("*.yaml")}
    assert before.keys() == after.keys()
    production = register()
    factories.datasource(clean_db, production.organization_id, name="Warehouse")
    assert cli.main(["push", str(folder)], send=sender(api, production.access_token)) == 0
    promoted = api.get("/api/v1/queries", token=production.access_token).json()["items"]
    assert sorted(item["name"] for item in promoted) == ["Regions", "Revenue"]
    # A conflict stops the push with 1, before anything is applied.
    elsewhere = register()
    editor = factories.member(api, clean_db, elsewhere.organization_id, "editor")[1]["access_token"]
    assert cli.main(["push", str(folder)], send=sender(api, editor)) == 1
    assert "CONFLICT datasources/" in capsys.readouterr().out


def test_large_bundles_go_by_signed_urls_both_ways(
    api: Any, register: Any, clean_db: str, aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staging = register()
    build_organization(api, staging.access_token, clean_db, staging.organization_id)
    folder = tmp_path / "large"

    def through_moto(method: str, url: str, data: bytes | None = None) -> bytes:
        # moto answers S3 inside this process, where requests (not urllib) is intercepted.
        answer = requests.request(
            method, url, data=data, headers={"Content-Type": "application/json"}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        return answer.content

    monkeypatch.setattr(cli, "signed", through_moto)
    monkeypatch.setattr(bundles_service, "PAGE_MAX_BYTES", 100)
    assert cli.main(["pull", str(folder)], send=sender(api, staging.access_token)) == 0
    assert len(list((folder / "queries").glob("*.yaml"))) == 2
    monkeypatch.setattr(cli, "INLINE_MAX_BYTES", 100)
    production = register()
    assert cli.main(["push", str(folder)], send=sender(api, production.access_token)) == 0
    assert api.get("/api/v1/queries", token=production.access_token).json()["total"] == 2
