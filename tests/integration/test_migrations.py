"""The schema migrations and loupe.migrations, on a real PostgreSQL.

An embedded server (pgserver) is started for this module unless TEST_DATABASE_URL points at one;
every test gets a database of its own.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import psycopg
import pytest
from psycopg import errors, sql

from infra.local.events import LocalLambdaContext
from infra.local.template_routes import load_handler
from loupe import migrations
from loupe.entry.custom_resource import ANSWER_MARGIN_SECONDS

ALL_MIGRATIONS = [
    "0001_roles",
    "0002_schema",
    "0003_rls",
    "0004_run_cancellation",
    "0005_alerts",
    "0006_rate_limits",
    "0007_datasource_login_audit",
    "0008_service_keys_and_key_runs",
    "0009_run_provenance",
    "0010_run_exports",
    "0011_run_result_columns",
    "0012_calendar_time_presets",
    "0013_snippets",
    "0014_dashboard_filters",
    "0015_row_policies",
    "0016_embed_tokens",
    "0017_membership_last_used",
    "0018_guest_resources",
    "0019_revisions",
    "0020_bundle_keys",
    "0021_destinations",
    "0022_alert_history",
    "0023_subscriptions",
    "0024_report_share_links",
    "0025_delivery_progress",
]
LOUPE_TABLES = {
    "organizations",
    "users",
    "memberships",
    "sessions",
    "refresh_tokens",
    "login_attempts",
    "password_resets",
    "api_keys",
    "invitations",
    "datasources",
    "queries",
    "runs",
    "visualizations",
    "dashboards",
    "dashboard_tiles",
    "schedules",
    "canvases",
    "audit_events",
    "alert_firings",
    "rate_limit_hits",
    "run_exports",
    "snippets",
    "row_policies",
    "embed_tokens",
    "revisions",
    "bundle_keys",
    "destinations",
    "subscriptions",
    "subscription_deliveries",
}
# Tables without a tenant: only loupe_system has a policy on them.
SYSTEM_ONLY_TABLES = {"login_attempts", "password_resets", "rate_limit_hits"}
TENANT_TABLES = LOUPE_TABLES - {"organizations", "users"} - SYSTEM_ONLY_TABLES


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """A server of its own: rolling back 0001 revokes the roles from the login cluster-wide."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    from pgserver.postgres_server import get_server

    # Not pytest's tmp_path: pytest deletes old base folders when another session starts, socket included.
    with tempfile.TemporaryDirectory(prefix="loupe-migrations-pg-") as data_dir:
        server = get_server(data_dir, cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


def _url_for(server_url: str, database: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{database}"))


@pytest.fixture
def database_url(server_url: str) -> Iterator[str]:
    name = f"loupe_test_{secrets.token_hex(6)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _url_for(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def migrated_url(database_url: str) -> str:
    migrations.apply(database_url)
    return database_url


@contextmanager
def as_role(url: str, role: str, organization_id: UUID | None = None) -> Iterator[psycopg.Connection[Any]]:
    """One transaction as `role`, the way the application runs requests and jobs."""
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        if organization_id is not None:
            conn.execute("SELECT set_config('loupe.organization_id', %s, true)", (str(organization_id),))
        yield conn


def _scalar(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def _seed_organization(conn: psycopg.Connection[Any], label: str) -> dict[str, UUID]:
    """An organization with an admin user and one datasource."""
    org = _scalar(conn, "INSERT INTO organizations (name) VALUES (%s) RETURNING id", (f"Org {label}",))
    user = _scalar(
        conn,
        "INSERT INTO users (email, name, password_hash) VALUES (%s, %s, 'argon2-hash') RETURNING id",
        (f"{label}@example.com", f"User {label}"),
    )
    conn.execute(
        "INSERT INTO memberships (organization_id, user_id, role) VALUES (%s, %s, 'admin')", (org, user)
    )
    datasource = _scalar(
        conn,
        "INSERT INTO datasources (organization_id, name, type, connection_ciphertext, connection_display) "
        "VALUES (%s, %s, 'postgres', '\\x00', 'postgresql://u:***@db/x') RETURNING id",
        (org, f"ds {label}"),
    )
    return {"org": org, "user": user, "datasource": datasource}


def _public_objects(url: str) -> tuple[set[str], set[str]]:
    with psycopg.connect(url) as conn:
        relations = conn.execute(
            "SELECT relname FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'v', 'S')"
        ).fetchall()
        functions = conn.execute(
            "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
        ).fetchall()
    tables = {name for (name,) in relations if "yoyo" not in name}
    return tables, {name for (name,) in functions}


def test_apply_rollback_apply(database_url: str) -> None:
    assert migrations.pending(database_url) == ALL_MIGRATIONS
    assert migrations.apply(database_url) == ALL_MIGRATIONS
    tables, functions = _public_objects(database_url)
    assert tables >= LOUPE_TABLES
    assert "loupe_touch_updated_at" in functions

    assert migrations.rollback(database_url) == list(reversed(ALL_MIGRATIONS))
    assert _public_objects(database_url) == (set(), set())
    with psycopg.connect(database_url) as conn:
        roles = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname IN ('loupe_app', 'loupe_system')"
        ).fetchall()
    assert {name for (name,) in roles} == {"loupe_app", "loupe_system"}, "roles are shared, never dropped"

    assert migrations.apply(database_url) == ALL_MIGRATIONS
    tables, _ = _public_objects(database_url)
    assert tables >= LOUPE_TABLES


def test_apply_twice_is_a_no_op(migrated_url: str) -> None:
    assert migrations.pending(migrated_url) == []
    assert migrations.apply(migrated_url) == []
    assert migrations.pending(migrated_url) == []


def test_rollback_count_undoes_the_newest(migrated_url: str) -> None:
    assert migrations.rollback(migrated_url, count=23) == [
        "0025_delivery_progress",
        "0024_report_share_links",
        "0023_subscriptions",
        "0022_alert_history",
        "0021_destinations",
        "0020_bundle_keys",
        "0019_revisions",
        "0018_guest_resources",
        "0017_membership_last_used",
        "0016_embed_tokens",
        "0015_row_policies",
        "0014_dashboard_filters",
        "0013_snippets",
        "0012_calendar_time_presets",
        "0011_run_result_columns",
        "0010_run_exports",
        "0009_run_provenance",
        "0008_service_keys_and_key_runs",
        "0007_datasource_login_audit",
        "0006_rate_limits",
        "0005_alerts",
        "0004_run_cancellation",
        "0003_rls",
    ]
    assert migrations.pending(migrated_url) == [
        "0003_rls",
        "0004_run_cancellation",
        "0005_alerts",
        "0006_rate_limits",
        "0007_datasource_login_audit",
        "0008_service_keys_and_key_runs",
        "0009_run_provenance",
        "0010_run_exports",
        "0011_run_result_columns",
        "0012_calendar_time_presets",
        "0013_snippets",
        "0014_dashboard_filters",
        "0015_row_policies",
        "0016_embed_tokens",
        "0017_membership_last_used",
        "0018_guest_resources",
        "0019_revisions",
        "0020_bundle_keys",
        "0021_destinations",
        "0022_alert_history",
        "0023_subscriptions",
        "0024_report_share_links",
        "0025_delivery_progress",
    ]
    with psycopg.connect(migrated_url) as conn:
        assert _scalar(conn, "SELECT count(*) FROM pg_policy") == 0
        assert _scalar(conn, "SELECT count(*) FROM pg_class WHERE relrowsecurity OR relforcerowsecurity") == 0
    assert migrations.apply(migrated_url) == [
        "0003_rls",
        "0004_run_cancellation",
        "0005_alerts",
        "0006_rate_limits",
        "0007_datasource_login_audit",
        "0008_service_keys_and_key_runs",
        "0009_run_provenance",
        "0010_run_exports",
        "0011_run_result_columns",
        "0012_calendar_time_presets",
        "0013_snippets",
        "0014_dashboard_filters",
        "0015_row_policies",
        "0016_embed_tokens",
        "0017_membership_last_used",
        "0018_guest_resources",
        "0019_revisions",
        "0020_bundle_keys",
        "0021_destinations",
        "0022_alert_history",
        "0023_subscriptions",
        "0024_report_share_links",
        "0025_delivery_progress",
    ]


def test_accepts_postgres_scheme_and_rejects_others_quietly(database_url: str) -> None:
    assert migrations.pending(database_url.replace("postgresql://", "postgres://", 1)) == ALL_MIGRATIONS
    with pytest.raises(ValueError, match="mysql") as raised:
        migrations.apply("mysql://root:hunter2@db/loupe")
    assert "hunter2" not in str(raised.value)


def test_every_table_has_forced_row_level_security(migrated_url: str) -> None:
    with psycopg.connect(migrated_url) as conn:
        rows = conn.execute(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname = ANY(%s)",
            (sorted(LOUPE_TABLES),),
        ).fetchall()
        policies = conn.execute("SELECT tablename, policyname, roles FROM pg_policies").fetchall()
        role_flags = conn.execute(
            "SELECT rolname, rolcanlogin, rolbypassrls FROM pg_roles WHERE rolname LIKE 'loupe\\_%'"
        ).fetchall()
    assert len(rows) == len(LOUPE_TABLES)
    assert all(enabled and forced for _, enabled, forced in rows)
    system = {
        table for table, name, roles in policies if name == "system_access" and roles == ["loupe_system"]
    }
    tenant = {
        table for table, name, roles in policies if name == "tenant_isolation" and roles == ["loupe_app"]
    }
    assert system == LOUPE_TABLES
    assert tenant == LOUPE_TABLES - SYSTEM_ONLY_TABLES
    assert sorted(role_flags) == [("loupe_app", False, False), ("loupe_system", False, False)]


def test_row_level_security_isolates_organizations(migrated_url: str) -> None:
    with psycopg.connect(migrated_url) as conn:
        a = _seed_organization(conn, "a")
        b = _seed_organization(conn, "b")

    with as_role(migrated_url, "loupe_app", a["org"]) as conn:
        assert conn.execute("SELECT id FROM datasources").fetchall() == [(a["datasource"],)]
        assert conn.execute("SELECT id FROM organizations").fetchall() == [(a["org"],)]
        assert conn.execute("SELECT id FROM users").fetchall() == [(a["user"],)]
        assert conn.execute("SELECT user_id FROM memberships").fetchall() == [(a["user"],)]
        updated = conn.execute("UPDATE datasources SET name = 'taken' WHERE id = %s", (b["datasource"],))
        assert updated.rowcount == 0

    with as_role(migrated_url, "loupe_app", a["org"]) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(
            "INSERT INTO datasources "
            "(organization_id, name, type, connection_ciphertext, connection_display) "
            "VALUES (%s, 'sneaky', 'duckdb', '\\x00', ':memory:')",
            (b["org"],),
        )

    with as_role(migrated_url, "loupe_app", a["org"]) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("UPDATE datasources SET organization_id = %s WHERE id = %s", (b["org"], a["datasource"]))

    with as_role(migrated_url, "loupe_app") as conn:
        for table in sorted(LOUPE_TABLES - SYSTEM_ONLY_TABLES):
            count = _scalar(
                conn, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)).as_string(conn)
            )
            assert count == 0, table

    with as_role(migrated_url, "loupe_app", a["org"]) as conn:
        conn.execute("SELECT set_config('loupe.organization_id', '', true)")
        assert conn.execute("SELECT id FROM datasources").fetchall() == []

    with as_role(migrated_url, "loupe_system") as conn:
        seen = {row[0] for row in conn.execute("SELECT id FROM datasources")}
        assert seen == {a["datasource"], b["datasource"]}
        assert _scalar(conn, "SELECT count(*) FROM users") == 2


