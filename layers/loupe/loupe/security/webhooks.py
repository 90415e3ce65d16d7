"""Webhooks: URLs checked against the datasources' network policy when saved and again when called, a
POST that connects to the address it checked and never follows a redirect, and the HMAC signature a
receiver checks (docs/deliveries.md)."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from loupe.deadline import Overran, call_within
from loupe.security.connection_policy import (
    ConnectionPolicyError,
    PolicySettings,
    check_host,
    check_hostname_syntax,
    policy_settings,
)

DEFAULT_PORTS = {"https": 443, "http": 80}
# Enough of an answer to read its status; the body is not used.
MAX_RESPONSE_BYTES = 4096
SIGNATURE_HEADER = "Loupe-Signature"
DELIVERY_HEADER = "Loupe-Delivery-Id"


class WebhookFailed(Exception):
    """The webhook could not be called, or did not answer 2xx; the message never repeats the URL."""


@dataclass(frozen=True)
class WebhookTarget:
    scheme: str
    host: str
    port: int
    target: str

    def display(self) -> str:
        """Scheme and host: the path and query of a webhook URL often carry its secret."""
        default = DEFAULT_PORTS[self.scheme] == self.port
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}" + ("" if default else f":{self.port}")


def parse_webhook_url(url: str, settings: PolicySettings | None = None) -> WebhookTarget:
    """The URL's parts, once it is an absolute https URL (http too where private hosts are allowed)
    without credentials or a fragment; no network access."""
    settings = settings or policy_settings()
    if not url.isascii():
        raise ConnectionPolicyError("the webhook URL must be ASCII: percent-encode other characters")
    if any(ord(character) <= 32 or ord(character) == 127 for character in url):
        raise ConnectionPolicyError("the webhook URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConnectionPolicyError("the webhook URL is not a valid URL (check the port)") from None
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if settings.allow_private_hosts else ("https",)
    if scheme not in allowed:
        raise ConnectionPolicyError(
            f"a webhook URL starts with {' or '.join(f'{name}://' for name in allowed)}"
        )
    if parts.username is not None or parts.password is not None:
        raise ConnectionPolicyError("a webhook URL may not carry credentials before its host")
    if parts.fragment:
        raise ConnectionPolicyError("a webhook URL may not have a #fragment")
    host = (parts.hostname or "").lower()
    if not host:
        raise ConnectionPolicyError("the webhook URL must name a host")
    if "%" in host:
        raise ConnectionPolicyError("the webhook host may not name a zone")
    check_hostname_syntax(host)
    if port == 0:
        raise ConnectionPolicyError("the port must be between 1 and 65535")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WebhookTarget(scheme=scheme, host=host, port=port or DEFAULT_PORTS[scheme], target=target)


def check_webhook_url(url: str, settings: PolicySettings | None = None) -> WebhookTarget:
    """Parse the URL and check every address its host resolves to, as for a datasource's host."""
    settings = settings or policy_settings()
    webhook = parse_webhook_url(url, settings)
    check_host(webhook.host, settings)
    return webhook


def signature(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, one v1 per secret (the current one first,
    then one being rotated out), as Stripe-style receivers check it."""
    signed = str(timestamp).encode() + b"." + body
    digests = (hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest() for secret in secrets)
    return ",".join([f"t={timestamp}", *(f"v1={value}" for value in digests)])


class _PinnedConnection(http.client.HTTPConnection):
    """Connects to an address already checked, while the Host header and TLS name stay the URL's host:
    a second DNS answer cannot swap in another address."""

    def __init__(self, webhook: WebhookTarget, address: str, timeout: float) -> None:
        super().__init__(webhook.host, webhook.port, timeout=timeout)
        self._address = address
        self._tls = ssl.create_default_context() if webhook.scheme == "https" else None

    def connect(self) -> None:
        connection = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(connection, server_hostname=self.host) if self._tls else connection


def post_json(
    url: str,
    body: bytes,
    timeout_seconds: float,
    settings: PolicySettings | None = None,
    headers: Mapping[str, str] | None = None,
) -> None:
    """POST `body` as JSON (with `headers` too); returns on a 2xx answer, raises WebhookFailed otherwise,
    and whatever the server does, within twice `timeout_seconds` (a server that answers a byte at a time
    is cut off)."""
    deadline = 2 * timeout_seconds
    extra = dict(headers or {})
    try:
        call_within(deadline, lambda: _post_json(url, body, timeout_seconds, settings, extra), "webhook")
    except Overran:
        raise WebhookFailed(f"the webhook did not answer within {deadline:g} s") from None
    except WebhookFailed:
        raise
    except Exception as error:
        raise WebhookFailed(f"the webhook call failed: {type(error).__name__}") from None


def _post_json(
    url: str, body: bytes, timeout_seconds: float, settings: PolicySettings | None, extra: dict[str, str]
) -> None:
    try:
        webhook = parse_webhook_url(url, settings)
        address = check_host(webhook.host, settings)[0]
    except ConnectionPolicyError as error:
        raise WebhookFailed(f"refused by the network policy: {error}") from None
    connection = _PinnedConnection(webhook, address, timeout_seconds)
    try:
        connection.request(
            "POST",
            webhook.target,
            body=body,
            headers={"Content-Type": "application/json", "User-Agent": "Loupe-Alerts/1", **extra},
        )
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)
    except (OSError, http.client.HTTPException) as error:
        raise WebhookFailed(f"{webhook.display()} could not be reached: {type(error).__name__}") from None
    finally:
        connection.close()
    if 300 <= response.status < 400:
        raise WebhookFailed(
            f"{webhook.display()} answered HTTP {response.status}; redirects are not followed"
        )
    if not 200 <= response.status < 300:
        raise WebhookFailed(f"{webhook.display()} answered HTTP {response.status}")
