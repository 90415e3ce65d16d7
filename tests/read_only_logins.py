"""Read-only logins made with the statements docs/datasource-logins.md gives, on the local PostgreSQL
and MariaDB: the recommended login for every test that runs queries through a datasource."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import psycopg
import pymysql
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "datasource-logins.md"
# The README shows the same statements; a test keeps the two equal.
README = ROOT / "README.md"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/{database}"
MARIADB = ("127.0.0.1", 3306)
# The names the doc's statements use, replaced by each test's own.
DOC_ROLE, DOC_DATABASE, DOC_PASSWORD = "loupe_reader", "shop", "change-me"
READER_PASSWORD = "reader-" + secrets.token_hex(8)


def reader_name(database: str) -> str:
    """The read-only login of a throwaway database (whose name is already random)."""
    return f"{database}_reader"


def postgres_reader_url(database: str) -> str:
    return f"postgresql://{reader_name(database)}:{READER_PASSWORD}@127.0.0.1:5432/{database}"


def mariadb_reader_url(database: str) -> str:
    return f"mysql://{reader_name(database)}:{READER_PASSWORD}@127.0.0.1:3306/{database}"


def statements_block(engine: Literal["postgres", "mysql"], document: Path = DOC) -> str:
    """The SQL block a document marks with `<!-- statements: engine -->`."""
    found = re.search(
        rf"<!-- statements: {engine} -->\n```sql\n(.*?)```", document.read_text(encoding="utf-8"), re.DOTALL
    )
    assert found, f"{document.name} has no statements for {engine}"
    return found.group(1)


def documented_statements(
    engine: Literal["postgres", "mysql"], *, role: str, database: str, password: str
) -> list[str]:
    """The doc's statements for `engine`, in order, with its names replaced."""
    block = re.sub(rf"\b{DOC_ROLE}\b", role, statements_block(engine))
    block = re.sub(rf"\b{DOC_DATABASE}\b", database, block).replace(DOC_PASSWORD, password)
    return [statement.strip() for statement in block.split(";\n") if statement.strip().rstrip(";")]


@contextmanager
def postgres_reader(database: str) -> Iterator[str]:
    """A login made by the doc's statements in `database` on the local PostgreSQL; yields its URL.
    The role is dropped after (its grants in the database first)."""
    role = reader_name(database)
    admin_url = POSTGRES_ADMIN.format(database=database)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for statement in documented_statements(
            "postgres", role=role, database=database, password=READER_PASSWORD
        ):
            conn.execute(statement.encode())
    try:
        yield postgres_reader_url(database)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@contextmanager
def mariadb_reader(database: str) -> Iterator[str]:
    """A login made by the doc's statements for `database` on the local MariaDB; yields its URL."""
    user = reader_name(database)
    root = pymysql.connect(host=MARIADB[0], port=MARIADB[1], user="root", autocommit=True)
    try:
        with root.cursor() as cursor:
            for statement in documented_statements(
                "mysql", role=user, database=database, password=READER_PASSWORD
            ):
                cursor.execute(statement)
        yield mariadb_reader_url(database)
    finally:
        with root.cursor() as cursor:
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        root.close()
