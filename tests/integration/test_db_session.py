"""The metadata connection's session role: transactions trust it instead of setting it each time."""

from __future__ import annotations

from psycopg import sql

from loupe import db


def test_a_new_connection_runs_as_the_cross_tenant_role_not_the_login(clean_db: str) -> None:
    conn = db.connect()
    try:
        row = conn.execute("SELECT current_user AS name, session_user AS login").fetchone()
    finally:
        conn.close()
    assert row is not None
    assert row["name"] == db.DbRole.SYSTEM.value
    assert row["login"] != db.DbRole.SYSTEM.value


def test_a_system_transaction_runs_as_the_system_role_and_an_app_one_narrows_it(clean_db: str) -> None:
    with db.transaction() as conn:
        assert conn.execute("SELECT current_user AS name").fetchone() == {"name": db.DbRole.SYSTEM.value}
    with db.transaction(db.DbRole.APP) as conn:
        assert conn.execute("SELECT current_user AS name").fetchone() == {"name": db.DbRole.APP.value}
    with db.transaction() as conn:
        assert conn.execute("SELECT current_user AS name").fetchone() == {"name": db.DbRole.SYSTEM.value}


def test_each_role_statement_is_the_quoted_role(clean_db: str) -> None:
    assert set(db.SET_ROLE) == set(db.DbRole)
    with db.transaction() as conn:
        for role, statement in db.SET_ROLE.items():
            quoted = sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role.value)).as_string(conn)
            assert statement == quoted
            conn.execute(statement)
            assert conn.execute("SELECT current_user AS name").fetchone() == {"name": role.value}