def test_loupe_app_cannot_touch_tenantless_tables(migrated_url: str) -> None:
    with as_role(migrated_url, "loupe_system") as conn:
        conn.execute(
            "INSERT INTO login_attempts (email, ip, succeeded) VALUES ('a@example.com', '10.0.0.1', false)"
        )
        assert _scalar(conn, "SELECT count(*) FROM login_attempts") == 1
    with as_role(migrated_url, "loupe_app") as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM login_attempts")


def test_references_stay_inside_one_organization(migrated_url: str) -> None:
    with psycopg.connect(migrated_url) as conn:
        a = _seed_organization(conn, "a")
        b = _seed_organization(conn, "b")
    with psycopg.connect(migrated_url) as conn, pytest.raises(errors.ForeignKeyViolation):
        conn.execute(
            "INSERT INTO queries (organization_id, name, datasource_id, sql) "
            "VALUES (%s, 'q', %s, 'SELECT 1')",
            (b["org"], a["datasource"]),
        )


def test_a_run_records_an_api_key_of_its_own_organization_only(migrated_url: str) -> None:
    with psycopg.connect(migrated_url) as conn:
        a = _seed_organization(conn, "a")
        b = _seed_organization(conn, "b")
        key = _scalar(
            conn,
            "INSERT INTO api_keys (organization_id, name, role, prefix, key_hash, kind)"
            " VALUES (%s, 'k', 'viewer', 'lk_', %s, 'service') RETURNING id",
            (a["org"], b"\x01" * 32),
        )
        run = _scalar(
            conn,
            "INSERT INTO runs (organization_id, datasource_id, sql, cache_key, api_key_id)"
            " VALUES (%s, %s, 'SELECT 1', 'k', %s) RETURNING id",
            (a["org"], a["datasource"], key),
        )
        assert _scalar(conn, "SELECT kind FROM api_keys WHERE id = %s", (key,)) == "service"
    with psycopg.connect(migrated_url) as conn, pytest.raises(errors.ForeignKeyViolation):
        conn.execute(
            "INSERT INTO runs (organization_id, datasource_id, sql, cache_key, api_key_id)"
            " VALUES (%s, %s, 'SELECT 1', 'k', %s)",
            (b["org"], b["datasource"], key),
        )
    with psycopg.connect(migrated_url) as conn:
        conn.execute("DELETE FROM api_keys WHERE id = %s", (key,))
        assert _scalar(conn, "SELECT api_key_id IS NULL FROM runs WHERE id = %s", (run,))
    with psycopg.connect(migrated_url) as conn, pytest.raises(errors.CheckViolation):
        conn.execute(
            "INSERT INTO api_keys (organization_id, name, role, prefix, key_hash, kind)"
            " VALUES (%s, 'k', 'viewer', 'lk_', %s, 'shared')",
            (a["org"], b"\x02" * 32),
        )


