"""`GET /queries?limit=50` over 10,000 queries: the handler against its own SQL replayed on raw psycopg,
and the page query's plan at 100,000 rows (it must not scan the whole table)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from bench import statements
from loupe.api.prefix import API_PREFIX

FUNCTION = "QueriesFunction"
PATH = f"{API_PREFIX}/queries"
ORGANIZATION_QUERIES = 10_000
TABLE_ROWS = 100_000

Captured = list[tuple[str, Any]]
Capture = Callable[[Callable[[dict[str, Any], Any], dict[str, Any]], dict[str, Any], Any], Captured]


@dataclass(frozen=True)
class ListResult:
    handler_s: list[float]
    raw_s: list[float]
    seq_scans: list[str]
    plan_nodes: list[str]


def seed(
    database_url: str, organization_id: uuid.UUID, count: int, *, other_organization: bool = False
) -> None:
    """`count` queries, in the caller's organization or in a fresh one, loaded with COPY."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        if other_organization:
            row = conn.execute(
                "INSERT INTO organizations (name) VALUES ('bench neighbours') RETURNING id"
            ).fetchone()
            assert row is not None
            organization_id = row[0]
        row = conn.execute(
            "INSERT INTO datasources (organization_id, name, type, connection_ciphertext, connection_display)"
            " VALUES (%s, %s, 'postgres', '\\x00', 'postgresql://bench:****@db/bench') RETURNING id",
            (organization_id, f"bench-{uuid.uuid4().hex[:8]}"),
        ).fetchone()
        assert row is not None
        datasource_id = row[0]
        with (
            conn.cursor() as cursor,
            cursor.copy(
                "COPY queries (organization_id, name, description, datasource_id, sql, tags) FROM STDIN"
            ) as copy,
        ):
            for index in range(count):
                copy.write_row(
                    (
                        organization_id,
                        f"revenue by region #{index}",
                        f"Monthly revenue, cut {index % 97}",
                        datasource_id,
                        # Stored as the query\'s text, never executed here.
                        f"SELECT region, sum(amount) FROM orders WHERE month = {index % 12 + 1} GROUP BY 1",  # noqa: S608
                        ["finance", f"team-{index % 20}"],
                    )
                )
        conn.execute("ANALYZE queries")


def replay(conn: statements.Connection, captured: Captured) -> None:
    """The handler's statements, as it sent them, in one transaction."""
    with conn.transaction():
        for text, params in captured:
            cursor = conn.execute(text.encode(), params)
            if cursor.description is not None:
                cursor.fetchall()


def page_plan(
    database_url: str, organization_id: uuid.UUID, captured: Captured
) -> tuple[list[str], list[str]]:
    """Sequential scans, and all node types, of the page query as the application role sees it."""
    page_query = next(
        (text, params)
        for text, params in captured
        if text.lstrip().upper().startswith("SELECT") and ' FROM "queries"' in text
    )
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        conn.execute("SET LOCAL ROLE loupe_app")
        conn.execute("SELECT set_config('loupe.organization_id', %s, true)", (str(organization_id),))
        row = conn.execute(b"EXPLAIN (FORMAT JSON) " + page_query[0].encode(), page_query[1]).fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    nodes: list[dict[str, Any]] = []
    pending = [plan[0]["Plan"]]
    while pending:
        node = pending.pop()
        nodes.append(node)
        pending.extend(node.get("Plans", []))
    seq_scans = [node.get("Relation Name", "?") for node in nodes if node["Node Type"] == "Seq Scan"]
    return seq_scans, [f"{node['Node Type']} {node.get('Relation Name', '')}".strip() for node in nodes]


def measure(
    database_url: str,
    caller: statements.Caller,
    token: str,
    capture: Capture,
    *,
    blocks: int,
    calls: int,
    warmup: int,
) -> ListResult:
    from infra.local.events import LocalLambdaContext, rest_api_event
    from infra.local.template_routes import find_route, load_handler

    seed(database_url, caller.organization_id, ORGANIZATION_QUERIES)
    handler = load_handler(FUNCTION)
    context = LocalLambdaContext(FUNCTION)
    found = find_route("GET", PATH)
    if found is None or found[0].function != FUNCTION:
        raise RuntimeError(f"GET {PATH} is not routed to {FUNCTION}")

    def event() -> dict[str, Any]:
        return rest_api_event(
            "GET",
            PATH,
            resource=found[0].path,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "loupe-bench"},
            query={"limit": ["50"]},
        )

    captured = capture(handler, event(), context)
    conn = statements.connect(database_url)
    try:
        for _ in range(warmup):
            handler(event(), context)
            replay(conn, captured)
        handler_s: list[float] = []
        raw_s: list[float] = []
        per_block = max(1, calls // blocks)
        for block in range(blocks):
            order = ("handler", "raw") if block % 2 == 0 else ("raw", "handler")
            for which in order:
                if which == "handler":
                    events = [event() for _ in range(per_block)]
                    for request in events:
                        started = time.perf_counter()
                        response = handler(request, context)
                        handler_s.append(time.perf_counter() - started)
                        if response["statusCode"] != 200:
                            raise RuntimeError(f"GET {PATH} answered {response['statusCode']}")
                else:
                    for _ in range(per_block):
                        started = time.perf_counter()
                        replay(conn, captured)
                        raw_s.append(time.perf_counter() - started)
    finally:
        conn.close()
    seed(database_url, caller.organization_id, TABLE_ROWS - ORGANIZATION_QUERIES, other_organization=True)
    seq_scans, nodes = page_plan(database_url, caller.organization_id, captured)
    return ListResult(handler_s, raw_s, seq_scans, nodes)
