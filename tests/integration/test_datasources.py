"""The datasources resource through real API Gateway events: encrypted credentials (KMS in moto),
masked output, the connection policy, roles and tenancy, and test / schema against real databases."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import boto3
import duckdb
import psycopg
import pytest
from moto import mock_aws

from loupe.config import get_settings
from loupe.security import crypto
from tests.integration.test_connectors import throwaway_mariadb, throwaway_postgres
from tests.read_only_logins import (
    READER_PASSWORD,
    mariadb_reader,
    postgres_reader,
    postgres_reader_url,
    reader_name,
)

DATASOURCES = "/api/v1/datasources"
PG_PASSWORD = READER_PASSWORD
# Nothing listens there: such a datasource is saved without being inspected.
UNREACHABLE_PG = "postgresql://u:p@127.0.0.1:1/d"
UNREACHABLE_MYSQL = "mysql://u:p@127.0.0.1:1/d"


@pytest.fixture(autouse=True)
def kms_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A KMS key in moto, named by LOUPE_KMS_KEY_ID; the service's client is made inside the mock."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        crypto.kms_client.cache_clear()
        key_id = boto3.client("kms").create_key(Description="loupe datasources")["KeyMetadata"]["KeyId"]
        monkeypatch.setenv("LOUPE_KMS_KEY_ID", key_id)
        get_settings.cache_clear()
        yield key_id
    crypto.kms_client.cache_clear()


@pytest.fixture(autouse=True)
def datasource_policy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """As in make dev: the local databases are on loopback; DuckDB files live under a tmp folder."""
    monkeypatch.setenv("LOUPE_ALLOW_PRIVATE_DATASOURCE_HOSTS", "true")
    get_settings.cache_clear()
    root = tmp_path / "duckdb"
    root.mkdir()
    monkeypatch.setenv("LOUPE_DUCKDB_ROOT", str(root))
    get_settings.cache_clear()
    return root


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A throwaway database and its documented read-only login."""
    with throwaway_postgres() as name, postgres_reader(name):
        yield name


@pytest.fixture
def mariadb_database() -> Iterator[str]:
    with throwaway_mariadb() as name, mariadb_reader(name):
        yield name


def pg_url(database: str) -> str:
    # The local server may trust loopback, so any password may work; it still must never be shown.
    return postgres_reader_url(database)


def mysql_url(database: str, password: str = READER_PASSWORD) -> str:
    return f"mysql://{reader_name(database)}:{password}@127.0.0.1:3306/{database}"


def create(api: Any, token: str, **body: Any) -> Any:
    return api.post(DATASOURCES, json_body={"name": f"ds-{secrets.token_hex(3)}", **body}, token=token)


def created_id(response: Any) -> str:
    assert response.status == 201, response.body
    return str(response.json()["id"])


def stored_row(database_url: str, datasource_id: str) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT organization_id, connection_ciphertext, connection_display FROM datasources"
            " WHERE id = %s",
            (datasource_id,),
        ).fetchone()
    assert row is not None
    return {"organization_id": row[0], "ciphertext": bytes(row[1]), "display": row[2]}


