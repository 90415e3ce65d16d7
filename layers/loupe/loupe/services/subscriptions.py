"""Subscriptions: a dashboard, visualization or query delivered on a cron to destinations, run as its
owner. The scheduler's tick fires due ones into deliveries and works the deliveries through: start the
runs, wait for them, draw and attach, send, retry what failed with a backoff, give up after MAX_ATTEMPTS
(docs/deliveries.md)."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from loupe import db, next_tick, notify
from loupe.config import get_settings
from loupe.errors import (
    DependencyUnavailable,
    DomainError,
    InvalidInput,
    NotPermitted,
    RateLimited,
)
from loupe.models.common import Page
from loupe.models.embed import EmbeddedResource
from loupe.models.identity import Principal, Role
from loupe.models.rendering import DashboardRenderRequest
from loupe.models.runs import ACTIVE_STATUSES, RunOrigin, RunStatus
from loupe.models.subscriptions import (
    DeliveryListQuery,
    DeliveryOut,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionUpdate,
)
from loupe.observability import logger
from loupe.repositories import embed_tokens, listing
from loupe.repositories import subscriptions as repository
from loupe.repositories import users as users_repository
from loupe.repositories.destinations import DESTINATIONS
from loupe.repositories.subscriptions import DELIVERIES, SUBSCRIPTIONS
from loupe.results.exports import FORMATS, export_to_s3, signed_url
from loupe.results.store import s3_client
from loupe.security import crypto
from loupe.services import audit, destinations, embed, rendering
from loupe.services.dashboards import Board, filter_values, plan_tiles
from loupe.services.resources import ResourceService, require_references
from loupe.services.runs import run_settings, runs
from loupe.services.schedules import checked_cron, next_run_at
from loupe.versions import ExpectedVersions

MAX_ATTEMPTS = 5
BATCH_SIZE = 100
# A delivery whose runs are not done this long after it fired fails.
RUNS_WAIT = timedelta(minutes=30)
# How soon a delivery waiting for its runs looks again, within the tick and across ticks.
RECHECK = timedelta(seconds=2)
# How long a tick holds a delivery it works on (longer than the scheduler may run): if the tick dies, the
# delivery is taken again after this.
CLAIM = timedelta(minutes=15)
# How soon a delivery postponed (the owner's runs at their limit, a queue down) is looked at again.
LATER = timedelta(minutes=1)
# Attachments a mail carries at most; past it the mail links to the files instead (SES takes 40 MB a
# message, and base64 makes a file a third larger).
MAIL_ATTACHMENTS_MAX_BYTES = 10 * 1024 * 1024
# Links to a report's files last as long as the bucket keeps them (template.yaml: deliveries/, 7 days).
LINK_SECONDS = 7 * 24 * 3600
PAGE_WIDTH = 1200
# What a delivery says while an attempt is under way: it stays if the tick stops before the attempt ends.
STOPPED = "An attempt stopped before it ended: the scheduler ran out of time or memory drawing or sending"
SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _backoff(attempts: int) -> timedelta:
    """1, 2, 4, 8 minutes after the first, second, third, fourth failed attempt."""
    return timedelta(minutes=2 ** max(0, attempts - 1))


@dataclass(frozen=True)
class ReportFile:
    filename: str
    content_type: str
    content: bytes
    url: str


class SubscriptionService(ResourceService[SubscriptionCreate, SubscriptionUpdate, SubscriptionOut]):
    def to_out(self, row: dict[str, Any]) -> SubscriptionOut:
        return SubscriptionOut.model_validate(
            {**row, "resource": {"type": row["resource_type"], "id": row["resource_id"]}}
        )

    def _checked(
        self, principal: Principal, resource_type: str, resource_id: UUID, values: dict[str, Any]
    ) -> dict[str, Any]:
        """The fields sent, checked: the destinations the organization's, the cron firing, the filters
        fitting the resource."""
        if "destination_ids" in values:
            require_references(
                DESTINATIONS,
                principal.organization_id,
                [(f"destination_ids.{index}", item) for index, item in enumerate(values["destination_ids"])],
            )
            values["destination_ids"] = [str(item) for item in values["destination_ids"]]
        if "cron" in values:
            values["cron"] = checked_cron(values["cron"], datetime.now(UTC))
        if values.get("filters"):
            # The values given (the defaults are the resource's own, checked when it is drawn).
            board = embed.board_of(principal, resource_type, resource_id)
            filter_values(principal, board.row, values["filters"])
        return values

    def values_for_create(self, principal: Principal, body: SubscriptionCreate) -> dict[str, Any]:
        if principal.user_id is None:
            raise NotPermitted("A subscription runs as a person: create it signed in, not with an API key")
        embed.SHOWN[body.resource.type].require(principal, body.resource.id)
        values = self._checked(
            principal, body.resource.type, body.resource.id, body.model_dump(exclude={"resource"})
        )
        db.after_commit(next_tick.poke)
        return {
            **values,
            "owner_id": principal.user_id,
            "resource_type": body.resource.type,
            "resource_id": body.resource.id,
            "next_run_at": next_run_at(values["cron"], body.timezone, datetime.now(UTC))
            if body.enabled
            else None,
        }

    def values_for_update(
        self, principal: Principal, body: SubscriptionUpdate, current: dict[str, Any]
    ) -> dict[str, Any]:
        # A report runs as its owner: only they, or an admin, may change what it shows and to whom.
        if principal.user_id != current["owner_id"] and principal.role < Role.ADMIN:
            raise NotPermitted("Only the subscription's owner or an admin changes it: it runs as its owner")
        values = self._checked(
            principal, current["resource_type"], current["resource_id"], body.model_dump(exclude_unset=True)
        )
        if (
            current["share_id"] is not None
            and values.get("filters", current["filters"]) != current["filters"]
        ):
            # Its link locks the old values: the next delivery makes one with the new.
            _end_share(principal, current)
            values |= {"share_id": None, "share_secret_ciphertext": None}
        after = {**current, **values}
        if {"cron", "timezone", "enabled"} & set(values):
            values["next_run_at"] = (
                next_run_at(after["cron"], after["timezone"], datetime.now(UTC)) if after["enabled"] else None
            )
            db.after_commit(next_tick.poke)
        return values

    def delete(
        self, principal: Principal, resource_id: UUID, expected: ExpectedVersions, *, cascade: bool = False
    ) -> None:
        """Delete the subscription, and revoke the share link its chat messages carried."""
        with db.transaction():
            # Locked first: a delivery making a link meanwhile waits, and its link is the one revoked.
            current = self._existing(principal, resource_id, for_update=True)
            super().delete(principal, resource_id, expected, cascade=cascade)
            if current["share_id"] is not None:
                _end_share(principal, current)

    def deliveries(
        self, principal: Principal, subscription_id: UUID, query: DeliveryListQuery
    ) -> Page[DeliveryOut]:
        """The subscription's deliveries, newest first."""
        with db.transaction():
            self._existing(principal, subscription_id)
            rows, total = listing.list_page(
                DELIVERIES,
                principal.organization_id,
                query,
                subscription_id=subscription_id,
                status=query.status,
            )
        return Page[DeliveryOut](
            items=[DeliveryOut.model_validate(row) for row in rows],
            total=total,
            limit=query.limit,
            offset=query.offset,
        )


