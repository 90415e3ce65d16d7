"""Destinations: where reports and alerts go (a mail list, a Slack-compatible or a generic webhook).
Admins write them and every role lists them; a test, a report and an alert are delivered by one path.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from loupe import db, notify
from loupe.config import get_settings
from loupe.errors import Conflict, Dependent, FieldIssue, InvalidInput
from loupe.models.destinations import (
    DestinationCreate,
    DestinationOut,
    DestinationTestOut,
    DestinationUpdate,
    SecretRotated,
)
from loupe.models.identity import Principal
from loupe.models.organizations import OrganizationSettings
from loupe.observability import logger
from loupe.repositories import crud
from loupe.repositories import destinations as repository
from loupe.repositories import organizations as organizations_repository
from loupe.repositories.destinations import DESTINATIONS
from loupe.results.store import s3_client
from loupe.security import crypto, tokens
from loupe.security.connection_policy import ConnectionPolicyError
from loupe.security.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    WebhookFailed,
    check_webhook_url,
    post_json,
    signature,
)
from loupe.services import audit, dependents
from loupe.services.resources import ResourceService, Versioned
from loupe.versions import ExpectedVersions, require_version

# After a rotation the previous secret signs beside the new one this long, while receivers switch.
ROTATION_OVERLAP = timedelta(hours=24)


class DeliveryFailed(Exception):
    """The destination did not take the message; the text never repeats a webhook's path or query."""