def test_delete_rules(migrated_url: str) -> None:
    with psycopg.connect(migrated_url) as conn:
        a = _seed_organization(conn, "a")
        conn.execute(
            "INSERT INTO sessions (organization_id, user_id, expires_at) "
            "VALUES (%s, %s, now() + interval '1 day')",
            (a["org"], a["user"]),
        )
        query = _scalar(
            conn,
            "INSERT INTO queries (organization_id, name, datasource_id, sql, created_by) "
            "VALUES (%s, 'q', %s, 'SELECT 1', %s) RETURNING id",
            (a["org"], a["datasource"], a["user"]),
        )
        conn.execute(
            "INSERT INTO runs (organization_id, query_id, datasource_id, sql, cache_key) "
            "VALUES (%s, %s, %s, 'SELECT 1', 'k')",
            (a["org"], query, a["datasource"]),
        )

    with psycopg.connect(migrated_url) as conn, pytest.raises(errors.ForeignKeyViolation):
        conn.execute("DELETE FROM datasources WHERE id = %s", (a["datasource"],))

    with psycopg.connect(migrated_url) as conn:
        conn.execute("DELETE FROM queries WHERE id = %s", (query,))
        assert conn.execute("SELECT query_id, organization_id FROM runs").fetchall() == [(None, a["org"])]
        conn.execute("DELETE FROM memberships WHERE user_id = %s", (a["user"],))
        assert _scalar(conn, "SELECT count(*) FROM sessions") == 0, "sessions end with the membership"
        conn.execute("DELETE FROM organizations WHERE id = %s", (a["org"],))
        for table in sorted(TENANT_TABLES):
            count = _scalar(
                conn, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)).as_string(conn)
            )
            assert count == 0, table


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        (
            "INSERT INTO dashboard_tiles (organization_id, dashboard_id, text, x, y, w, h) "
            "VALUES (%(org)s, %(dashboard)s, 'note', 8, 0, 5, 2)",
            "dashboard_tiles_width_check",
        ),
        (
            "INSERT INTO dashboard_tiles (organization_id, dashboard_id, x, y, w, h) "
            "VALUES (%(org)s, %(dashboard)s, 0, 0, 4, 2)",
            "dashboard_tiles_content_check",
        ),
        (
            "INSERT INTO dashboard_tiles (organization_id, dashboard_id, text, x, y, w, h) "
            "VALUES (%(org)s, %(dashboard)s, 'note', 0, 0, 4, 25)",
            "dashboard_tiles_h_check",
        ),
        (
            "INSERT INTO users (email, name, password_hash) VALUES ('Someone@Example.com', 'S', 'h')",
            "users_email_check",
        ),
        (
            "INSERT INTO canvases (organization_id, name, time_preset) VALUES (%(org)s, 'c', 'custom')",
            "canvases_time_range_check",
        ),
        (
            "INSERT INTO canvases (organization_id, name, time_preset, time_from, time_to) "
            "VALUES (%(org)s, 'c', 'custom', now(), now() - interval '1 hour')",
            "canvases_time_order_check",
        ),
        (
            "INSERT INTO canvases (organization_id, name, time_preset, nodes) "
            "VALUES (%(org)s, 'c', 'last_1h', '{}')",
            "canvases_nodes_check",
        ),
        (
            "INSERT INTO queries (organization_id, name, datasource_id, sql, tags) "
            "VALUES (%(org)s, 'q', %(datasource)s, 'SELECT 1', array_fill('t'::text, ARRAY[21]))",
            "queries_tags_check",
        ),
        ("INSERT INTO organizations (name) VALUES ('')", "organizations_name_check"),
        (
            "INSERT INTO runs (organization_id, datasource_id, sql, cache_key, status) "
            "VALUES (%(org)s, %(datasource)s, 'SELECT 1', 'k', 'exploded')",
            "runs_status_check",
        ),
        (
            "INSERT INTO runs (organization_id, datasource_id, sql, cache_key, started_at, finished_at) "
            "VALUES (%(org)s, %(datasource)s, 'SELECT 1', 'k', now(), now() - interval '1 second')",
            "runs_finished_after_started_check",
        ),
        (
            "INSERT INTO refresh_tokens (organization_id, session_id, token_hash, expires_at) "
            "VALUES (%(org)s, %(session)s, '\\x0102', now())",
            "refresh_tokens_token_hash_check",
        ),
        (
            "UPDATE datasources SET login_audit_status = 'fine' WHERE id = %(datasource)s",
            "datasources_login_audit_status_check",
        ),
    ],
)
def test_check_constraints_reject_bad_rows(migrated_url: str, statement: str, constraint: str) -> None:
    with psycopg.connect(migrated_url) as conn:
        a = _seed_organization(conn, "a")
        dashboard = _scalar(
            conn, "INSERT INTO dashboards (organization_id, name) VALUES (%s, 'd') RETURNING id", (a["org"],)
        )
        session = _scalar(
            conn,
            "INSERT INTO sessions (organization_id, user_id, expires_at) VALUES (%s, %s, now()) RETURNING id",
            (a["org"], a["user"]),
        )
    values = {"org": a["org"], "datasource": a["datasource"], "dashboard": dashboard, "session": session}
    with psycopg.connect(migrated_url) as conn, pytest.raises(errors.CheckViolation) as raised:
        conn.execute(statement, values)
    assert raised.value.diag.constraint_name == constraint