def set_role(database_url: str, user_id: str, role: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE memberships SET role = %s WHERE user_id = %s", (role, user_id))


def audit_actions(database_url: str, datasource_id: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT action FROM audit_events WHERE target_id = %s ORDER BY created_at", (datasource_id,)
        ).fetchall()
    return [row[0] for row in rows]


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, response.body
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    return error


def test_the_password_is_masked_everywhere_and_encrypted_at_rest(
    api: Any, register: Any, clean_db: str, read_logs: Any, postgres_database: str
) -> None:
    admin = register()
    response = create(api, admin.access_token, type="postgres", connection_string=pg_url(postgres_database))
    datasource_id = created_id(response)
    masked = f"postgresql://{reader_name(postgres_database)}:****@127.0.0.1:5432/{postgres_database}"
    body = response.json()
    assert body["connection_string"] == masked
    assert body["type"] == "postgres"
    assert body["options"] == {"connect_timeout_seconds": 10, "statement_timeout_seconds": 30}
    assert response.header("Location") == f"{DATASOURCES}/{datasource_id}"

    responses = [
        response,
        api.get(f"{DATASOURCES}/{datasource_id}", token=admin.access_token),
        api.get(DATASOURCES, token=admin.access_token),
        api.request(
            "PATCH", f"{DATASOURCES}/{datasource_id}", json_body={"name": "renamed"}, token=admin.access_token
        ),
        api.post(f"{DATASOURCES}/{datasource_id}/test", token=admin.access_token),
    ]
    assert [item.status for item in responses] == [201, 200, 200, 200, 200]
    assert responses[2].json()["items"][0]["connection_string"] == masked
    assert responses[3].json()["connection_string"] == masked
    for item in responses:
        assert PG_PASSWORD not in item.body
    logs = read_logs()
    assert logs, "the access log should have lines"
    assert all(PG_PASSWORD not in str(line) for line in logs)

    row = stored_row(clean_db, datasource_id)
    assert row["display"] == masked
    for plain in (PG_PASSWORD.encode(), postgres_database.encode(), b"127.0.0.1", b"postgresql://"):
        assert plain not in row["ciphertext"]
    assert row["ciphertext"][0] == crypto.FORMAT_V1
    # The envelope opens for its organization only.
    assert crypto.decrypt(row["ciphertext"], row["organization_id"]) == pg_url(postgres_database).encode()
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt(row["ciphertext"], UUID(int=1))


def test_connection_test_and_schema_against_postgres(api: Any, register: Any, postgres_database: str) -> None:
    admin = register()
    datasource_id = created_id(
        create(api, admin.access_token, type="postgres", connection_string=pg_url(postgres_database))
    )
    tested = api.post(f"{DATASOURCES}/{datasource_id}/test", token=admin.access_token)
    assert tested.status == 200, tested.body
    assert tested.json()["ok"] is True
    assert tested.json()["latency_ms"] > 0
    assert tested.json().get("error") is None

    schema = api.get(f"{DATASOURCES}/{datasource_id}/schema", token=admin.access_token)
    assert schema.status == 200, schema.body
    assert {
        "schema": "public",
        "name": "widgets",
        "columns": [
            {"name": "id", "type": "integer"},
            {"name": "label", "type": "text"},
        ],
    } in schema.json()["tables"]


def test_connection_test_and_schema_against_mariadb(api: Any, register: Any, mariadb_database: str) -> None:
    admin = register()
    datasource_id = created_id(
        create(api, admin.access_token, type="mysql", connection_string=mysql_url(mariadb_database))
    )
    assert api.get(f"{DATASOURCES}/{datasource_id}", token=admin.access_token).json()[
        "connection_string"
    ] == (f"mysql://{reader_name(mariadb_database)}:****@127.0.0.1:3306/{mariadb_database}")
    tested = api.post(f"{DATASOURCES}/{datasource_id}/test", token=admin.access_token)
    assert tested.status == 200, tested.body
    assert tested.json()["ok"] is True

    schema = api.get(f"{DATASOURCES}/{datasource_id}/schema", token=admin.access_token)
    assert schema.status == 200, schema.body
    assert schema.json() == {
        "tables": [
            {
                "schema": mariadb_database,
                "name": "widgets",
                "columns": [{"name": "id", "type": "int(11)"}, {"name": "label", "type": "varchar(50)"}],
            }
        ]
    }


def test_a_failed_connection_is_an_answer_without_the_password(
    api: Any, register: Any, mariadb_database: str
) -> None:
    admin = register()
    wrong = "Wr0ng-" + secrets.token_hex(4)
    datasource_id = created_id(
        create(api, admin.access_token, type="mysql", connection_string=mysql_url(mariadb_database, wrong))
    )
    tested = api.post(f"{DATASOURCES}/{datasource_id}/test", token=admin.access_token)
    assert tested.status == 200, tested.body
    assert tested.json()["ok"] is False
    assert "Access denied" in tested.json()["error"]
    assert wrong not in tested.body

    schema = api.get(f"{DATASOURCES}/{datasource_id}/schema", token=admin.access_token)
    error = assert_error(schema, 503, "service_unavailable")
    assert "Access denied" in error["message"]
    assert wrong not in schema.body


def duckdb_file_of(root: Path, organization_id: str, name: str = "shop.duckdb") -> Path:
    """A DuckDB file with one table in the organization's folder under the allowed root."""
    path = root / organization_id / name
    path.parent.mkdir(exist_ok=True)
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER, total DECIMAL(10, 2))")
    return path


