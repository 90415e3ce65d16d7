"""Real drivers' connection and query errors pass through `scrubbed` unchanged whatever the password:
psycopg and PyMySQL against the local servers with wrong credentials, DuckDB on a file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import duckdb
import psycopg
import pymysql
import pytest

from loupe.config import get_settings
from loupe.connectors import ConnectionSpec, ConnectorError, scrubbed
from tests.integration.test_connectors import (
    LOCAL_MARIADB,
    open_session,
    require_port,
    throwaway_mariadb,
)

PASSWORDS = ["x", "e", "xis", "exist", "Access", "a.b*c+(d)[e]?^$|\\1"]


@pytest.fixture(autouse=True)
def private_hosts_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOUPE_ALLOW_PRIVATE_DATASOURCE_HOSTS", "true")
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def mariadb_database() -> Iterator[str]:
    with throwaway_mariadb() as name:
        yield name


def first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0]


@pytest.mark.parametrize("password", PASSWORDS)
def test_psycopg_errors_keep_their_words(password: str) -> None:
    require_port(("127.0.0.1", 5432), "PostgreSQL")
    database = "loupe_no_such_database_exists"
    with pytest.raises(psycopg.OperationalError) as raw:
        psycopg.connect(host="127.0.0.1", port=5432, user="postgres", password=password, dbname=database)
    with pytest.raises(ConnectorError) as ours:
        open_session(
            "postgres", f"postgresql://postgres:{quote(password, safe='')}@127.0.0.1:5432/{database}"
        )
    assert f'database "{database}" does not exist' in str(ours.value)
    assert str(ours.value) == first_line(raw.value)[:300]


@pytest.mark.parametrize("password", PASSWORDS)
def test_pymysql_errors_keep_their_words(mariadb_database: str, password: str) -> None:
    """The reader exists with another password: a real 'Access denied'."""
    host, port = LOCAL_MARIADB
    with pytest.raises(pymysql.err.OperationalError) as raw:
        pymysql.connect(
            host=host, port=port, user=mariadb_database, password=password, database=mariadb_database
        )
    url = f"mysql://{mariadb_database}:{quote(password, safe='')}@127.0.0.1:3306/{mariadb_database}"
    with pytest.raises(ConnectorError) as ours:
        open_session("mysql", url)
    assert "Access denied for user" in str(ours.value)
    assert "(using password: YES)" in str(ours.value)
    # The driver names the client's host as the server saw it: the same for both connections.
    assert str(ours.value) == first_line(raw.value)


@pytest.mark.parametrize("password", PASSWORDS)
def test_duckdb_errors_keep_their_words(tmp_path: Path, password: str) -> None:
    with duckdb.connect(str(tmp_path / "shop.duckdb")) as conn, pytest.raises(duckdb.Error) as raw:
        conn.execute("SELECT * FROM xis_does_not_exist")
    spec = ConnectionSpec(type="postgres", user="reader", password=password)
    assert scrubbed(raw.value, spec) == first_line(raw.value)[:300]
    assert "xis_does_not_exist does not exist" in scrubbed(raw.value, spec)
