"""Row policies against real engines: generated queries reference the policy's table in every position
(joins, subqueries, CTEs and names that shadow it, set operations, lateral joins, aliases, quoted and
qualified names); each, rewritten, returns on the full table exactly what it returns, unrewritten, on a
copy holding only the rows the policy lets through. SQL the rewriter refuses is never run."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import psycopg
import pymysql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loupe.connectors import DatasourceType, pyformat
from loupe.connectors import engine as connector_engine
from loupe.security import row_policies, sql_guard
from tests.conftest import with_database
from tests.integration.test_sql_guard_databases import MARIADB, require_port

ROWS = [(index, tenant, index * 10 % 70) for index, tenant in enumerate("abcabcaabbcc", start=1)]
CUSTOMERS = [(1, "a"), (2, "b"), (3, "c")]
POLICIES = {
    "scalar": ("tenant = :claims.tenant", {"tenant": "a"}, {"a"}),
    "list": (
        "tenant IN :claims.tenants AND amount >= :claims.floor",
        {"tenants": ["a", "c"], "floor": 20},
        None,
    ),
    "empty list": ("tenant IN :claims.tenants", {"tenants": []}, set()),
}


@dataclass(frozen=True)
class Engine:
    """Two copies of the schema: `full` holds every row, `truth` only those the policy keeps."""

    dialect: DatasourceType
    full: str
    truth: str
    fetch: Callable[[str, str, dict[str, Any]], list[tuple[Any, ...]]]
    quote: str


def _kept(name: str) -> list[tuple[int, str, int]]:
    _, claims, tenants = POLICIES[name]
    if tenants is not None:
        return [row for row in ROWS if row[1] in tenants]
    return [row for row in ROWS if row[1] in claims["tenants"] and row[2] >= claims["floor"]]


@pytest.fixture(scope="module")
def postgres(postgres_server_url: str) -> Iterator[Callable[[str], Engine]]:
    made: list[str] = []

    def engine_for(policy: str) -> Engine:
        names = [f"rp_{kind}_{secrets.token_hex(3)}" for kind in ("full", "truth")]
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            for name, rows in zip(names, (ROWS, _kept(policy)), strict=True):
                admin.execute(f'CREATE DATABASE "{name}"')
                made.append(name)
                with psycopg.connect(with_database(postgres_server_url, name), autocommit=True) as conn:
                    conn.execute("CREATE TABLE orders (id int, tenant text, amount int)")
                    conn.execute("CREATE TABLE customers (id int, tenant text)")
                    with conn.cursor() as cursor:
                        cursor.executemany("INSERT INTO orders VALUES (%s, %s, %s)", rows)
                        cursor.executemany("INSERT INTO customers VALUES (%s, %s)", CUSTOMERS)

        def fetch(database: str, sql: str, values: dict[str, Any]) -> list[tuple[Any, ...]]:
            text, bound = pyformat(sql, values)
            with psycopg.connect(with_database(postgres_server_url, database)) as conn:
                return [tuple(row) for row in conn.execute(text.encode(), bound)]

        return Engine("postgres", names[0], names[1], fetch, '"')

    try:
        yield engine_for
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            for name in made:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def mariadb() -> Iterator[Callable[[str], Engine]]:
    require_port(MARIADB, "MariaDB")
    made: list[str] = []

    def connect(database: str | None = None) -> Any:
        return pymysql.connect(
            host=MARIADB[0], port=MARIADB[1], user="root", database=database, autocommit=True
        )

    def engine_for(policy: str) -> Engine:
        names = [f"rp_{kind}_{secrets.token_hex(3)}" for kind in ("full", "truth")]
        with connect() as admin, admin.cursor() as cursor:
            for name, rows in zip(names, (ROWS, _kept(policy)), strict=True):
                cursor.execute(f"CREATE DATABASE `{name}`")
                made.append(name)
                cursor.execute(f"CREATE TABLE `{name}`.orders (id int, tenant varchar(8), amount int)")
                cursor.execute(f"CREATE TABLE `{name}`.customers (id int, tenant varchar(8))")
                if rows:
                    cursor.executemany(f"INSERT INTO `{name}`.orders VALUES (%s, %s, %s)", rows)
                cursor.executemany(f"INSERT INTO `{name}`.customers VALUES (%s, %s)", CUSTOMERS)

        def fetch(database: str, sql: str, values: dict[str, Any]) -> list[tuple[Any, ...]]:
            text, bound = pyformat(sql, values)
            with connect(database) as conn, conn.cursor() as cursor:
                cursor.execute(text, bound or None)
                return [tuple(row) for row in cursor.fetchall()]

        return Engine("mysql", names[0], names[1], fetch, "`")

    try:
        yield engine_for
    finally:
        with connect() as admin, admin.cursor() as cursor:
            for name in made:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


# Each generated relation is a query text with `{schema}` where a qualified name goes (the full or the
# truth copy's schema), returning two columns, t and v.
def references(quote: str) -> st.SearchStrategy[str]:
    return st.sampled_from(
        ["orders", "{schema}.orders", f"{quote}orders{quote}", f"{{schema}}.{quote}orders{quote}"]
    )


def relations(quote: str, lateral: bool) -> st.SearchStrategy[str]:
    base = st.builds(
        lambda ref, alias: (
            f"SELECT {alias or ref.split('.')[-1]}.tenant AS t, amount AS v FROM {ref}"
            + (f" AS {alias}" if alias else "")
        ),
        references(quote),
        st.sampled_from(["", "o", "x1"]),
    )
    # "orders" unaliased then read as `orders.tenant`: the rewriter's subquery keeps the name.

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        shapes = [
            st.builds(lambda q: f"SELECT t, v FROM ({q}) AS d", inner),
            st.builds(lambda q: f"WITH c AS ({q}) SELECT t, v FROM c", inner),
            # A CTE that shadows the table: its body reads the table, the main query the CTE.
            st.builds(lambda q: f"WITH orders AS ({q}) SELECT t, v FROM orders", inner),
            st.builds(
                lambda a, b: f"SELECT t, v FROM ({a}) AS u1 UNION ALL SELECT t, v FROM ({b}) AS u2",
                inner,
                inner,
            ),
            st.builds(
                lambda a, b: f"SELECT t, v FROM ({a}) AS u1 UNION SELECT t, v FROM ({b}) AS u2", inner, inner
            ),
            st.builds(
                lambda a, b: f"SELECT t, v FROM ({a}) AS a1 WHERE v IN (SELECT v FROM ({b}) AS b1)",
                inner,
                inner,
            ),
            st.builds(
                lambda q, ref: (
                    f"SELECT t, v FROM ({q}) AS a1 WHERE EXISTS"
                    f" (SELECT 1 FROM {ref} AS e WHERE e.amount = a1.v AND e.tenant <> a1.t)"
                ),
                inner,
                references(quote),
            ),
            st.builds(
                lambda q, ref: f"SELECT t, (SELECT count(*) FROM {ref}) AS v FROM ({q}) AS a1",
                inner,
                references(quote),
            ),
            st.builds(
                lambda a, b: f"SELECT a1.t, b1.v FROM ({a}) AS a1 JOIN ({b}) AS b1 ON a1.v = b1.v",
                inner,
                inner,
            ),
            st.builds(
                lambda q, ref: (
                    f"SELECT o2.tenant AS t, c1.v FROM {ref} AS o2 LEFT JOIN ({q}) AS c1 ON o2.amount = c1.v"
                ),
                inner,
                references(quote),
            ),
            st.builds(
                lambda q: (
                    f"SELECT c.tenant AS t, count(a1.v) AS v FROM customers AS c"
                    f" LEFT JOIN ({q}) AS a1 ON a1.t = c.tenant GROUP BY c.tenant"
                ),
                inner,
            ),
        ]
        if lateral:
            shapes.append(
                st.builds(
                    lambda q, ref: (
                        f"SELECT l.t, l.v FROM customers AS c CROSS JOIN LATERAL"
                        f" (SELECT tenant AS t, amount AS v FROM {ref} AS lo WHERE lo.tenant = c.tenant) AS l"
                    ),
                    inner,
                    references(quote),
                )
            )
        return st.one_of(shapes)

    return st.recursive(base, extend, max_leaves=4)


def _rewritten(engine: Engine, sql: str, policy: str) -> tuple[str, dict[str, Any]] | None:
    predicate, claims, _ = POLICIES[policy]
    table = row_policies.parse_table(
        f"{engine.full}.orders" if engine.dialect == "mysql" else "public.orders", engine.dialect
    )
    guarded = sql_guard.check(sql, engine.dialect)
    try:
        text, values = row_policies.apply(
            guarded.sql, engine.dialect, [row_policies.RowFilter(table, predicate)], claims
        )
    except row_policies.PolicyNotApplicable:
        return None
    # What runs is what the guard accepts again, predicates and all.
    return sql_guard.check(text, engine.dialect).sql, values


def _same_rows(engine: Engine, template: str, policy: str) -> bool:
    schema = {"postgres": ("public", "public"), "mysql": (engine.full, engine.truth)}[engine.dialect]
    rewritten = _rewritten(engine, template.format(schema=schema[0]), policy)
    if rewritten is None:
        return False
    expected = engine.fetch(engine.truth, template.format(schema=schema[1]), {})
    got = engine.fetch(engine.full, *rewritten)
    assert sorted(got, key=repr) == sorted(expected, key=repr), (template, rewritten[0])
    return True


@pytest.mark.parametrize("policy", list(POLICIES))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_row_outside_the_policy_comes_back_from_postgresql(
    postgres: Callable[[str], Engine], policy: str, data: st.DataObject
) -> None:
    engine = _engine(postgres, policy)
    _same_rows(engine, data.draw(relations('"', lateral=True)), policy)


@pytest.mark.parametrize("policy", list(POLICIES))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_row_outside_the_policy_comes_back_from_mariadb(
    mariadb: Callable[[str], Engine], policy: str, data: st.DataObject
) -> None:
    engine = _engine(mariadb, policy)
    _same_rows(engine, data.draw(relations("`", lateral=False)), policy)


_ENGINES: dict[tuple[int, str], Engine] = {}


def _engine(make: Callable[[str], Engine], policy: str) -> Engine:
    """One pair of databases per engine and policy, made on first use."""
    key = (id(make), policy)
    if key not in _ENGINES:
        _ENGINES[key] = make(policy)
    return _ENGINES[key]


def test_mariadb_names_the_views_that_read_a_policy_table(mariadb: Callable[[str], Engine]) -> None:
    engine = _engine(mariadb, "scalar")
    with (
        pymysql.connect(
            host=MARIADB[0], port=MARIADB[1], user="root", database=engine.full, autocommit=True
        ) as conn,
        conn.cursor() as cursor,
    ):
        cursor.execute("CREATE VIEW every_order AS SELECT * FROM orders")
        cursor.execute("CREATE VIEW customer_list AS SELECT * FROM customers")
        text, values = pyformat(
            connector_engine("mysql").dependents_sql, {"schema": engine.full, "name": "orders"}
        )
        cursor.execute(text, values)
        found = {(schema, name) for schema, name in cursor.fetchall() if schema == engine.full}
    assert found == {(engine.full, "every_order")}


def test_duckdb_names_the_views_that_read_a_policy_table() -> None:
    with duckdb.connect() as conn:
        conn.execute("CREATE TABLE orders (id int); CREATE TABLE customers (id int)")
        conn.execute(
            "CREATE VIEW every_order AS SELECT * FROM orders; CREATE VIEW people AS SELECT * FROM customers"
        )
        found = conn.execute(
            connector_engine("duckdb").dependents_sql, {"schema": "main", "name": "orders"}
        ).fetchall()
    assert found == [("main", "every_order")]
