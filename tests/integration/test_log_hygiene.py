"""Every auth and datasource flow, driven through the API with secrets it can recognise, and the whole
log output scanned for them: passwords, tokens, API keys and connection-string credentials never
appear, in fields, messages or error text."""

from __future__ import annotations

import io
import logging
import re
import secrets
from typing import Any

from loupe import notify
from loupe.observability import logger
from loupe.security.redaction import mask_handlers
from tests.integration import runs_support
from tests.integration.runs_support import deliver, run_query, setup_org
from tests.integration.test_auth import spent_long_ago
from tests.read_only_logins import READER_PASSWORD, postgres_reader_url

aws = runs_support.aws
postgres_database = runs_support.postgres_database
TOKEN = re.compile(r"lpr_[A-Za-z0-9_-]{40,}")


def secret(label: str) -> str:
    return f"{label}-{secrets.token_hex(8)}"


def test_no_secret_of_any_flow_reaches_the_logs(
    api: Any,
    register: Any,
    clean_db: str,
    aws: str,
    postgres_database: str,
) -> None:
    # What the functions' handler writes, and what a root-logger handler (the Lambda runtime's) would.
    written, root_written = io.StringIO(), io.StringIO()
    previous_stream = logger.registered_handler.setStream(written)  # type: ignore[attr-defined]
    root_handler = logging.StreamHandler(root_written)
    mask_handlers([root_handler])
    logging.getLogger().addHandler(root_handler)
    try:
        used = drive_every_flow(api, register, clean_db, aws, postgres_database)
    finally:
        logging.getLogger().removeHandler(root_handler)
        logger.registered_handler.setStream(previous_stream)  # type: ignore[attr-defined]
    output = written.getvalue() + root_written.getvalue()
    assert '"message":"run finished"' in output, "the logs were captured"
    assert "dsn host=db password=****" in output
    leaked = [value[:10] + "…" for value in used if value in output]
    assert leaked == []


def drive_every_flow(
    api: Any, register: Any, database_url: str, aws: str, postgres_database: str
) -> list[str]:
    """Every auth and datasource flow, with secrets it can recognise; returns those secrets."""
    used: list[str] = []

    def remember(*values: str) -> None:
        used.extend(value for value in values if value)

    first_password, second_password, third_password = secret("pw1"), secret("pw2"), secret("pw3")
    remember(first_password, second_password, third_password)
    account = register(password=first_password)
    remember(account.access_token, account.refresh_token)
    email = account.email

    assert (
        api.post(
            "/api/v1/auth/login", json_body={"email": email, "password": "wrong-" + first_password}
        ).status
        == 401
    )
    logged_in = api.post("/api/v1/auth/login", json_body={"email": email, "password": first_password}).json()
    remember(logged_in["access_token"], logged_in["refresh_token"])
    refreshed = api.post(
        "/api/v1/auth/refresh", json_body={"refresh_token": logged_in["refresh_token"]}
    ).json()
    remember(refreshed["access_token"], refreshed["refresh_token"])
    # A spent refresh token presented again within the grace window (a second tab), then after it: the
    # session is revoked, and logged.
    second_tab = api.post("/api/v1/auth/refresh", json_body={"refresh_token": logged_in["refresh_token"]})
    assert second_tab.json()["refresh_token"] == refreshed["refresh_token"]
    remember(second_tab.json()["access_token"])
    spent_long_ago(database_url, logged_in["refresh_token"])
    assert (
        api.post("/api/v1/auth/refresh", json_body={"refresh_token": logged_in["refresh_token"]}).status
        == 401
    )
    token = account.access_token
    assert api.get("/api/v1/auth/me", token=token).status == 200
    assert api.get("/api/v1/auth/me", token=token + "tampered").status == 401
    changed = api.post(
        "/api/v1/auth/password",
        json_body={"current_password": first_password, "new_password": second_password},
        token=token,
    )
    assert changed.status == 204
    notify.MEMORY.sent.clear()
    assert api.post("/api/v1/auth/password-reset/request", json_body={"email": email}).status == 202
    reset_token = TOKEN.search(notify.MEMORY.sent[-1].text)
    assert reset_token
    remember(reset_token.group(0))
    confirmed = api.post(
        "/api/v1/auth/password-reset/confirm",
        json_body={"token": reset_token.group(0), "new_password": third_password},
    )
    assert confirmed.status == 204
    assert (
        api.post(
            "/api/v1/auth/password-reset/confirm",
            json_body={"token": reset_token.group(0), "new_password": third_password},
        ).status
        == 401
    )

    admin, datasource_id, query_id = setup_org(api, register, postgres_database)
    admin_token = admin.access_token
    remember(admin_token, admin.refresh_token)
    invited = api.post(
        "/api/v1/organizations/invitations",
        json_body={"email": f"{secrets.token_hex(4)}@example.com", "role": "viewer"},
        token=admin_token,
    ).json()
    invitee_password = secret("pw-invitee")
    remember(invited["token"], invitee_password)
    accepted = api.post(
        "/api/v1/auth/accept-invitation",
        json_body={"token": invited["token"], "name": "Invitee", "password": invitee_password},
    )
    assert accepted.status == 201
    remember(accepted.json()["access_token"], accepted.json()["refresh_token"])
    key = api.post("/api/v1/api-keys", json_body={"name": "ci", "role": "viewer"}, token=admin_token).json()
    remember(key["key"])
    assert api.get("/api/v1/queries", headers={"X-Api-Key": key["key"]}).status == 200
    assert api.get("/api/v1/queries", headers={"X-Api-Key": key["key"] + "x"}).status == 401

    datasource_password = READER_PASSWORD
    unreachable_password = secret("ds-pw-down")
    remember(datasource_password, unreachable_password)
    etag = api.get(f"/api/v1/datasources/{datasource_id}", token=admin_token).headers["ETag"]
    patched = api.request(
        "PATCH",
        f"/api/v1/datasources/{datasource_id}",
        json_body={"connection_string": postgres_reader_url(postgres_database)},
        token=admin_token,
        headers={"If-Match": etag},
    )
    assert patched.status == 200, patched.body
    assert api.post(f"/api/v1/datasources/{datasource_id}/test", token=admin_token).status == 200
    assert api.get(f"/api/v1/datasources/{datasource_id}/schema", token=admin_token).status == 200
    started = run_query(api, admin_token, query_id, parameters={"minimum": 1})
    assert started.status == 202
    deliver(aws)
    down = api.post(
        "/api/v1/datasources",
        json_body={
            "name": "down",
            "type": "postgres",
            "connection_string": f"postgresql://loupe:{unreachable_password}@127.0.0.1:1/nowhere",
        },
        token=admin_token,
    )
    assert down.status == 201, down.body
    assert api.post(f"/api/v1/datasources/{down.json()['id']}/test", token=admin_token).status != 500
    refused = api.post(
        "/api/v1/datasources",
        json_body={
            "name": "x",
            "type": "postgres",
            "connection_string": f"postgresql://u:{unreachable_password}@169.254.169.254/x",
        },
        token=admin_token,
    )
    assert refused.status == 422
    # Code that logs carelessly is masked too: a DSN in a message and in a field, an exception's text.
    logger.info(
        f"connecting to postgresql://app:{datasource_password}@db/x", extra={"password": datasource_password}
    )
    try:
        raise RuntimeError(f"password={datasource_password} rejected")
    except RuntimeError:
        logger.exception("driver failed")
    logging.getLogger("some.library").warning("dsn host=db password=%s", datasource_password)
    return used