def test_duckdb_file_under_the_allowed_folder(api: Any, register: Any, datasource_policy: Path) -> None:
    admin = register()
    path = duckdb_file_of(datasource_policy, admin.organization_id)
    response = create(api, admin.access_token, type="duckdb", connection_string=f"duckdb://{path}")
    datasource_id = created_id(response)
    assert response.json()["connection_string"] == f"duckdb://{path}"
    schema = api.get(f"{DATASOURCES}/{datasource_id}/schema", token=admin.access_token)
    assert schema.status == 200, schema.body
    assert schema.json()["tables"] == [
        {
            "schema": "main",
            "name": "orders",
            "columns": [{"name": "id", "type": "INTEGER"}, {"name": "total", "type": "DECIMAL(10,2)"}],
        }
    ]


def test_an_organization_cannot_open_anothers_duckdb_file(
    api: Any, register: Any, datasource_policy: Path, clean_db: str
) -> None:
    owner, other = register(), register()
    path = duckdb_file_of(datasource_policy, owner.organization_id)
    (datasource_policy / other.organization_id).mkdir()
    (datasource_policy / other.organization_id / "link.duckdb").symlink_to(path)
    for spelling in (
        f"duckdb://{path}",
        f"duckdb:../{owner.organization_id}/shop.duckdb",
        f"duckdb://{datasource_policy / other.organization_id}/../{owner.organization_id}/shop.duckdb",
        "duckdb:link.duckdb",
    ):
        response = create(api, other.access_token, type="duckdb", connection_string=spelling)
        error = assert_error(response, 422, "validation_error")
        assert "inside the organization's datasource folder" in error["details"][0]["issue"]
    # A connection string stored before the folders existed is refused when it is used.
    own = duckdb_file_of(datasource_policy, other.organization_id, "own.duckdb")
    datasource_id = created_id(
        create(api, other.access_token, type="duckdb", connection_string=f"duckdb://{own}")
    )
    with psycopg.connect(clean_db) as conn:
        conn.execute(
            "UPDATE datasources SET connection_ciphertext = %s WHERE id = %s",
            (crypto.encrypt(f"duckdb://{path}".encode(), UUID(other.organization_id)), datasource_id),
        )
    tested = api.post(f"{DATASOURCES}/{datasource_id}/test", token=other.access_token)
    assert tested.status == 200, tested.body
    assert tested.json()["ok"] is False
    assert "inside the organization's datasource folder" in tested.json()["error"]
    schema = api.get(f"{DATASOURCES}/{datasource_id}/schema", token=other.access_token)
    assert_error(schema, 503, "service_unavailable")


@pytest.mark.parametrize(
    ("kind", "connection_string", "issue"),
    [
        ("postgres", "postgresql://u:Hunter2pw@169.254.169.254:5432/d", "link-local"),
        ("postgres", "postgresql://u:Hunter2pw@[::ffff:169.254.169.254]:5432/d", "link-local"),
        ("mysql", "mysql://u:Hunter2pw@metadata.google.internal:3306/d", "metadata"),
        ("mysql", "mysql://u:Hunter2pw@db.example.com:3306/d?local_infile=1", "opens files"),
        ("mysql", "mysql://u:Hunter2pw@db.example.com:3306/d?allowLoadLocalInfile=true", "opens files"),
        (
            "postgres",
            "postgresql://u:Hunter2pw@db.example.com/d?sslkey=/etc/ssl/private/key.pem",
            "opens files",
        ),
        ("duckdb", "duckdb:///etc/passwd", "inside the organization's"),
        ("duckdb", "duckdb:shop.duckdb?allow_unsigned_extensions=true", "loads code"),
        ("mysql", "postgresql://u:Hunter2pw@db.example.com/d", "starts with"),
        ("mysql", "mysql://u:Hunter2pw@db.example.com:3306/mysql", "the server's own"),
        ("mysql", "mariadb://u:Hunter2pw@db.example.com/Performance_Schema", "the server's own"),
        ("mysql", "mysql://u:Hunter2pw@db.example.com/sys", "the server's own"),
        ("mysql", "mysql://u:Hunter2pw@db.example.com/INFORMATION_SCHEMA", "the server's own"),
        ("postgres", "postgresql://u:Hunter2pw@no-such-host.invalid/d", "does not resolve"),
    ],
)
def test_refused_connection_strings(
    api: Any, register: Any, kind: str, connection_string: str, issue: str
) -> None:
    admin = register()
    response = create(api, admin.access_token, type=kind, connection_string=connection_string)
    error = assert_error(response, 422, "validation_error")
    assert error["details"][0]["field"] == "body.connection_string"
    assert issue in error["details"][0]["issue"]
    assert "Hunter2pw" not in response.body


