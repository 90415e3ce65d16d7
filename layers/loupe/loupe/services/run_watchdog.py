"""A thread beside a running statement that stops it inside the datasource when the run's deadline passes
or someone asks to cancel the run; the runner reads `reason` to tell the two apart."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Literal
from uuid import UUID

from loupe import db
from loupe.connectors import ConnectorError, Session
from loupe.observability import logger
from loupe.repositories import runs as runs_repository

StopReason = Literal["timeout", "cancelled"]


class RunWatchdog:
    """While the block runs, checks every `poll_seconds` for a cancel request of the run, and stops the
    statement at `deadline` (a time.monotonic() value). Leaving the block stops the thread first, so the
    caller may use the metadata database again at once."""

    def __init__(self, run_id: UUID, session: Session, deadline: float, poll_seconds: float) -> None:
        self.reason: StopReason | None = None
        self._run_id = run_id
        self._session = session
        self._deadline = deadline
        self._poll_seconds = poll_seconds
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"watchdog-{run_id}", daemon=True)

    def __enter__(self) -> RunWatchdog:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        with db.own_connection("run-watchdog"):
            self._watch_until_done()

    def _watch_until_done(self) -> None:
        while not self._done.wait(max(0.0, min(self._poll_seconds, self._deadline - time.monotonic()))):
            if time.monotonic() >= self._deadline:
                self._stop("timeout")
                return
            if self._cancel_requested():
                self._stop("cancelled")
                return

    def _cancel_requested(self) -> bool:
        try:
            with db.transaction():
                return runs_repository.cancel_requested(self._run_id)
        except Exception:
            # The statement goes on; the deadline still holds, and the next poll asks again.
            logger.exception("cannot check the run for a cancel request", extra={"run_id": str(self._run_id)})
            return False

    def _stop(self, reason: StopReason) -> None:
        self.reason = reason
        logger.info("stopping the run's statement", extra={"run_id": str(self._run_id), "reason": reason})
        try:
            self._session.cancel()
        except ConnectorError:
            # Between two batches there is no statement to stop; the runner checks `reason` after each.
            logger.warning("the datasource refused the cancel", extra={"run_id": str(self._run_id)})
