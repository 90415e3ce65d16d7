"""Mail (password resets, invitations, destinations' messages and reports) through one interface: SES in
AWS, files in an outbox folder that `make dev` prints, a list in memory for tests (LOUPE_NOTIFIER)."""

from __future__ import annotations

import functools
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from loupe.config import get_settings
from loupe.observability import logger


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    attachments: tuple[Attachment, ...] = ()


def mime_of(mail: Mail, sender: str) -> bytes:
    """The mail as a MIME message: its text, then each attachment."""
    from email.message import EmailMessage

    message = EmailMessage()
    # A header holds one line: a name with a line break in it stays on one.
    subject = " ".join(mail.subject.splitlines())
    message["From"], message["To"], message["Subject"] = sender, mail.to, subject
    message.set_content(mail.text)
    for attachment in mail.attachments:
        maintype, subtype = attachment.content_type.split("/", 1)
        message.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message.as_bytes()


class NotifierUnavailable(Exception):
    """The mail could not be handed over; the message never repeats the mail's text."""


class Notifier(Protocol):
    def send(self, mail: Mail) -> None: ...


class SesNotifier:
    """Amazon SES (v2) from LOUPE_MAIL_FROM, a verified identity the template declares."""

    def send(self, mail: Mail) -> None:
        sender = get_settings().mail_from
        if sender is None:
            raise NotifierUnavailable("LOUPE_MAIL_FROM is not set")
        from botocore.exceptions import BotoCoreError, ClientError

        content: dict[str, Any] = {
            "Simple": {
                "Subject": {"Data": mail.subject, "Charset": "UTF-8"},
                "Body": {"Text": {"Data": mail.text, "Charset": "UTF-8"}},
            }
        }
        if mail.attachments:
            content = {"Raw": {"Data": mime_of(mail, sender)}}
        try:
            _ses_client().send_email(
                FromEmailAddress=sender, Destination={"ToAddresses": [mail.to]}, Content=content
            )
        except (BotoCoreError, ClientError) as error:
            raise NotifierUnavailable(f"SES refused the mail: {type(error).__name__}") from None


@functools.cache
def _ses_client() -> Any:
    import boto3

    return boto3.client("sesv2")


class OutboxNotifier:
    """Each mail as a JSON file in a private folder; `make dev` prints the folder, the log each file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, mail: Mail) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = self.folder / f"{stamp}.json"
        # Created private: the text holds a reset token.
        # Attachments as files beside the mail (`<stamp>-<name>`), which names them.
        files = []
        for attachment in mail.attachments:
            name = f"{stamp}-{os.path.basename(attachment.filename)}"
            descriptor = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(attachment.content)
            files.append(
                {"filename": attachment.filename, "content_type": attachment.content_type, "path": name}
            )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(
                {"to": mail.to, "subject": mail.subject, "text": mail.text, "attachments": files},
                file,
                indent=2,
            )
        logger.info("mail written to the outbox", extra={"path": str(path), "subject": mail.subject})


class MemoryNotifier:
    """Keeps what was sent, for tests to read."""

    def __init__(self) -> None:
        self.sent: list[Mail] = []
        self._lock = threading.Lock()

    def send(self, mail: Mail) -> None:
        with self._lock:
            self.sent.append(mail)


MEMORY = MemoryNotifier()


def notifier() -> Notifier:
    settings = get_settings()
    kind = settings.effective_notifier
    if kind == "memory":
        return MEMORY
    if kind == "outbox":
        home = Path(os.environ.get("LOUPE_HOME") or ".loupe")
        return OutboxNotifier((settings.outbox_dir or home / "outbox").expanduser())
    return SesNotifier()


def send(mail: Mail) -> bool:
    """Hand the mail over; a failure is logged (without the text) and reported as False, so the
    caller's answer does not depend on it."""
    try:
        notifier().send(mail)
    except (NotifierUnavailable, OSError) as error:
        logger.warning("mail not sent", extra={"error": str(error), "error_type": type(error).__name__})
        return False
    return True