def test_loopback_is_refused_unless_the_settings_allow_it(
    api: Any, register: Any, monkeypatch: pytest.MonkeyPatch, postgres_database: str
) -> None:
    admin = register()
    datasource_id = created_id(
        create(api, admin.access_token, type="postgres", connection_string=pg_url(postgres_database))
    )
    monkeypatch.setenv("LOUPE_ALLOW_PRIVATE_DATASOURCE_HOSTS", "false")
    get_settings.cache_clear()
    refused = create(api, admin.access_token, type="postgres", connection_string=pg_url(postgres_database))
    assert "loopback or private" in assert_error(refused, 422, "validation_error")["details"][0]["issue"]
    # A datasource saved earlier is checked again when it connects.
    tested = api.post(f"{DATASOURCES}/{datasource_id}/test", token=admin.access_token)
    assert tested.json()["ok"] is False
    assert "loopback or private" in tested.json()["error"]


def test_body_validation(api: Any, register: Any) -> None:
    admin = register()
    url = UNREACHABLE_PG
    unknown_option = create(api, admin.access_token, type="postgres", connection_string=url, options={"x": 1})
    assert assert_error(unknown_option, 422, "validation_error")["details"][0]["field"] == "body.options.x"
    bad_type = create(api, admin.access_token, type="oracle", connection_string=url)
    assert assert_error(bad_type, 422, "validation_error")["details"][0]["field"] == "body.type"
    too_slow = create(
        api,
        admin.access_token,
        type="postgres",
        connection_string=url,
        options={"statement_timeout_seconds": 901},
    )
    assert_error(too_slow, 422, "validation_error")
    first = create(api, admin.access_token, type="postgres", connection_string=url)
    assert first.status == 201
    duplicate = api.post(
        DATASOURCES,
        json_body={"name": first.json()["name"], "type": "postgres", "connection_string": url},
        token=admin.access_token,
    )
    assert_error(duplicate, 409, "conflict")


def test_patch_reencrypts_and_keeps_the_type(
    api: Any, register: Any, clean_db: str, postgres_database: str
) -> None:
    admin = register()
    datasource_id = created_id(
        create(
            api, admin.access_token, type="postgres", connection_string="postgresql://u:old-pw@127.0.0.1:1/d"
        )
    )
    before = stored_row(clean_db, datasource_id)
    item = f"{DATASOURCES}/{datasource_id}"
    patched = api.request(
        "PATCH",
        item,
        json_body={
            "connection_string": pg_url(postgres_database),
            "options": {"statement_timeout_seconds": 5},
        },
        token=admin.access_token,
    )
    assert patched.status == 200, patched.body
    assert (
        patched.json()["connection_string"]
        == f"postgresql://{reader_name(postgres_database)}:****@127.0.0.1:5432/{postgres_database}"
    )
    assert patched.json()["options"]["statement_timeout_seconds"] == 5
    after = stored_row(clean_db, datasource_id)
    assert after["ciphertext"] != before["ciphertext"]
    assert api.post(f"{item}/test", token=admin.access_token).json()["ok"] is True

    for body, field in (
        ({"type": "mysql"}, "body.type"),
        ({"name": None}, "body.name"),
        ({"connection_string": "mysql://u:p@8.8.8.8/d"}, "body.connection_string"),
    ):
        response = api.request("PATCH", item, json_body=body, token=admin.access_token)
        assert assert_error(response, 422, "validation_error")["details"][0]["field"] == field

    stale = api.request(
        "PATCH", item, json_body={"name": "x"}, token=admin.access_token, headers={"If-Match": '"0"'}
    )
    assert_error(stale, 412, "precondition_failed")
    assert api.delete(item, token=admin.access_token).status == 204
    assert api.get(item, token=admin.access_token).status == 404
    assert audit_actions(clean_db, datasource_id) == [
        "datasource.created",
        "datasource.updated",
        "datasource.deleted",
    ]


