"""Bundles against generated organizations: exported, applied into an empty organization and exported
again, the two bundles are equal; random edits to a bundle plan as exactly those changes."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import factories
from tests.integration.test_bundles import apply, comparable, export, made, plan

NAMES = st.text(alphabet="abcdefghij KLM-", min_size=1, max_size=12).map(str.strip).filter(bool)
TAGS = st.lists(st.sampled_from(["finance", "ops", "weekly", "eu"]), unique=True, max_size=3)


@st.composite
def organizations(draw: st.DrawFn) -> dict[str, Any]:
    """Queries, visualizations on some of them, dashboards stacking some visualizations, canvases."""
    queries = draw(st.lists(st.tuples(NAMES, TAGS, st.integers(0, 99)), min_size=1, max_size=4))
    shown = draw(st.lists(st.tuples(st.integers(0, len(queries) - 1), NAMES), max_size=4))
    boards = draw(
        st.lists(st.tuples(NAMES, st.lists(st.integers(0, 3), max_size=3), st.booleans()), max_size=2)
    )
    canvases = draw(st.lists(st.tuples(NAMES, st.lists(st.integers(0, 3), max_size=3)), max_size=2))
    return {"queries": queries, "visualizations": shown, "dashboards": boards, "canvases": canvases}


def build(api: Any, token: str, datasource: str, spec: dict[str, Any]) -> None:
    query_ids = [
        made(
            api.post(
                "/api/v1/queries",
                json_body={
                    "name": name,
                    "datasource_id": datasource,
                    "sql": f"SELECT {number}",
                    "tags": tags,
                },
                token=token,
            )
        )["id"]
        for name, tags, number in spec["queries"]
    ]
    shown = [
        made(
            api.post(
                "/api/v1/visualizations",
                json_body={"name": name, "query_id": query_ids[index], "type": "table", "options": {}},
                token=token,
            )
        )["id"]
        for index, name in spec["visualizations"]
    ]
    for name, picks, with_text in spec["dashboards"]:
        tiles = [
            {"visualization_id": shown[pick % len(shown)], "x": 0, "y": row * 4, "w": 12, "h": 4}
            for row, pick in enumerate(picks if shown else [])
        ]
        if with_text:
            tiles.append({"text": f"# {name}", "x": 0, "y": 40, "w": 6, "h": 2})
        made(api.post("/api/v1/dashboards", json_body={"name": name, "tiles": tiles}, token=token))
    for name, picks in spec["canvases"]:
        nodes = [
            {
                "id": f"n{index}",
                "type": "query",
                "ref_id": query_ids[pick % len(query_ids)],
                "position": {"x": index, "y": 0},
            }
            for index, pick in enumerate(picks)
        ]
        made(
            api.post(
                "/api/v1/canvases",
                json_body={"name": name, "time_preset": "last_30d", "nodes": nodes},
                token=token,
            )
        )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=organizations(), edits=st.data())
def test_export_apply_export_is_the_same_bundle_and_edits_plan_as_themselves(
    api: Any, register: Any, clean_db: str, spec: dict[str, Any], edits: st.DataObject
) -> None:
    source = register()
    build(api, source.access_token, factories.datasource(clean_db, source.organization_id, "Warehouse"), spec)
    bundle = export(api, source.access_token)
    target = register()
    factories.datasource(clean_db, target.organization_id, "Warehouse")
    applied = apply(api, target.access_token, bundle)
    assert applied.status == 200, applied.body
    again = export(api, target.access_token)
    assert comparable(again) == comparable(bundle)
    assert plan(api, target.access_token, again)["changes"] == []

    edited = copy.deepcopy(again)
    expected = set()
    for kind in ("queries", "visualizations", "dashboards", "canvases"):
        for item in edited[kind]:
            if edits.draw(st.booleans(), label=f"edit {kind} {item['key']}"):
                item["name"] = item["name"] + " (edited)"
                expected.add((kind, item["key"], "/name"))
    changes = plan(api, target.access_token, edited)["changes"]
    assert {
        (change["kind"], change["key"], field["path"]) for change in changes for field in change["changes"]
    } == expected
    assert all(change["action"] == "update" for change in changes)
