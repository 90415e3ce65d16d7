"""When a runner last claimed a run, kept outside the database (a control mark): with no run message in
a queue and no claim for longer than a lease can last, no run is in flight and the reaper leaves the
database alone."""

from __future__ import annotations

from datetime import datetime, timedelta

from loupe import control_marks

KEY = "control/runs-last-claimed.json"
# A lease ends at most Lambda's 15 minutes and the runner's 30 s margin after its claim; the window adds
# two reaper passes (every 5 minutes), so a run whose runner died is always seen after its lease lapsed.
WINDOW = timedelta(minutes=15, seconds=30) + timedelta(minutes=10)


def claimed(now: datetime) -> None:
    """Note a claim (a failure is logged: the reaper then may miss a run only a claim could show)."""
    control_marks.write(KEY, {"claimed_at": now.isoformat()})


def recent(now: datetime) -> bool:
    """Whether a claim may still hold a run: one within WINDOW, or a mark that cannot be read."""
    found = control_marks.read(KEY)
    if found.etag is None:
        return False  # no run was ever claimed
    try:
        last = datetime.fromisoformat(str((found.content or {})["claimed_at"]))
    except (KeyError, ValueError):
        return True
    return now - last < WINDOW
