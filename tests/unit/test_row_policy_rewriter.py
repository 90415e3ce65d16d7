"""The row-policy rewriter without a database: which tables and predicates a policy may name, what the
rewritten SQL looks like, claims bound and never written, and what it refuses rather than run unfiltered."""

from __future__ import annotations

import pytest

from loupe.connectors import DatasourceType
from loupe.security import row_policies, sql_guard
from loupe.security.row_policies import PolicyNotApplicable, RowFilter, TableName

ORDERS = TableName("public", "orders")
TENANT = [RowFilter(ORDERS, "tenant_id = :claims.tenant")]


def rewritten(sql: str, filters: list[RowFilter] = TENANT, **claims: object) -> str:
    text, _ = row_policies.apply(
        sql_guard.check(sql, "postgres").sql, "postgres", filters, claims or {"tenant": "t1"}
    )
    return text


@pytest.mark.parametrize(
    ("text", "dialect", "expected"),
    [
        ("public.orders", "postgres", TableName("public", "orders")),
        ('"Sales"."Orders"', "postgres", TableName("Sales", "Orders")),
        ("Sales.Orders", "postgres", TableName("sales", "orders")),
        ("shop.Orders", "mysql", TableName("shop", "orders")),
        ("main.orders", "duckdb", TableName("main", "orders")),
    ],
)
def test_a_policy_names_a_schema_qualified_table(
    text: str, dialect: DatasourceType, expected: TableName
) -> None:
    assert row_policies.parse_table(text, dialect) == expected


@pytest.mark.parametrize(
    "text",
    ["orders", "db.public.orders", "public.orders o", "public.orders, x", "public.orders WHERE 1", "1", ""],
)
def test_anything_but_one_schema_qualified_table_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="table"):
        row_policies.parse_table(text, "postgres")


def test_a_predicates_columns_are_the_tables_and_its_claims_are_named() -> None:
    qualified, claims = row_policies.checked_predicate(
        "tenant_id = :claims.tenant AND region IN :claims.regions AND amount::int > 0", "postgres"
    )
    assert qualified == (
        "loupe_policy_rows.tenant_id = :claims.tenant AND loupe_policy_rows.region IN :claims.regions"
        " AND loupe_policy_rows.amount::int > 0"
    )
    assert claims == ("tenant", "regions")


@pytest.mark.parametrize(
    ("predicate", "reason"),
    [
        ("tenant_id IN (SELECT id FROM tenants)", "subquery"),
        ("EXISTS (SELECT 1)", "subquery"),
        ("orders.tenant_id = :claims.tenant", "without a table"),
        ("tenant_id = %(x)s", "claims"),
        ("tenant_id = $1", "claims"),
        ("tenant_id = 1; DROP TABLE orders", "one condition"),
        ("tenant_id = 1 ORDER BY 1", "one condition"),
        ("", "1 to"),
        ("x" * 5000, "1 to"),
        ("tenant_id = ", "condition"),
    ],
)
def test_a_predicate_that_is_not_a_plain_condition_is_refused(predicate: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        row_policies.checked_predicate(predicate, "postgres")


def test_claims_are_bound_never_written_and_lists_expand() -> None:
    filters = [RowFilter(ORDERS, "region IN :claims.regions AND tenant_id = :claims.tenant")]
    text, values = row_policies.apply(
        "SELECT * FROM orders", "postgres", filters, {"regions": ["eu", "x' OR 1=1 --"], "tenant": 7}
    )
    assert "OR 1=1" not in text
    assert text == (
        "SELECT * FROM (SELECT * FROM orders AS loupe_policy_rows WHERE (loupe_policy_rows.region IN"
        " (%(loupe_claim__regions__0)s, %(loupe_claim__regions__1)s) AND loupe_policy_rows.tenant_id ="
        " %(loupe_claim__tenant)s)) AS orders"
    )
    assert values == {
        "loupe_claim__regions__0": "eu",
        "loupe_claim__regions__1": "x' OR 1=1 --",
        "loupe_claim__tenant": 7,
    }
    empty, _ = row_policies.apply("SELECT * FROM orders", "postgres", filters, {"regions": [], "tenant": 7})
    assert "IN (NULL)" in empty


def test_a_missing_claim_refuses_the_run() -> None:
    with pytest.raises(sql_guard.SqlNotAllowed, match="claim 'tenant'"):
        row_policies.apply("SELECT * FROM orders", "postgres", TENANT, {})


def test_every_policy_of_a_table_holds_and_other_tables_are_untouched() -> None:
    filters = [*TENANT, RowFilter(ORDERS, "region = 'eu'")]
    text = rewritten("SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id", filters)
    assert (
        "WHERE (loupe_policy_rows.tenant_id = %(loupe_claim__tenant)s)"
        " AND (loupe_policy_rows.region = 'eu')) o" in text
    )
    assert text.endswith("JOIN customers c ON c.id = o.customer_id")
    assert rewritten("SELECT * FROM other.orders") == "SELECT * FROM other.orders"


def test_what_the_rewriter_cannot_prove_covered_is_refused() -> None:
    # A CTE whose name differs from the reference only as PostgreSQL folds it: the reference is the table.
    with pytest.raises(PolicyNotApplicable, match="row policy"):
        rewritten('WITH "Orders" AS (SELECT 1) SELECT * FROM orders')
    # MySQL may compare names by case: a CTE `ORDERS` is not proven to be what `orders` reads.
    shop = [RowFilter(TableName("shop", "orders"), "tenant_id = :claims.tenant")]
    with pytest.raises(PolicyNotApplicable, match="row policy"):
        row_policies.apply("WITH ORDERS AS (SELECT 1) SELECT * FROM orders", "mysql", shop, {"tenant": 1})
    # The same CTE name as written is a CTE: nothing of the table is read, nothing is wrapped.
    assert rewritten("WITH orders AS (SELECT 1 AS n) SELECT n FROM orders") == (
        "WITH orders AS (SELECT 1 AS n) SELECT n FROM orders"
    )


def test_the_rewritten_sql_keeps_the_queries_own_placeholders_and_text() -> None:
    sql = "SELECT id FROM orders WHERE amount > %(floor)s AND note LIKE 'a%%'"
    assert rewritten(sql) == (
        "SELECT id FROM (SELECT * FROM orders AS loupe_policy_rows WHERE (loupe_policy_rows.tenant_id ="
        " %(loupe_claim__tenant)s)) AS orders WHERE amount > %(floor)s AND note LIKE 'a%%'"
    )