def test_good_rows_pass_the_checks(migrated_url: str) -> None:
    with psycopg.connect(migrated_url) as conn:
        a = _seed_organization(conn, "a")
        dashboard = _scalar(
            conn, "INSERT INTO dashboards (organization_id, name) VALUES (%s, 'd') RETURNING id", (a["org"],)
        )
        conn.execute(
            "INSERT INTO dashboard_tiles (organization_id, dashboard_id, text, x, y, w, h) "
            "VALUES (%s, %s, 'note', 6, 0, 6, 24)",
            (a["org"], dashboard),
        )
        conn.execute(
            "INSERT INTO canvases (organization_id, name, time_preset, time_from, time_to, nodes, edges) "
            "VALUES (%s, 'c', 'custom', now() - interval '1 hour', now(), '[]', '[]')",
            (a["org"],),
        )


def test_updated_at_is_touched_on_update(migrated_url: str) -> None:
    with psycopg.connect(migrated_url) as conn:
        a = _seed_organization(conn, "a")
        created = conn.execute("SELECT created_at, updated_at FROM organizations").fetchone()
    with psycopg.connect(migrated_url) as conn:
        conn.execute("UPDATE organizations SET name = 'Renamed' WHERE id = %s", (a["org"],))
        touched = conn.execute("SELECT created_at, updated_at, now() FROM organizations").fetchone()
    assert created is not None
    assert touched is not None
    assert created[0] == created[1] == touched[0], "created_at stays"
    assert touched[1] == touched[2] > created[1], "updated_at is the updating transaction's time"

    with psycopg.connect(migrated_url) as conn:
        triggers = conn.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgfoid = 'loupe_touch_updated_at'::regproc"
        ).fetchall()
        with_updated_at = conn.execute(
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'updated_at'"
        ).fetchall()
    assert {name for (name,) in triggers} == {name for (name,) in with_updated_at}


