"""The canvas graph rules: generated valid graphs pass; a dangling edge, a repeated id or a ref_id that
does not fit the node's type is named in the details."""

from __future__ import annotations

import uuid

from hypothesis import assume, given
from hypothesis import strategies as st

from loupe.errors import FieldIssue
from loupe.models.canvases import Edge, Node, Position
from loupe.services.canvases import graph_issues

element_ids = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)


def make_node(node_id: str, node_type: str) -> Node:
    return Node.model_validate(
        {
            "id": node_id,
            "type": node_type,
            "ref_id": None if node_type == "note" else uuid.uuid4(),
            "position": Position(x=0, y=0),
        }
    )


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[Node], list[Edge]]:
    node_ids = draw(st.lists(element_ids, unique=True, max_size=15))
    nodes = [
        make_node(node_id, draw(st.sampled_from(["query", "visualization", "note"]))) for node_id in node_ids
    ]
    edges: list[Edge] = []
    if node_ids:
        edge_ids = draw(st.lists(element_ids, unique=True, max_size=30))
        edges = [
            Edge(id=edge_id, source=draw(st.sampled_from(node_ids)), target=draw(st.sampled_from(node_ids)))
            for edge_id in edge_ids
        ]
    return nodes, edges


@given(graphs())
def test_valid_graphs_are_accepted(graph: tuple[list[Node], list[Edge]]) -> None:
    nodes, edges = graph
    assert graph_issues(nodes, edges) == []


@given(graphs(), element_ids, st.sampled_from(["source", "target"]), st.data())
def test_dangling_edges_are_rejected(
    graph: tuple[list[Node], list[Edge]], missing: str, end: str, data: st.DataObject
) -> None:
    nodes, edges = graph
    assume(missing not in {node.id for node in nodes})
    other = data.draw(st.sampled_from([node.id for node in nodes])) if nodes else missing
    ends = {"source": other, "target": other, end: missing}
    position = data.draw(st.integers(0, len(edges)))
    dangling = Edge(id="dangling-" + "x" * 20, **ends)
    issues = graph_issues(nodes, [*edges[:position], dangling, *edges[position:]])
    assert FieldIssue(f"edges.{position}.{end}", f"no node has the id {missing!r}") in issues


@given(graphs().filter(lambda graph: bool(graph[0])), st.data())
def test_repeated_node_ids_are_rejected(graph: tuple[list[Node], list[Edge]], data: st.DataObject) -> None:
    nodes, edges = graph
    copied = data.draw(st.sampled_from(nodes))
    issues = graph_issues([*nodes, make_node(copied.id, "note")], edges)
    assert issues == [FieldIssue(f"nodes.{len(nodes)}.id", f"repeats the id of node {nodes.index(copied)}")]


def test_ref_id_must_fit_the_type() -> None:
    query = Node.model_validate({"id": "q", "type": "query", "position": {"x": 0, "y": 0}})
    note = Node.model_validate(
        {"id": "n", "type": "note", "ref_id": uuid.uuid4(), "position": {"x": 0, "y": 0}}
    )
    repeated_edges = [Edge(id="e", source="q", target="n"), Edge(id="e", source="n", target="n")]
    assert graph_issues([query, note], repeated_edges) == [
        FieldIssue("nodes.0.ref_id", "a query node needs one"),
        FieldIssue("nodes.1.ref_id", "a note refers to nothing"),
        FieldIssue("edges.1.id", "repeats the id of edge 0"),
    ]