@dataclass(frozen=True)
class Message:
    """What is delivered: a mail's subject and text (a Slack message's text too), and the JSON event a
    webhook receives as `data`, under an id that stays the same on every attempt to deliver it."""

    kind: str
    subject: str
    text: str
    data: Mapping[str, Any] = field(default_factory=dict)
    id: UUID = field(default_factory=uuid.uuid4)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Files a mail carries (a report's pictures and rows); other destinations get links in `data`.
    attachments: tuple[notify.Attachment, ...] = ()


@dataclass(frozen=True)
class Sealed:
    """A webhook destination's secrets: its URL and signing secrets, the current one first."""

    url: str
    secrets: list[str]


def _seal(organization_id: UUID, sealed: Sealed) -> bytes:
    return crypto.encrypt(
        json.dumps({"url": sealed.url, "secrets": sealed.secrets}).encode(), organization_id
    )


def _open(organization_id: UUID, row: Mapping[str, Any]) -> Sealed:
    opened = json.loads(crypto.decrypt(bytes(row["secrets_ciphertext"]), organization_id))
    return Sealed(opened["url"], list(opened["secrets"]))


def _checked_url(url: str) -> str:
    """The URL's scheme and host, once its host passes the network policy."""
    try:
        return check_webhook_url(url).display()
    except ConnectionPolicyError as error:
        raise InvalidInput(
            "The URL is not one Loupe may call", issues=[FieldIssue("url", str(error))]
        ) from None


def _checked_prefix(prefix: str) -> str:
    if get_settings().delivery_bucket is None:
        raise InvalidInput(
            "This deployment has no delivery bucket (LOUPE_DELIVERY_BUCKET): S3 destinations are off",
            issues=[FieldIssue("prefix", "no delivery bucket to write under")],
        )
    return prefix


def _allowed(address: str, allowed: Sequence[str]) -> bool:
    domain = "@" + address.rsplit("@", 1)[-1]
    return address in allowed or domain in allowed


def outside_recipients(organization_id: UUID, recipients: Sequence[str]) -> list[str]:
    """The recipients who are neither members nor allowed by the organization's settings."""
    record = organizations_repository.get(organization_id)
    settings = OrganizationSettings.model_validate(record.settings if record else {})
    allowed = [entry.lower() for entry in settings.delivery_allowed_recipients]
    members = repository.member_addresses(organization_id, recipients)
    return [address for address in recipients if address not in members and not _allowed(address, allowed)]


def _checked_recipients(organization_id: UUID, recipients: Sequence[str]) -> list[str]:
    outside = set(outside_recipients(organization_id, recipients))
    if outside:
        raise InvalidInput(
            "Destinations mail members, and others only at addresses or domains an admin allows"
            " (the organization's `delivery_allowed_recipients`)",
            issues=[
                FieldIssue(f"to.{index}", "not a member's address, nor an allowed one")
                for index, address in enumerate(recipients)
                if address in outside
            ],
        )
    return list(recipients)


class DestinationService(ResourceService[DestinationCreate, DestinationUpdate, DestinationOut]):
    def to_out(self, row: dict[str, Any]) -> DestinationOut:
        return DestinationOut.model_validate({**row, "to": row["recipients"], "url": row["url_display"]})

    def values_for_create(self, principal: Principal, body: DestinationCreate) -> dict[str, Any]:
        values: dict[str, Any] = {"name": body.name, "type": body.type}
        if body.to is not None:
            values["recipients"] = _checked_recipients(principal.organization_id, body.to)
        if body.prefix is not None:
            values["prefix"] = _checked_prefix(body.prefix)
        if body.url is not None:
            secrets = (
                [tokens.new_secret_token(tokens.WEBHOOK_SECRET_PREFIX)] if body.type == "webhook" else []
            )
            values["url_display"] = _checked_url(body.url)
            values["secrets_ciphertext"] = _seal(principal.organization_id, Sealed(body.url, secrets))
        return values

    def create(self, principal: Principal, body: DestinationCreate) -> Versioned[DestinationOut]:
        """The destination; a webhook's answer carries its signing secret, this once."""
        made = super().create(principal, body)
        if body.type == "webhook":
            with db.transaction():
                row = self._existing(principal, made.resource.id)
                made.resource.signing_secret = _open(principal.organization_id, row).secrets[0]
        return made

    def values_for_update(
        self, principal: Principal, body: DestinationUpdate, current: dict[str, Any]
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if body.name is not None:
            values["name"] = body.name
        if body.to is not None:
            if current["type"] != "email":
                raise InvalidInput(
                    issues=[FieldIssue("to", f"a {current['type']} destination has no recipients")]
                )
            values["recipients"] = _checked_recipients(principal.organization_id, body.to)
        if body.prefix is not None:
            if current["type"] != "s3":
                raise InvalidInput(
                    issues=[FieldIssue("prefix", f"a {current['type']} destination has no prefix")]
                )
            values["prefix"] = _checked_prefix(body.prefix)
        if body.url is not None:
            if current["type"] not in ("slack", "webhook"):
                raise InvalidInput(issues=[FieldIssue("url", f"a {current['type']} destination has no URL")])
            kept = _open(principal.organization_id, current)
            values["url_display"] = _checked_url(body.url)
            values["secrets_ciphertext"] = _seal(principal.organization_id, Sealed(body.url, kept.secrets))
        return values

    def dependents(self, principal: Principal, current: dict[str, Any]) -> list[Dependent]:
        return dependents.of_destination(principal.organization_id, current["id"])

    def rotate_secret(
        self, principal: Principal, destination_id: UUID, expected: ExpectedVersions
    ) -> SecretRotated:
        """A new signing secret; the current one goes on signing beside it for ROTATION_OVERLAP."""
        with db.transaction():
            current = self._existing(principal, destination_id, for_update=True)
            require_version(expected, self.version(current))
            if current["type"] != "webhook":
                raise Conflict(f"A {current['type']} destination signs nothing: only webhooks have a secret")
            url, live = _signing_secrets(principal.organization_id, current)
            secret = tokens.new_secret_token(tokens.WEBHOOK_SECRET_PREFIX)
            until = datetime.now(UTC) + ROTATION_OVERLAP
            values = {
                # Every secret still signing goes on signing (a second rotation within the overlap keeps
                # the first one's previous secret too), at most three.
                "secrets_ciphertext": _seal(principal.organization_id, Sealed(url, [secret, *live][:3])),
                "previous_secret_until": until,
            }
            crud.update(DESTINATIONS, principal.organization_id, destination_id, values)
            audit.record_by(
                principal, "destination.secret_rotated", target_type="destination", target_id=destination_id
            )
        return SecretRotated(signing_secret=secret, previous_secret_until=until)

    def test(self, principal: Principal, destination_id: UUID) -> DestinationTestOut:
        """A test message, sent now: whether the destination took it."""
        with db.transaction():
            row = self._existing(principal, destination_id)
        message = Message(
            kind="test",
            subject="Loupe: a test of this destination",
            text=f"A test message to the destination {row['name']!r}, sent from Loupe by an admin.",
            data={"destination_id": str(destination_id)},
        )
        try:
            deliver(principal.organization_id, row, message)
        except DeliveryFailed as error:
            return DestinationTestOut(delivered=False, error=str(error))
        return DestinationTestOut(delivered=True, error=None)


def _signing_secrets(organization_id: UUID, row: Mapping[str, Any]) -> tuple[str, list[str]]:
    sealed = _open(organization_id, row)
    until = row["previous_secret_until"]
    live = sealed.secrets if until is not None and until > datetime.now(UTC) else sealed.secrets[:1]
    return sealed.url, live


def deliver(organization_id: UUID, row: Mapping[str, Any], message: Message) -> None:
    """Hand the message to the destination; DeliveryFailed says why it did not take it."""
    timeout = get_settings().webhook_timeout_seconds
    if row["type"] == "email":
        with db.transaction():
            outside = outside_recipients(organization_id, row["recipients"])
        if outside:
            raise DeliveryFailed(f"{len(outside)} recipient(s) are no longer members or allowed")
        for address in row["recipients"]:
            try:
                notify.notifier().send(
                    notify.Mail(
                        to=address,
                        subject=message.subject,
                        text=message.text,
                        attachments=message.attachments,
                    )
                )
            except (notify.NotifierUnavailable, OSError) as error:
                raise DeliveryFailed(f"the mail was not sent: {error}") from None
        return
    if row["type"] == "s3":
        _to_bucket(organization_id, row, message)
        return
    url, secrets = _signing_secrets(organization_id, row)
    if row["type"] == "slack":
        body, headers = json.dumps({"text": message.text}).encode(), {}
    else:
        delivery_id = str(message.id)
        body = json.dumps(_event(message)).encode()
        headers = {SIGNATURE_HEADER: signature(secrets, int(time.time()), body), DELIVERY_HEADER: delivery_id}
    try:
        post_json(url, body, timeout, headers=headers)
    except WebhookFailed as error:
        raise DeliveryFailed(str(error)) from None


def deliver_each(
    organization_id: UUID,
    statuses: Mapping[str, str],
    message_for: Callable[[Mapping[str, Any]], Message],
    on_status: Callable[[dict[str, str]], None] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """Deliver to each destination (by id) whose status is pending or failed the message made for it
    (from its row): their statuses after it (`gone` for one deleted since), and an error for each that
    failed. Whatever goes wrong at one
    destination (KMS refusing, say) makes it `failed` and stops none of the others; `on_status` hears
    each status as soon as it is known."""
    sent: dict[str, str] = dict(statuses)
    errors: list[str] = []
    for destination_id, status in statuses.items():
        if status not in ("pending", "failed"):
            continue
        with db.transaction():
            row = crud.get(DESTINATIONS, organization_id, UUID(destination_id))
        if row is None:
            sent[destination_id] = "gone"
            continue
        try:
            deliver(organization_id, row, message_for(row))
            sent[destination_id] = "sent"
        except DeliveryFailed as error:
            sent[destination_id] = "failed"
            errors.append(f"destination {row['name']}: {error}")
        except Exception as error:
            logger.exception("destination failed", extra={"destination_id": destination_id})
            sent[destination_id] = "failed"
            errors.append(f"destination {row['name']}: {type(error).__name__}")
        if on_status is not None:
            on_status(sent)
    return sent, errors


def _event(message: Message) -> dict[str, Any]:
    return {
        "id": str(message.id),
        "type": message.kind,
        "created_at": message.created_at.isoformat(),
        "data": dict(message.data),
    }


def _to_bucket(organization_id: UUID, row: Mapping[str, Any], message: Message) -> None:
    """The event as `<prefix><kind>/<yyyy>/<mm>/<dd>/<id>.json` in the delivery bucket: a retry writes the
    same object again."""
    bucket = get_settings().delivery_bucket
    if bucket is None:
        raise DeliveryFailed("this deployment has no delivery bucket (LOUPE_DELIVERY_BUCKET)")
    key = f"{row['prefix']}{message.kind}/{message.created_at:%Y/%m/%d}/{message.id}.json"
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3_client().put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(_event(message)).encode(),
            ContentType="application/json",
            Metadata={"organization-id": str(organization_id)},
        )
    except (BotoCoreError, ClientError) as error:
        raise DeliveryFailed(f"the delivery bucket refused the object: {type(error).__name__}") from None


destinations = DestinationService(DESTINATIONS, DestinationOut, "destination")
