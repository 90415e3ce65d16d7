"""The shared list query on a real table: tenancy, filters, search, sort validation and paging."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loupe import db
from loupe.errors import InvalidListQuery
from loupe.models.common import ListQuery, ResourceListQuery
from loupe.repositories.listing import Collection, list_page, parse_sort

PROBES = Collection(
    table="listing_probe",
    columns=("id", "organization_id", "name", "description", "tags", "created_at", "updated_at"),
    sortable=frozenset({"name", "created_at", "updated_at"}),
    searchable=("name", "description"),
    filters=frozenset({"kind"}),
)
ORG_A, ORG_B = uuid.uuid4(), uuid.uuid4()
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def probe_table(database_url: str) -> Iterator[str]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE listing_probe (id uuid PRIMARY KEY, organization_id uuid NOT NULL,"
            " name text NOT NULL, description text, kind text, tags text[] NOT NULL DEFAULT '{}',"
            " created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)"
        )
        conn.execute("GRANT SELECT, INSERT, DELETE ON listing_probe TO loupe_system")
        rows = [
            (
                uuid.uuid4(),
                ORG_A,
                f"probe {index:02d}",
                "has 100% sugar" if index == 7 else None,
                "odd" if index % 2 else "even",
                ["red"] if index % 3 == 0 else [],
                START + timedelta(days=index),
                START + timedelta(days=30 - index),
            )
            for index in range(25)
        ]
        rows.append((uuid.uuid4(), ORG_B, "probe other", None, "odd", ["red"], START, START))
        with conn.cursor() as cursor:
            cursor.executemany("INSERT INTO listing_probe VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", rows)
    try:
        yield database_url
    finally:
        db.close()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DROP TABLE listing_probe")


def page(
    query: ListQuery, organization_id: uuid.UUID = ORG_A, **equals: Any
) -> tuple[list[dict[str, Any]], int]:
    with db.transaction():
        return list_page(PROBES, organization_id, query, **equals)


def test_scoped_to_the_organization(probe_table: str) -> None:
    rows, total = page(ListQuery(limit=200))
    assert total == 25
    assert {row["organization_id"] for row in rows} == {ORG_A}


def test_default_sort_is_most_recently_updated_first(probe_table: str) -> None:
    rows, _ = page(ListQuery(limit=3))
    assert [row["name"] for row in rows] == ["probe 00", "probe 01", "probe 02"]


def test_sort_by_several_fields(probe_table: str) -> None:
    rows, _ = page(ListQuery(sort="-name", limit=2))
    assert [row["name"] for row in rows] == ["probe 24", "probe 23"]


def test_filters(probe_table: str) -> None:
    assert page(ListQuery(tag="red"))[1] == 9
    assert page(ListQuery(), kind="odd")[1] == 12
    after = START + timedelta(days=19, hours=12)
    assert page(ListQuery(created_after=after))[1] == 5
    assert page(ListQuery(created_before=START + timedelta(hours=1)))[1] == 1
    # updated_at runs the other way: probe n was last updated on day 30 - n.
    assert page(ResourceListQuery(updated_after=START + timedelta(days=25, hours=12)))[1] == 5
    assert page(ResourceListQuery(updated_before=START + timedelta(days=6, hours=12)))[1] == 1


def test_search_treats_wildcards_literally(probe_table: str) -> None:
    assert page(ListQuery(q="100%"))[1] == 1
    assert page(ListQuery(q="%"))[1] == 1
    assert page(ListQuery(q="_"))[1] == 0
    assert page(ListQuery(q="PROBE 1"))[1] == 10


def test_offset_past_the_end_still_counts(probe_table: str) -> None:
    rows, total = page(ListQuery(offset=500))
    assert rows == []
    assert total == 25


@pytest.mark.parametrize("sort", ["password_hash", "name,name", "-organization_id"])
def test_unknown_or_repeated_sort_fields_are_422(sort: str) -> None:
    with pytest.raises(InvalidListQuery) as raised:
        parse_sort(sort, PROBES)
    assert raised.value.issues[0].field == "sort"


@pytest.mark.parametrize(
    "bad",
    [
        {"limit": 0},
        {"limit": 201},
        {"offset": -1},
        {"sort": "name;drop"},
        {"created_after": "2026-01-01T00:00:00"},
        {"nope": 1},
    ],
)
def test_list_query_validation(bad: dict[str, Any]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        ListQuery.model_validate(bad)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(1, 30), sort=st.sampled_from(["name", "-name", "created_at", "-updated_at,name"]))
def test_paging_neither_loses_nor_repeats(probe_table: str, limit: int, sort: str) -> None:
    seen: list[uuid.UUID] = []
    offset = 0
    while True:
        rows, total = page(ListQuery(limit=limit, offset=offset, sort=sort))
        seen.extend(row["id"] for row in rows)
        offset += limit
        if offset >= total:
            break
    assert len(seen) == len(set(seen)) == 25


def add_probes(database_url: str, count: int, when: datetime) -> None:
    """Items created while a client is paging: after the walk began, with names anywhere in the order."""
    with psycopg.connect(database_url, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO listing_probe VALUES (%s, %s, %s, NULL, 'odd', '{}', %s, %s)",
            [(uuid.uuid4(), ORG_A, f"added {uuid.uuid4().hex[:6]}", when, when) for _ in range(count)],
        )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    limit=st.integers(1, 30),
    sort=st.sampled_from(["name", "-name", "created_at", "-created_at", "-updated_at", "-updated_at,name"]),
    added_per_page=st.lists(st.integers(0, 4), min_size=1, max_size=8),
)
def test_a_walk_pinned_to_its_start_neither_loses_nor_repeats_while_items_are_added(
    probe_table: str, limit: int, sort: str, added_per_page: list[int]
) -> None:
    """Offset pages shift when items are added; pinning `created_before` to the walk's start (as
    docs/api-notes.md advises) leaves exactly the items that existed then, in any sort order."""
    started = START + timedelta(days=100)
    seen: list[uuid.UUID] = []
    offset = 0
    try:
        for turn in range(100):
            rows, total = page(ListQuery(limit=limit, offset=offset, sort=sort, created_before=started))
            seen.extend(row["id"] for row in rows)
            offset += limit
            if offset >= total:
                break
            add_probes(
                probe_table, added_per_page[turn % len(added_per_page)], started + timedelta(seconds=turn + 1)
            )
    finally:
        with psycopg.connect(probe_table, autocommit=True) as conn:
            conn.execute("DELETE FROM listing_probe WHERE name LIKE 'added %'")
    originals, _ = page(ListQuery(limit=200))
    assert len(seen) == len(set(seen))
    assert set(seen) == {row["id"] for row in originals}
