"""The dashboard grid's overlap rule, against an independent oracle: count how often each cell is covered."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from loupe.models.dashboards import GRID_COLUMNS, MAX_TILE_HEIGHT, Tile
from loupe.services.dashboards import find_overlap


def cells(tile: Tile) -> set[tuple[int, int]]:
    return {
        (column, row) for column in range(tile.x, tile.x + tile.w) for row in range(tile.y, tile.y + tile.h)
    }


def covered_twice(tiles: list[Tile]) -> bool:
    counts = Counter(cell for tile in tiles for cell in cells(tile))
    return any(count > 1 for count in counts.values())


@st.composite
def tiles(draw: st.DrawFn, max_row: int = 30) -> Tile:
    x = draw(st.integers(0, GRID_COLUMNS - 1))
    return Tile(
        x=x,
        y=draw(st.integers(0, max_row)),
        w=draw(st.integers(1, GRID_COLUMNS - x)),
        h=draw(st.integers(1, MAX_TILE_HEIGHT)),
        text="t",
    )


@st.composite
def packed_layouts(draw: st.DrawFn) -> list[Tile]:
    """Rows of tiles stacked top to bottom; within a row, segments of the 12 columns, some left empty."""
    layout: list[Tile] = []
    top = 0
    for _ in range(draw(st.integers(0, 6))):
        height = draw(st.integers(1, MAX_TILE_HEIGHT))
        cuts = sorted(draw(st.sets(st.integers(1, GRID_COLUMNS - 1), max_size=5)))
        edges = [0, *cuts, GRID_COLUMNS]
        for left, right in pairwise(edges):
            if draw(st.booleans()):
                layout.append(Tile(x=left, y=top, w=right - left, h=draw(st.integers(1, height)), text="t"))
        top += height + draw(st.integers(0, 3))
    return draw(st.permutations(layout))


@given(packed_layouts())
def test_non_overlapping_layouts_are_accepted(layout: list[Tile]) -> None:
    assert not covered_twice(layout)
    assert find_overlap(layout) is None


@given(packed_layouts().filter(bool), st.data())
def test_a_tile_over_another_is_rejected(layout: list[Tile], data: st.DataObject) -> None:
    victim = data.draw(st.sampled_from(layout))
    column = data.draw(st.integers(victim.x, victim.x + victim.w - 1))
    row = data.draw(st.integers(victim.y, victim.y + victim.h - 1))
    # Any tile that covers one cell of another, placed anywhere in the list.
    x = data.draw(st.integers(max(0, column - 3), column))
    intruder = Tile(
        x=x,
        y=data.draw(st.integers(max(0, row - 3), row)),
        w=data.draw(st.integers(column - x + 1, GRID_COLUMNS - x)),
        h=MAX_TILE_HEIGHT,
        text="t",
    )
    position = data.draw(st.integers(0, len(layout)))
    crowded = [*layout[:position], intruder, *layout[position:]]
    overlap = find_overlap(crowded)
    assert overlap is not None
    first, second = overlap
    assert first < second
    assert cells(crowded[first]) & cells(crowded[second])


@given(st.lists(tiles(), max_size=12))
def test_agrees_with_cell_counting(layout: list[Tile]) -> None:
    assert (find_overlap(layout) is not None) == covered_twice(layout)


def test_touching_edges_do_not_overlap() -> None:
    left = Tile(x=0, y=0, w=6, h=4, text="t")
    right = Tile(x=6, y=0, w=6, h=4, text="t")
    below = Tile(x=0, y=4, w=12, h=1, text="t")
    assert find_overlap([left, right, below]) is None
    assert find_overlap([left, right, below, Tile(x=5, y=3, w=2, h=1, text="t")]) == (0, 3)