def test_every_role_reads_only_admins_write(
    api: Any, register: Any, clean_db: str, postgres_database: str
) -> None:
    user = register()
    datasource_id = created_id(
        create(api, user.access_token, type="postgres", connection_string=pg_url(postgres_database))
    )
    item = f"{DATASOURCES}/{datasource_id}"
    for role in ("viewer", "editor"):
        set_role(clean_db, user.user_id, role)
        assert api.get(DATASOURCES, token=user.access_token).json()["total"] == 1
        assert api.get(item, token=user.access_token).status == 200
        assert api.get(f"{item}/schema", token=user.access_token).status == 200
        assert api.post(f"{item}/test", token=user.access_token).json()["ok"] is True
        writes = [
            create(api, user.access_token, type="postgres", connection_string=pg_url(postgres_database)),
            api.request("PATCH", item, json_body={"name": "mine now"}, token=user.access_token),
            api.delete(item, token=user.access_token),
        ]
        for response in writes:
            assert_error(response, 403, "forbidden")
    assert audit_actions(clean_db, datasource_id) == ["datasource.created"]


def test_another_organization_sees_nothing(api: Any, register: Any, clean_db: str) -> None:
    owner, stranger = register(), register()
    datasource_id = created_id(
        create(api, owner.access_token, type="postgres", connection_string=UNREACHABLE_PG)
    )
    item = f"{DATASOURCES}/{datasource_id}"
    assert api.get(DATASOURCES, token=stranger.access_token).json()["total"] == 0
    for response in (
        api.get(item, token=stranger.access_token),
        api.request("PATCH", item, json_body={"name": "x"}, token=stranger.access_token),
        api.delete(item, token=stranger.access_token),
        api.post(f"{item}/test", token=stranger.access_token),
        api.get(f"{item}/schema", token=stranger.access_token),
    ):
        assert_error(response, 404, "not_found")


def test_credentials_copied_to_another_organization_do_not_decrypt(
    api: Any, register: Any, clean_db: str, postgres_database: str
) -> None:
    owner, thief = register(), register()
    stolen = created_id(
        create(api, owner.access_token, type="postgres", connection_string=pg_url(postgres_database))
    )
    target = created_id(create(api, thief.access_token, type="postgres", connection_string=UNREACHABLE_PG))
    with psycopg.connect(clean_db) as conn:
        conn.execute(
            "UPDATE datasources SET connection_ciphertext = (SELECT connection_ciphertext FROM datasources"
            " WHERE id = %s) WHERE id = %s",
            (stolen, target),
        )
    tested = api.post(f"{DATASOURCES}/{target}/test", token=thief.access_token)
    assert tested.json() == {
        "ok": False,
        "latency_ms": tested.json()["latency_ms"],
        "error": tested.json()["error"],
        "login_audit": {"status": "not_inspected", "findings": [], "inspected_at": None},
    }
    assert "cannot be decrypted" in tested.json()["error"]


def test_list_filters_by_type(api: Any, register: Any) -> None:
    admin = register()
    create(api, admin.access_token, type="postgres", connection_string=UNREACHABLE_PG)
    create(api, admin.access_token, type="mysql", connection_string=UNREACHABLE_MYSQL)
    listed = api.get(DATASOURCES, token=admin.access_token, query={"type": "mysql"})
    assert listed.status == 200, listed.body
    assert [item["type"] for item in listed.json()["items"]] == ["mysql"]
    assert_error(
        api.get(DATASOURCES, token=admin.access_token, query={"type": "oracle"}), 422, "validation_error"
    )


def test_without_kms_nothing_is_stored(api: Any, register: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = register()
    monkeypatch.delenv("LOUPE_KMS_KEY_ID")
    get_settings.cache_clear()
    response = create(api, admin.access_token, type="postgres", connection_string=UNREACHABLE_PG)
    assert_error(response, 503, "service_unavailable")
    assert api.get(DATASOURCES, token=admin.access_token).json()["total"] == 0