def _end_share(principal: Principal, subscription: dict[str, Any]) -> None:
    embed_tokens.revoke(principal.organization_id, subscription["share_id"], "share")
    audit.record_by(
        principal,
        "share_link.revoked",
        target_type=subscription["resource_type"],
        target_id=subscription["resource_id"],
        metadata={"id": str(subscription["share_id"]), "subscription_id": str(subscription["id"])},
    )


def next_work_at() -> datetime | None:
    """When a subscription next fires or a delivery is next tried, or None."""
    return repository.next_work_at()


def fire_due(now: datetime) -> int:
    """Turn every due subscription into a delivery and advance it; the number fired."""
    fired = 0
    while True:
        with db.transaction():
            due = repository.fire_due(now, BATCH_SIZE)
            repository.advance_many(
                [(next_run_at(item["cron"], item["timezone"], now), item["id"]) for item in due]
            )
            repository.insert_deliveries(
                [
                    (item["organization_id"], item["id"], dict.fromkeys(item["destination_ids"], "pending"))
                    for item in due
                ]
            )
        fired += len(due)
        if len(due) < BATCH_SIZE:
            return fired


def deliver_pending(deadline: datetime) -> int:
    """Work through the deliveries due for an attempt, one per transaction, until `deadline`; a delivery
    whose runs are still going is looked at again within the tick. Returns the attempts made."""
    attempts = 0
    while datetime.now(UTC) < deadline:
        handled: list[UUID] = []
        while datetime.now(UTC) < deadline:
            with db.transaction():
                delivery = repository.next_pending(datetime.now(UTC), handled)
                # Its last attempt began and never ended: the tick stopped while drawing or sending.
                stopped = delivery is not None and delivery["attempts"] >= MAX_ATTEMPTS
                if delivery is not None and stopped:
                    _finish(delivery, "failed", None, delivery["error"], datetime.now(UTC))
                elif delivery is not None:
                    # Claimed: no other tick takes it while this one draws and sends outside the lock.
                    repository.hold(delivery["id"], datetime.now(UTC) + CLAIM)
            if delivery is None:
                break
            if not stopped:
                attempts += _guarded(delivery)
            handled.append(delivery["id"])
        if not handled:
            return attempts
        time.sleep(RECHECK.total_seconds())
    return attempts