def _url_with_password(url: str) -> tuple[str, str]:
    """The URL and its password, adding a dummy one (the embedded server trusts local sockets)."""
    parts = urlsplit(url)
    if parts.password:
        return url, parts.password
    password = f"pw-{secrets.token_hex(8)}"
    user = parts.username or "postgres"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}")), password


def test_datasources_from_before_the_login_audit_start_not_inspected(database_url: str) -> None:
    migrations.apply(database_url)
    migrations.rollback(database_url, count=19)
    with psycopg.connect(database_url) as conn:
        a = _seed_organization(conn, "a")
    assert migrations.apply(database_url) == [
        "0007_datasource_login_audit",
        "0008_service_keys_and_key_runs",
        "0009_run_provenance",
        "0010_run_exports",
        "0011_run_result_columns",
        "0012_calendar_time_presets",
        "0013_snippets",
        "0014_dashboard_filters",
        "0015_row_policies",
        "0016_embed_tokens",
        "0017_membership_last_used",
        "0018_guest_resources",
        "0019_revisions",
        "0020_bundle_keys",
        "0021_destinations",
        "0022_alert_history",
        "0023_subscriptions",
        "0024_report_share_links",
        "0025_delivery_progress",
    ]
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT login_audit_status, login_findings, login_inspected_at, allowed_functions, accepted_risks"
            " FROM datasources WHERE id = %s",
            (a["datasource"],),
        ).fetchone()
    assert row == ("not_inspected", [], None, [], [])


