"""Datasource logins inspected against the real PostgreSQL and MariaDB on this machine (DuckDB in a
temporary folder): each engine's findings, and through the API the refusals (422), acceptances,
tests, stored inspections and audit events."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import psycopg
import pymysql
import pytest
from psycopg import sql

from loupe.api.openapi import whole_api_document
from loupe.connectors import LOGIN_FINDING_CODES, REFUSED_FINDINGS, LoginFinding
from loupe.connectors.mysql import findings_from_grants
from loupe.security.connection_policy import connect, parse
from loupe.services.datasources import FINDING_DETAILS, INTERACTIVE
from tests.integration.test_connectors import DUCKDB_ORGANIZATION, LOCAL_MARIADB
from tests.integration.test_datasources import (
    UNREACHABLE_PG,
    assert_error,
    audit_actions,
    create,
    created_id,
    datasource_policy,
    kms_key,
    mariadb_database,
    postgres_database,
)
from tests.read_only_logins import (
    README,
    documented_statements,
    mariadb_reader_url,
    postgres_reader_url,
    reader_name,
    statements_block,
)

DATASOURCES = "/api/v1/datasources"
# Fixtures of the datasources' tests: KMS in moto, the local hosts allowed, the documented logins.
__all__ = ["datasource_policy", "kms_key", "mariadb_database", "postgres_database"]


def as_postgres(database: str, *statements: str) -> None:
    """Run statements as the server's superuser in `database`; `{reader}` is the database's login."""
    reader = sql.Identifier(reader_name(database))
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}", autocommit=True) as conn:
        for statement in statements:
            conn.execute(sql.SQL(statement).format(reader=reader))


def as_root(*statements: str) -> None:
    root = pymysql.connect(host=LOCAL_MARIADB[0], port=LOCAL_MARIADB[1], user="root", autocommit=True)
    try:
        with root.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        root.close()


@contextmanager
def postgres_role() -> Iterator[str]:
    """A role without login (random name), dropped after: a step between the login and a predefined role."""
    name = f"loupe_step_{secrets.token_hex(4)}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def inspected(kind: Any, url: str) -> dict[str, LoginFinding]:
    session = connect(parse(kind, url, organization_id=DUCKDB_ORGANIZATION), INTERACTIVE)
    try:
        return {item.code: item for item in session.inspect_login()}
    finally:
        session.close()


def audit_metadata(database_url: str, action: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT metadata FROM audit_events WHERE action = %s ORDER BY created_at", (action,)
        ).fetchall()
    return [row[0] for row in rows]


# The engines' findings, through the connectors.


def test_every_finding_has_words() -> None:
    assert set(FINDING_DETAILS) == set(LOGIN_FINDING_CODES)
    assert set(LOGIN_FINDING_CODES) > REFUSED_FINDINGS


def test_the_documented_statements_are_the_ones_run() -> None:
    postgres = documented_statements("postgres", role="r", database="d", password="p")
    assert postgres[0] == "CREATE ROLE r LOGIN PASSWORD 'p'"
    assert postgres[-1] == "ALTER ROLE r SET default_transaction_read_only = on"
    assert len(postgres) == 6
    assert documented_statements("mysql", role="r", database="d", password="p") == [
        "CREATE USER 'r'@'%' IDENTIFIED BY 'p'",
        "GRANT SELECT ON d.* TO 'r'@'%'",
    ]
    for engine in ("postgres", "mysql"):
        assert statements_block(engine, README) == statements_block(engine)


@pytest.mark.usefixtures("datasource_policy")
def test_the_documented_logins_have_no_findings(postgres_database: str, mariadb_database: str) -> None:
    assert inspected("postgres", postgres_reader_url(postgres_database)) == {}
    assert inspected("mysql", mariadb_reader_url(mariadb_database)) == {}


@pytest.mark.usefixtures("datasource_policy")
def test_a_postgres_superuser_and_its_attributes(postgres_database: str) -> None:
    as_postgres(postgres_database, "ALTER ROLE {reader} SUPERUSER CREATEROLE CREATEDB")
    found = inspected("postgres", postgres_reader_url(postgres_database))
    assert found["superuser"].objects == (reader_name(postgres_database),)
    assert {"create_role", "create_database"} <= set(found)
    # The predefined roles a superuser holds are covered by the one finding.
    assert "server_file_read" not in found


@pytest.mark.usefixtures("datasource_policy")
def test_postgres_file_and_program_roles_direct_or_inherited(postgres_database: str) -> None:
    with postgres_role() as step:
        as_postgres(
            postgres_database,
            "GRANT pg_read_server_files, pg_execute_server_program TO {reader}",
            f"GRANT pg_write_server_files TO {step}",
            f"GRANT {step} TO {{reader}}",
        )
        try:
            found = inspected("postgres", postgres_reader_url(postgres_database))
        finally:
            as_postgres(postgres_database, f"REVOKE {step} FROM {{reader}}")
    assert found["server_file_read"].objects == ("pg_read_server_files",)
    assert found["server_file_write"].objects == ("pg_write_server_files",)
    assert found["server_program_execution"].objects == ("pg_execute_server_program",)
    assert "superuser" not in found


@pytest.mark.usefixtures("datasource_policy")
def test_postgres_writes_and_ownership_are_named(postgres_database: str) -> None:
    as_postgres(
        postgres_database,
        "GRANT INSERT, DELETE ON widgets TO {reader}",
        "CREATE TABLE gadgets (id integer)",
        "ALTER TABLE gadgets OWNER TO {reader}",
    )
    found = inspected("postgres", postgres_reader_url(postgres_database))
    assert "INSERT, DELETE on public.widgets" in found["write_privileges"].objects
    assert found["object_ownership"].objects == ("table public.gadgets",)
    assert not REFUSED_FINDINGS & set(found)


@pytest.mark.usefixtures("datasource_policy")
def test_postgres_functions_operators_and_casts_outside_the_catalog(postgres_database: str) -> None:
    as_postgres(
        postgres_database,
        # Preferred to pg_catalog.upper(text) for a varchar argument.
        "CREATE FUNCTION public.upper(varchar) RETURNS text LANGUAGE sql AS $$ SELECT 'shadowed' $$",
        "CREATE FUNCTION public.same(integer, integer) RETURNS boolean LANGUAGE sql AS $$ SELECT $1 = $2 $$",
        "CREATE OPERATOR public.=== (LEFTARG = integer, RIGHTARG = integer, FUNCTION = public.same)",
        "CREATE TYPE public.mood AS ENUM ('sad', 'happy')",
        "CREATE FUNCTION public.mood_of(integer) RETURNS public.mood LANGUAGE sql"
        " AS $$ SELECT 'happy'::public.mood $$",
        "CREATE CAST (integer AS public.mood) WITH FUNCTION public.mood_of(integer)",
    )
    url = postgres_reader_url(postgres_database)
    objects = inspected("postgres", url)["executables_outside_catalog"].objects
    assert "function public.upper(character varying)" in objects
    assert "operator public.===(integer, integer)" in objects
    assert "cast (integer AS mood) by function public.mood_of" in objects
    # The remedy the doc gives: nobody but the owner may execute them.
    as_postgres(postgres_database, "REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC")
    assert "executables_outside_catalog" not in inspected("postgres", url)


@pytest.mark.usefixtures("datasource_policy")
def test_mariadb_grants(mariadb_database: str) -> None:
    user = f"'{reader_name(mariadb_database)}'@'%'"
    url = mariadb_reader_url(mariadb_database)
    as_root(f"GRANT INSERT ON `{mariadb_database}`.* TO {user}")
    warned = inspected("mysql", url)
    assert warned["write_privileges"].objects == (f"INSERT ON `{mariadb_database}`.*",)
    assert not REFUSED_FINDINGS & set(warned)
    as_root(f"GRANT FILE, SUPER, PROCESS ON *.* TO {user}")
    found = inspected("mysql", url)
    assert found["server_file_read"].objects == found["server_file_write"].objects == ("FILE ON *.*",)
    assert found["superuser"].objects == ("SUPER ON *.*",)
    assert "process_list" in found


@pytest.mark.usefixtures("datasource_policy")
def test_mariadb_grants_through_roles_active_or_not(mariadb_database: str) -> None:
    user = f"'{reader_name(mariadb_database)}'@'%'"
    outer, inner = (f"loupe_role_{secrets.token_hex(4)}" for _ in range(2))
    as_root(
        f"CREATE ROLE {inner}",
        f"GRANT FILE ON *.* TO {inner}",
        f"CREATE ROLE {outer}",
        f"GRANT {inner} TO {outer}",
        f"GRANT {outer} TO {user}",
    )
    try:
        found = inspected("mysql", mariadb_reader_url(mariadb_database))
    finally:
        as_root(f"DROP ROLE {outer}", f"DROP ROLE {inner}")
    assert found["server_file_read"].objects == ("FILE ON *.*",)


def test_show_grants_lines_as_mysql_and_mariadb_write_them() -> None:
    found = {
        item.code: item
        for item in findings_from_grants(
            [
                "GRANT USAGE ON *.* TO `r`@`%` IDENTIFIED BY PASSWORD '*ABC'",
                "GRANT SELECT (id, label), UPDATE (label) ON `shop`.`orders` TO `r`@`%`",
                "GRANT EXECUTE ON PROCEDURE `shop`.`refresh` TO `r`@`%`",
                "GRANT SELECT ON `shop`.* TO `r`@`%` WITH GRANT OPTION",
                "GRANT CREATE USER, SHUTDOWN ON *.* TO `r`@`%`",
                "GRANT PROXY ON ''@'%' TO 'r'@'%'",
                "GRANT `analyst` TO `r`@`%`",
            ]
        )
    }
    assert found["write_privileges"].objects == ("UPDATE ON `shop`.`orders`", "EXECUTE ON `shop`.`refresh`")
    assert found["grant_option"].objects == ("`shop`.*",)
    assert found["create_role"].objects == ("CREATE USER ON *.*",)
    assert found["server_administration"].objects == ("SHUTDOWN ON *.*",)
    assert "superuser" not in found
    everything = findings_from_grants(["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost`"])
    assert [item.code for item in everything] == ["superuser"]
    # A finding names the first 20 objects and counts the rest.
    many = findings_from_grants([f"GRANT INSERT ON `db{n}`.* TO `r`@`%`" for n in range(25)])
    assert (len(many[0].objects), many[0].more) == (20, 5)


def test_duckdb_macros_are_found(datasource_policy: Any) -> None:
    folder = datasource_policy / str(DUCKDB_ORGANIZATION)
    folder.mkdir()
    path = folder / "macros.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
    assert inspected("duckdb", f"duckdb://{path}") == {}
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE MACRO twice(x) AS x * 2")
    assert inspected("duckdb", f"duckdb://{path}")["executables_outside_catalog"].objects == (
        "macro main.twice",
    )


# Through the API.


def test_a_superuser_login_is_refused_until_accepted(
    api: Any, register: Any, clean_db: str, postgres_database: str
) -> None:
    as_postgres(postgres_database, "ALTER ROLE {reader} SUPERUSER")
    admin = register()
    url = postgres_reader_url(postgres_database)
    refused = create(api, admin.access_token, type="postgres", connection_string=url)
    error = assert_error(refused, 422, "login_refused")
    assert "superuser" in error["message"]
    assert "accepted_risks" in error["message"]
    assert [detail["field"] for detail in error["details"]] == ["body.accepted_risks"]
    assert error["details"][0]["issue"].startswith("superuser: The login is a superuser")
    assert api.get(DATASOURCES, token=admin.access_token).json()["total"] == 0
    assert audit_metadata(clean_db, "datasource.login_refused")[0]["findings"] == ["superuser"]

    accepted = create(
        api,
        admin.access_token,
        type="postgres",
        connection_string=url,
        accepted_risks=["superuser", "superuser"],
    )
    datasource_id = created_id(accepted)
    body = accepted.json()
    assert body["accepted_risks"] == ["superuser"]
    assert body["login_audit"]["status"] == "accepted"
    assert body["login_audit"]["inspected_at"] is not None
    superuser = next(item for item in body["login_audit"]["findings"] if item["code"] == "superuser")
    assert (superuser["severity"], superuser["accepted"]) == ("refused", True)
    assert audit_actions(clean_db, datasource_id) == [
        "datasource.created",
        "datasource.risk_accepted",
        "datasource.login_accepted",
    ]


def test_a_function_in_public_is_named_and_refused_until_accepted(
    api: Any, register: Any, postgres_database: str
) -> None:
    as_postgres(
        postgres_database,
        "CREATE FUNCTION public.upper(varchar) RETURNS text LANGUAGE sql AS $$ SELECT 'shadowed' $$",
    )
    admin = register()
    url = postgres_reader_url(postgres_database)
    refused = create(api, admin.access_token, type="postgres", connection_string=url)
    issue = assert_error(refused, 422, "login_refused")["details"][0]["issue"]
    assert issue.startswith("executables_outside_catalog:")
    assert "function public.upper(character varying)" in issue
    accepted = create(
        api,
        admin.access_token,
        type="postgres",
        connection_string=url,
        accepted_risks=["executables_outside_catalog"],
    )
    assert accepted.status == 201, accepted.body
    assert accepted.json()["login_audit"]["status"] == "accepted"


def test_the_documented_login_passes_through_the_api(
    api: Any, register: Any, clean_db: str, postgres_database: str, mariadb_database: str
) -> None:
    admin = register()
    for kind, url in (
        ("postgres", postgres_reader_url(postgres_database)),
        ("mysql", mariadb_reader_url(mariadb_database)),
    ):
        made = create(api, admin.access_token, type=kind, connection_string=url)
        assert made.status == 201, made.body
        assert made.json()["login_audit"]["status"] == "passed"
        assert made.json()["login_audit"]["findings"] == []
        assert audit_actions(clean_db, made.json()["id"]) == ["datasource.created"]


def test_test_and_update_inspect_again(
    api: Any, register: Any, clean_db: str, postgres_database: str
) -> None:
    admin = register()
    datasource_id = created_id(
        create(
            api, admin.access_token, type="postgres", connection_string=postgres_reader_url(postgres_database)
        )
    )
    item = f"{DATASOURCES}/{datasource_id}"
    as_postgres(postgres_database, "ALTER ROLE {reader} SUPERUSER")
    tested = api.post(f"{item}/test", token=admin.access_token)
    assert tested.status == 200, tested.body
    assert tested.json()["ok"] is False
    assert "superuser" in tested.json()["error"]
    assert tested.json()["login_audit"]["status"] == "refused"
    assert api.get(item, token=admin.access_token).json()["login_audit"]["status"] == "refused"

    renamed = api.request("PATCH", item, json_body={"name": "renamed"}, token=admin.access_token)
    assert renamed.status == 200, renamed.body
    accepted = api.request(
        "PATCH", item, json_body={"accepted_risks": ["superuser"]}, token=admin.access_token
    )
    assert accepted.status == 200, accepted.body
    assert accepted.json()["login_audit"]["status"] == "accepted"
    withdrawn = api.request("PATCH", item, json_body={"accepted_risks": []}, token=admin.access_token)
    assert_error(withdrawn, 422, "login_refused")
    assert api.get(item, token=admin.access_token).json()["accepted_risks"] == ["superuser"]

    as_postgres(postgres_database, "ALTER ROLE {reader} NOSUPERUSER")
    retested = api.post(f"{item}/test", token=admin.access_token).json()
    assert (retested["ok"], retested["login_audit"]["status"]) == (True, "passed")
    assert audit_actions(clean_db, datasource_id) == [
        "datasource.created",
        "datasource.login_refused",
        "datasource.updated",
        "datasource.login_accepted",
        "datasource.risk_accepted",
        "datasource.updated",
        "datasource.login_refused",
    ]
    triggers = [event["trigger"] for event in audit_metadata(clean_db, "datasource.login_refused")]
    assert triggers == ["test", "update"]


def test_an_unreachable_datasource_is_saved_not_inspected(api: Any, register: Any) -> None:
    admin = register()
    made = create(api, admin.access_token, type="postgres", connection_string=UNREACHABLE_PG)
    assert made.status == 201, made.body
    assert made.json()["login_audit"] == {"status": "not_inspected", "findings": [], "inspected_at": None}


def test_allowed_functions_are_validated_normalized_and_audited(
    api: Any, register: Any, clean_db: str
) -> None:
    admin = register()
    for names in (["pg sleep"], ["a.b.c"], ["x" * 129], [""], ["f"] * 101):
        refused = create(
            api,
            admin.access_token,
            type="postgres",
            connection_string=UNREACHABLE_PG,
            allowed_functions=names,
        )
        assert_error(refused, 422, "validation_error")["details"][0]["field"].startswith(
            "body.allowed_functions"
        )
    made = create(
        api,
        admin.access_token,
        type="postgres",
        connection_string=UNREACHABLE_PG,
        allowed_functions=["Public.Fiscal_Quarter", "public.fiscal_quarter", "pg_sleep"],
    )
    datasource_id = created_id(made)
    assert made.json()["allowed_functions"] == ["public.fiscal_quarter", "pg_sleep"]
    patched = api.request(
        "PATCH",
        f"{DATASOURCES}/{datasource_id}",
        json_body={"allowed_functions": ["pg_sleep", "upper"]},
        token=admin.access_token,
    )
    assert patched.status == 200, patched.body
    assert audit_metadata(clean_db, "datasource.allowed_functions_changed") == [
        {"added": ["public.fiscal_quarter", "pg_sleep"], "removed": []},
        {"added": ["upper"], "removed": ["public.fiscal_quarter"]},
    ]
    unknown_risk = create(
        api, admin.access_token, type="postgres", connection_string=UNREACHABLE_PG, accepted_risks=["root"]
    )
    assert_error(unknown_risk, 422, "validation_error")


def test_the_finding_codes_are_an_enum_in_the_openapi_document() -> None:
    schemas = json.loads(whole_api_document())["components"]["schemas"]
    assert schemas["LoginFindingOut"]["properties"]["code"]["enum"] == list(LOGIN_FINDING_CODES)
    assert schemas["LoginAudit"]["properties"]["status"]["enum"] == [
        "passed",
        "accepted",
        "refused",
        "not_inspected",
    ]