def _owner(delivery: dict[str, Any]) -> Principal | None:
    membership = users_repository.membership(delivery["owner_id"], delivery["organization_id"])
    if membership is None:
        return None
    return Principal(
        organization_id=delivery["organization_id"],
        role=Role.parse(membership.role),
        user_id=delivery["owner_id"],
    )


@dataclass(frozen=True)
class RunsDone:
    """A delivery whose runs have ended: whom it runs as, what it draws, and how each tile's run ended."""

    principal: Principal
    board: Board
    planned: list[tuple[UUID, Any, Any]]
    statuses: list[RunStatus]


def _guarded(delivery: dict[str, Any]) -> int:
    """_attempt, with whatever else fails before its attempt begins (the database, a bug) made this
    delivery's failed attempt rather than a stop for every other organization's reports."""
    try:
        return _attempt(delivery)
    except Exception as error:
        _broke(_counted(delivery), error)
        return 1


def _broke(delivery: dict[str, Any], error: Exception) -> None:
    """The attempt (counted in `delivery`) failed on something other than a refusal: logged with its
    traceback, and failed by its error's type."""
    logger.exception("report attempt failed", extra={"delivery_id": str(delivery["id"])})
    with db.transaction():
        _failed_attempt(delivery, f"{type(error).__name__} while preparing the report")


def _counted(delivery: dict[str, Any]) -> dict[str, Any]:
    """The delivery with the attempt being made counted."""
    return {**delivery, "attempts": delivery["attempts"] + 1}


def _attempt(delivery: dict[str, Any]) -> int:
    """One step of the delivery: start its runs, or look at them, or draw and send; 1 when it was an
    attempt at sending (it counts towards MAX_ATTEMPTS), 0 when it only waited. Each step has short
    transactions of its own: drawing and sending can outlast how long a transaction may stay idle."""
    now = datetime.now(UTC)
    try:
        with db.transaction():
            done = _runs_done(delivery, now)
    except (RateLimited, DependencyUnavailable) as refusal:
        _postpone(delivery, refusal, now)
        return 0
    except DomainError as refusal:
        with db.transaction():
            _finish(_counted(delivery), "failed", None, refusal.message, now)
        return 1
    if done is None:
        return 0
    with db.transaction():
        repository.begin_attempt(delivery["id"], now + CLAIM, STOPPED)
    begun = _counted(delivery)
    try:
        files = _files(done.principal, begun, done.board, done.planned, done.statuses)
        _send(done.principal, begun, files, done.statuses, now)
    except DomainError as refusal:
        with db.transaction():
            _failed_attempt(begun, refusal.message)
    except Exception as error:
        _broke(begun, error)
    return 1


def _postpone(delivery: dict[str, Any], refusal: DomainError, now: datetime) -> None:
    """The owner's active runs are at their limit, or a queue is down: looked at again later."""
    with db.transaction():
        repository.hold(delivery["id"], now + LATER)
    logger.info("report postponed", extra={"delivery_id": str(delivery["id"]), "reason": refusal.message})


