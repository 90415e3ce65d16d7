"""When the scheduler next has work, kept outside the database (a control mark): an idle minute's tick
reads it and leaves the database alone, so a paused Aurora stays paused."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from loupe import control_marks

KEY = "control/scheduler-next-tick.json"
# The longest the scheduler trusts the mark without looking at the database (so twice a day at least
# while nothing is scheduled): it bounds how late work could start should a change fail to poke it.
HORIZON = timedelta(hours=12)
_LOOK_NOW = datetime.fromtimestamp(0, UTC)


@dataclass(frozen=True)
class Mark:
    """The mark as read: when work is next due (None: no mark, look now), and its version."""

    due_at: datetime | None
    read_as: control_marks.Mark

    def idle_at(self, now: datetime) -> bool:
        return self.due_at is not None and now < self.due_at


def read() -> Mark:
    """The mark, or one saying "look now" when there is none or it cannot be read."""
    found = control_marks.read(KEY)
    try:
        due_at = datetime.fromisoformat(str((found.content or {})["due_at"]))
    except (KeyError, ValueError):
        return Mark(None, found)
    return Mark(due_at if due_at.tzinfo else None, found)


def keep(due_at: datetime, now: datetime, read_before: Mark) -> bool:
    """Write the next due time, unless the mark changed since `read_before` (a change poked it while the
    tick looked at the database: its poke wins). False when it was not written."""
    content = {"due_at": min(due_at, now + HORIZON).isoformat()}
    return control_marks.write(KEY, content, unless_changed_since=read_before.read_as)


def poke() -> None:
    """Something may be due sooner than the mark says (a schedule saved, an alert to deliver): the next
    tick looks at the database. Called after the change commits. Each poke is a new version (the nonce),
    so a tick that read an earlier poke cannot overwrite this one; a failure is logged, not raised."""
    control_marks.write(KEY, {"due_at": _LOOK_NOW.isoformat(), "poke": uuid.uuid4().hex})