def test_cli(database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    url, password = _url_with_password(database_url)
    monkeypatch.setenv("DATABASE_URL", url)

    assert migrations.main(["pending"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"pending: {name}" for name in ALL_MIGRATIONS]
    assert migrations.main(["apply"]) == 0
    assert migrations.main(["pending"]) == 0
    assert migrations.main(["rollback", "--count", "2"]) == 0
    out2, err2 = capsys.readouterr()
    assert out2.splitlines()[-3:] == [
        "pending: none",
        "rolled back: 0025_delivery_progress",
        "rolled back: 0024_report_share_links",
    ]
    assert password not in out + err + out2 + err2

    monkeypatch.delenv("DATABASE_URL")
    assert migrations.main(["pending"]) == 2


def test_lambda_handler_applies_pending(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert load_handler("MigratorFunction")({}, LocalLambdaContext("MigratorFunction")) == {
        "applied": ALL_MIGRATIONS
    }
    assert load_handler("MigratorFunction")({}, LocalLambdaContext("MigratorFunction")) == {"applied": []}


def test_migrations_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LOUPE_MIGRATIONS_DIR", raising=False)
    found = migrations.migrations_dir()
    assert found == Path(__file__).resolve().parents[2] / "infra" / "migrations"
    assert {f"{name}.sql" for name in ALL_MIGRATIONS} <= {path.name for path in found.iterdir()}
    monkeypatch.setenv("LOUPE_MIGRATIONS_DIR", str(tmp_path))
    assert migrations.migrations_dir() == tmp_path


class CloudFormation:
    """The presigned response URL of a custom resource: records the PUT CloudFormation would receive."""

    def __init__(self) -> None:
        self.answers: list[dict[str, Any]] = []
        answers = self.answers

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                answers.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def event(self, request_type: str) -> dict[str, Any]:
        return {
            "RequestType": request_type,
            "ResponseURL": f"http://127.0.0.1:{self.server.server_port}/response?signature=x",
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/loupe-dev/1",
            "RequestId": "r-1",
            "LogicalResourceId": "Migrations",
            "ResourceType": "AWS::CloudFormation::CustomResource",
            "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:migrator"},
        }


@pytest.fixture
def cloudformation() -> Iterator[CloudFormation]:
    stack = CloudFormation()
    stack.thread.start()
    yield stack
    stack.server.shutdown()
    stack.server.server_close()
    stack.thread.join(timeout=5)


def test_a_deploy_migrates_through_the_custom_resource(
    database_url: str, monkeypatch: pytest.MonkeyPatch, cloudformation: CloudFormation
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)

    load_handler("MigratorFunction")(cloudformation.event("Create"), LocalLambdaContext("MigratorFunction"))
    load_handler("MigratorFunction")(cloudformation.event("Update"), LocalLambdaContext("MigratorFunction"))
    load_handler("MigratorFunction")(cloudformation.event("Delete"), LocalLambdaContext("MigratorFunction"))

    created, updated, deleted = cloudformation.answers
    assert (created["Status"], created["Data"]) == ("SUCCESS", {"Applied": ",".join(ALL_MIGRATIONS)})
    assert (updated["Status"], updated["Data"]) == ("SUCCESS", {"Applied": "none"})
    assert deleted["Status"] == "SUCCESS"
    assert {answer["PhysicalResourceId"] for answer in cloudformation.answers} == {"loupe-migrations"}
    assert all(answer["LogicalResourceId"] == "Migrations" for answer in cloudformation.answers)
    assert migrations.pending(database_url) == [], "Delete leaves the schema"


def test_a_failed_migration_fails_the_deploy(
    server_url: str, monkeypatch: pytest.MonkeyPatch, cloudformation: CloudFormation
) -> None:
    monkeypatch.setenv("DATABASE_URL", _url_for(server_url, "no_such_database"))

    load_handler("MigratorFunction")(cloudformation.event("Update"), LocalLambdaContext("MigratorFunction"))

    [answer] = cloudformation.answers
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("migrations failed: OperationalError")


def test_two_deploys_migrating_at_once_apply_each_migration_once(database_url: str) -> None:
    results: list[list[str]] = []
    start = threading.Barrier(2)

    def deploy() -> None:
        start.wait()
        results.append(migrations.apply(database_url))

    threads = [threading.Thread(target=deploy) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(results, key=len) == [[], ALL_MIGRATIONS]


def test_a_held_migration_lock_times_out_with_a_clear_error(migrated_url: str) -> None:
    with psycopg.connect(migrated_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (migrations.MIGRATION_LOCK_KEY,))
        with (
            pytest.raises(migrations.MigrationLocked, match="held the lock"),
            migrations.migration_lock(migrated_url, timeout_seconds=1),
        ):
            pass


def test_a_migration_that_overruns_is_reported_failed_before_the_function_times_out(
    database_url: str, monkeypatch: pytest.MonkeyPatch, cloudformation: CloudFormation
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    with psycopg.connect(database_url, autocommit=True) as holder:
        # Another deploy holds the migration lock: this one cannot finish in its time.
        holder.execute("SELECT pg_advisory_lock(%s)", (migrations.MIGRATION_LOCK_KEY,))
        context = LocalLambdaContext("MigratorFunction", timeout_seconds=ANSWER_MARGIN_SECONDS + 2)
        load_handler("MigratorFunction")(cloudformation.event("Update"), context)

    [answer] = cloudformation.answers
    assert answer["Status"] == "FAILED"
    assert "did not finish within 2 s" in answer["Reason"]


def test_queries_and_runs_from_before_provenance_start_at_revision_one(database_url: str) -> None:
    migrations.apply(database_url)
    migrations.rollback(database_url, count=17)
    with psycopg.connect(database_url) as conn:
        a = _seed_organization(conn, "a")
        query = _scalar(
            conn,
            "INSERT INTO queries (organization_id, datasource_id, name, sql) VALUES (%s, %s, 'q', 'SELECT 1')"
            " RETURNING id",
            (a["org"], a["datasource"]),
        )
        conn.execute(
            "INSERT INTO runs (organization_id, query_id, datasource_id, sql, cache_key)"
            " VALUES (%s, %s, %s, 'SELECT 1', 'k')",
            (a["org"], query, a["datasource"]),
        )
    assert migrations.apply(database_url) == [
        "0009_run_provenance",
        "0010_run_exports",
        "0011_run_result_columns",
        "0012_calendar_time_presets",
        "0013_snippets",
        "0014_dashboard_filters",
        "0015_row_policies",
        "0016_embed_tokens",
        "0017_membership_last_used",
        "0018_guest_resources",
        "0019_revisions",
        "0020_bundle_keys",
        "0021_destinations",
        "0022_alert_history",
        "0023_subscriptions",
        "0024_report_share_links",
        "0025_delivery_progress",
    ]
    with psycopg.connect(database_url) as conn:
        assert _scalar(conn, "SELECT revision FROM queries WHERE id = %s", (query,)) == 1
        row = conn.execute("SELECT query_revision, parameter_types, origin, notices FROM runs").fetchone()
    assert row == (None, {}, "interactive", [])
