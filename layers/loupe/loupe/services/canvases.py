"""Canvases: a graph of nodes (the organization's queries and visualizations, and notes) and the edges
between them, with a time window that is a preset or, for `custom`, an explicit range."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loupe.errors import FieldIssue, InvalidInput
from loupe.models.canvases import CanvasCreate, CanvasOut, CanvasUpdate, Edge, Node, TimeRange
from loupe.models.identity import Principal
from loupe.models.time_ranges import TimePreset
from loupe.repositories.canvases import CANVASES
from loupe.repositories.queries import QUERIES
from loupe.repositories.visualizations import VISUALIZATIONS
from loupe.services.resources import ResourceService, require_references

REFERENCED = {"query": QUERIES, "visualization": VISUALIZATIONS}
# A graph of 2000 edges can be wrong 4000 ways; the first few tell the client what to fix.
MAX_REPORTED_ISSUES = 50


def graph_issues(nodes: Sequence[Node], edges: Sequence[Edge]) -> list[FieldIssue]:
    """Error details for repeated node or edge ids, edges whose ends name no node, and nodes whose
    ref_id does not fit their type (query and visualization nodes need one; notes have none)."""
    issues: list[FieldIssue] = []
    node_index: dict[str, int] = {}
    for index, node in enumerate(nodes):
        if node.id in node_index:
            issues.append(FieldIssue(f"nodes.{index}.id", f"repeats the id of node {node_index[node.id]}"))
        node_index.setdefault(node.id, index)
        if node.type == "note" and node.ref_id is not None:
            issues.append(FieldIssue(f"nodes.{index}.ref_id", "a note refers to nothing"))
        if node.type != "note" and node.ref_id is None:
            issues.append(FieldIssue(f"nodes.{index}.ref_id", f"a {node.type} node needs one"))
    edge_index: dict[str, int] = {}
    for index, edge in enumerate(edges):
        if edge.id in edge_index:
            issues.append(FieldIssue(f"edges.{index}.id", f"repeats the id of edge {edge_index[edge.id]}"))
        edge_index.setdefault(edge.id, index)
        issues.extend(
            FieldIssue(f"edges.{index}.{end}", f"no node has the id {node_id!r}")
            for end, node_id in (("source", edge.source), ("target", edge.target))
            if node_id not in node_index
        )
    return issues


def _time_window(preset: TimePreset, time_range: TimeRange | None) -> dict[str, Any]:
    # A range beside a preset would be ignored by every reader: refuse it rather than store it.
    if preset == "custom" and time_range is None:
        issue = "required with the custom preset"
    elif preset != "custom" and time_range is not None:
        issue = "only with the custom preset"
    else:
        return {
            "time_from": time_range.from_ if time_range else None,
            "time_to": time_range.to if time_range else None,
        }
    raise InvalidInput(issues=[FieldIssue("time_range", issue)])


def _require_references(principal: Principal, nodes: Sequence[Node]) -> None:
    """Each ref_id names a query or visualization (as the node's type says) of the caller's organization."""
    for kind, collection in REFERENCED.items():
        require_references(
            collection,
            principal.organization_id,
            [
                (f"nodes.{index}.ref_id", node.ref_id)
                for index, node in enumerate(nodes)
                if node.type == kind and node.ref_id is not None
            ],
        )


def _graph(
    principal: Principal, nodes: Sequence[Node], edges: Sequence[Edge], new_nodes: bool
) -> dict[str, Any]:
    issues = graph_issues(nodes, edges)
    if issues:
        raise InvalidInput("The canvas graph is not valid", issues=issues[:MAX_REPORTED_ISSUES])
    if new_nodes:
        _require_references(principal, nodes)
    return {
        "nodes": [node.model_dump(mode="json") for node in nodes],
        "edges": [edge.model_dump(mode="json") for edge in edges],
    }


def _stored_range(row: dict[str, Any]) -> TimeRange | None:
    if row["time_from"] is None or row["time_to"] is None:
        return None
    return TimeRange.model_validate({"from": row["time_from"], "to": row["time_to"]})


class CanvasService(ResourceService[CanvasCreate, CanvasUpdate, CanvasOut]):
    revised = "canvas"

    def to_out(self, row: dict[str, Any]) -> CanvasOut:
        return CanvasOut.model_validate({**row, "time_range": _stored_range(row)})

    def values_for_create(self, principal: Principal, body: CanvasCreate) -> dict[str, Any]:
        return {
            "name": body.name,
            "tags": body.tags,
            "time_preset": body.time_preset,
            **_time_window(body.time_preset, body.time_range),
            **_graph(principal, body.nodes, body.edges, new_nodes=True),
        }

    def values_for_update(
        self, principal: Principal, body: CanvasUpdate, current: dict[str, Any]
    ) -> dict[str, Any]:
        values = body.model_dump(exclude_unset=True, include={"name", "tags", "time_preset"})
        if body.time_preset is not None or "time_range" in body.model_fields_set:
            preset = body.time_preset or current["time_preset"]
            time_range = body.time_range
            if "time_range" not in body.model_fields_set and preset == "custom":
                time_range = _stored_range(current)
            # Leaving `custom` without a range drops the stored one with it.
            values.update(_time_window(preset, time_range))
        if body.nodes is not None or body.edges is not None:
            nodes = (
                body.nodes
                if body.nodes is not None
                else [Node.model_validate(node) for node in current["nodes"]]
            )
            edges = (
                body.edges
                if body.edges is not None
                else [Edge.model_validate(edge) for edge in current["edges"]]
            )
            values.update(_graph(principal, nodes, edges, new_nodes=body.nodes is not None))
        return values


canvases = CanvasService(CANVASES, CanvasOut, "canvas")