def _runs_done(delivery: dict[str, Any], now: datetime) -> RunsDone | None:
    """The delivery's runs once they have all ended; else None, its runs started (or started again, for
    tiles changed since: another query, revision or values) or still going, and the delivery due again
    shortly. Ranges are resolved when the delivery fired, so the same plan stays the same."""
    principal = _owner(delivery)
    if principal is None:
        raise NotPermitted("The subscription's owner is no longer a member")
    board = embed.board_of(principal, delivery["resource_type"], delivery["resource_id"])
    plan = plan_tiles(principal, board, delivery["filters"], delivery["created_at"])
    planned = [(query, values) for _, query, values in plan.runs]
    # A digest of the plan's JSON text: compared as text, no value changes on its way through jsonb.
    plan_digest = hashlib.sha256(
        json.dumps(
            [[str(query["id"]), query["revision"], values] for query, values in planned],
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()
    started_for_plan = plan_digest == delivery["run_plan_digest"] and len(delivery["run_ids"]) == len(planned)
    # A page without queries has nothing to start (and no digest saved yet).
    started = started_for_plan or not (planned or delivery["run_ids"])
    ran = [runs.get(principal, UUID(run_id)).resource for run_id in delivery["run_ids"]] if started else []
    statuses = [run.status for run in ran]
    waiting = not started or any(status in ACTIVE_STATUSES for status in statuses)
    # However often its tiles change meanwhile, a report waits for its runs this long at most.
    if waiting and now - delivery["created_at"] > RUNS_WAIT:
        raise InvalidInput(f"The report's runs did not finish within {RUNS_WAIT}")
    if not started:
        served = runs.serve(principal, planned, None, RunOrigin.SUBSCRIPTION)
        repository.save_runs(delivery["id"], [run.id for run in served], plan_digest, now + RECHECK)
        return None
    if waiting:
        repository.hold(delivery["id"], now + RECHECK)
        return None
    return RunsDone(principal, board, list(plan.runs), statuses)


def _files(
    principal: Principal,
    delivery: dict[str, Any],
    board: Board,
    planned: Sequence[tuple[UUID, Any, Any]],
    statuses: Sequence[RunStatus],
) -> list[ReportFile]:
    """The report's pictures, drawn from its own runs, and each succeeded tile's rows, each also kept for a
    link."""
    base = SAFE.sub("-", delivery["name"]).strip("-")[:80] or "report"
    drawn_from = {
        tile_id: UUID(run_id) for (tile_id, _, _), run_id in zip(planned, delivery["run_ids"], strict=True)
    }
    files: list[tuple[str, str, bytes]] = []
    for fmt in delivery["formats"]:
        if fmt in ("png", "pdf"):
            request = DashboardRenderRequest(filters=delivery["filters"], format=fmt, width=PAGE_WIDTH)
            picture = rendering.render_board(
                principal, lambda: board, request, drawn_from, delivery["created_at"]
            )
            assert isinstance(picture.body, bytes)
            files.append((f"{base}.{fmt}", picture.content_type, picture.body))
    tables = [fmt for fmt in delivery["formats"] if fmt in ("csv", "xlsx")]
    ran = {str(run_id): status for run_id, status in zip(delivery["run_ids"], statuses, strict=True)}
    for position, run_id in enumerate(dict.fromkeys(delivery["run_ids"])):
        if ran[run_id] is not RunStatus.SUCCEEDED:
            continue
        reader = runs.result_reader(principal, UUID(run_id))
        for fmt in tables:
            key = export_to_s3(reader, fmt)
            body = s3_client().get_object(Bucket=reader.bucket, Key=key)["Body"].read()
            files.append((f"{base}-{position + 1}.{fmt}", FORMATS[fmt].media_type.split(";")[0], body))
    return [_kept(delivery, name, content_type, content) for name, content_type, content in files]


def _kept(delivery: dict[str, Any], filename: str, content_type: str, content: bytes) -> ReportFile:
    bucket = run_settings().results_bucket
    key = f"deliveries/{delivery['organization_id']}/{delivery['id']}/{filename}"
    s3_client().put_object(Bucket=bucket, Key=key, Body=content, ContentType=content_type)
    return ReportFile(filename, content_type, content, signed_url(bucket, key, LINK_SECONDS))


def _chat_link(principal: Principal, delivery: dict[str, Any]) -> str | None:
    """The link a chat message carries: the deployment's share page with the subscription's share link,
    made now when it has none live; None without a share page, or where the owner may not share."""
    share_url = get_settings().share_url
    if share_url is None:
        return None
    with db.transaction():
        secret = _report_share_secret(principal, delivery)
    return None if secret is None else share_url.replace("{token}", secret)


def _report_share_secret(principal: Principal, delivery: dict[str, Any]) -> str | None:
    # The subscription's row is locked: two ticks delivering it at once make one link, not two.
    kept = repository.share_of(delivery["subscription_id"])
    # Filters changed since the delivery was made: its link would lock the old ones.
    if kept is None or kept["filters"] != delivery["filters"] or not embed.may_share(principal):
        return None
    organization_id = delivery["organization_id"]
    share_id = kept["share_id"]
    if share_id is not None and embed_tokens.live(organization_id, share_id, "share") is not None:
        secret = crypto.decrypt(bytes(kept["share_secret_ciphertext"]), organization_id).decode()
    else:
        resource = EmbeddedResource(type=delivery["resource_type"], id=delivery["resource_id"])
        share_id, secret = embed.report_share(principal, resource, delivery["filters"])
        sealed = crypto.encrypt(secret.encode(), organization_id)
        repository.save_share(delivery["subscription_id"], share_id, sealed)
    return secret


def _send(
    principal: Principal,
    delivery: dict[str, Any],
    files: list[ReportFile],
    statuses: Sequence[RunStatus],
    now: datetime,
) -> None:
    failed_runs = sum(status is not RunStatus.SUCCEEDED for status in statuses)
    summary = [f"The report {delivery['name']!r}, as of {now:%Y-%m-%d %H:%M} UTC."]
    if failed_runs:
        summary.append(
            f"{failed_runs} of its {len(statuses)} queries did not succeed: their tiles are empty."
        )
    lines = [*summary, *(f"{item.filename}: {item.url}" for item in files)]
    attached = sum(len(item.content) for item in files) <= MAIL_ATTACHMENTS_MAX_BYTES
    message = destinations.Message(
        kind="report",
        subject=f"Loupe report: {delivery['name']}",
        text="\n".join(lines),
        data={
            "subscription_id": str(delivery["subscription_id"]),
            "delivery_id": str(delivery["id"]),
            "name": delivery["name"],
            "run_ids": delivery["run_ids"],
            "files": [
                {"filename": item.filename, "content_type": item.content_type, "url": item.url}
                for item in files
            ],
        },
        id=delivery["id"],
        created_at=delivery["created_at"],
        attachments=tuple(notify.Attachment(item.filename, item.content_type, item.content) for item in files)
        if attached
        else (),
    )
    chat: list[destinations.Message] = []

    def message_for(destination: Mapping[str, Any]) -> destinations.Message:
        """A chat takes no file: its message links to the resource through the report's share link."""
        if destination["type"] != "slack":
            return message
        if not chat:
            link = _chat_link(principal, delivery)
            shown = f"See it: {link}" if link else "(No link: share links are not available to this report.)"
            chat.append(replace(message, text="\n".join([*summary, shown]), attachments=()))
        return chat[0]

    def saved(known: dict[str, str]) -> None:
        with db.transaction():
            repository.save_destinations(delivery["id"], known)

    sent, errors = destinations.deliver_each(
        delivery["organization_id"], delivery["destinations"], message_for, saved
    )
    with db.transaction():
        if not errors and "sent" not in sent.values():
            _finish(delivery, "failed", sent, "Every destination of the subscription is gone", now)
        elif not errors:
            _finish(delivery, "delivered", sent, None, now)
        elif delivery["attempts"] >= MAX_ATTEMPTS:
            _finish(delivery, "failed", sent, "; ".join(errors)[:2000], now)
        else:
            next_attempt = now + _backoff(delivery["attempts"])
            repository.record_attempt(delivery, "pending", sent, "; ".join(errors)[:2000], next_attempt, now)


def _failed_attempt(delivery: dict[str, Any], error: str) -> None:
    """An attempt (counted in `delivery`) that failed before it had sent to every destination: tried
    again after the backoff, failed after MAX_ATTEMPTS. The statuses saved as it sent stand."""
    now = datetime.now(UTC)
    if delivery["attempts"] >= MAX_ATTEMPTS:
        _finish(delivery, "failed", None, error, now)
    else:
        next_attempt = now + _backoff(delivery["attempts"])
        repository.record_attempt(delivery, "pending", None, error, next_attempt, now)


def _finish(
    delivery: dict[str, Any], status: str, sent: dict[str, str] | None, error: str | None, now: datetime
) -> None:
    repository.record_attempt(delivery, status, sent, error, now, now)
    log = logger.warning if status == "failed" else logger.info
    log(f"report {status}", extra={"delivery_id": str(delivery["id"]), "error": error})


subscriptions = SubscriptionService(SUBSCRIPTIONS, SubscriptionOut, "subscription")
