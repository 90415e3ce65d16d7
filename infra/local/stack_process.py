"""`make dev` as a subprocess in its own LOUPE_HOME on free ports, for whatever drives the stack from
outside over HTTP: the end-to-end tests, `make fuzz`, `make load` and the browser test."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from infra.local.template_routes import PYTHON_PATH, ROOT
from loupe.api.prefix import API_PREFIX

READY = re.compile(r"Loupe is ready at (http://\S+)" + re.escape(API_PREFIX))
DEMO_LOGIN = re.compile(r"demo login: (\S+) / (\S+)")
MOTO = re.compile(r"AWS \(moto\): http://[^:/\s]+:(\d+)")
SAMPLE = re.compile(r"sample database \(read-only\): \S+@[^:/\s]+:(\d+)/")
START_TIMEOUT_SECONDS = 180
# A test suite's own database settings must not leak into the stack, which brings its own.
SUITE_ONLY_VARIABLES = ("DATABASE_URL", "TEST_DATABASE_URL")


class StackFailed(RuntimeError):
    """The stack exited or was not ready in time; the message ends with what it logged."""


@dataclass
class StackProcess:
    """`python -m infra.local.devstack` with its own LOUPE_HOME, on free ports, output in a log file."""

    home: Path
    log: Path
    environment: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    url: str = ""
    moto_port: int = 0
    sample_port: int = 0  # the loopback port in front of the sample database, as its datasource reaches it
    demo_email: str = ""
    demo_password: str = ""
    startup_seconds: float = 0.0
    postgres_pid: int | None = None
    output: str = field(default="", repr=False)

    def start(self) -> None:
        env = {name: value for name, value in os.environ.items() if name not in SUITE_ONLY_VARIABLES}
        env.update(
            LOUPE_HOME=str(self.home),
            PORT="0",
            MOTO_PORT="0",
            PYTHONPATH=PYTHON_PATH,
        )
        env.update(self.environment)
        started = time.monotonic()
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(  # our own interpreter and module
                [sys.executable, "-m", "infra.local.devstack"], cwd=ROOT, env=env, stdout=log, stderr=log
            )
        deadline = started + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            text = self.log.read_text(encoding="utf-8", errors="replace")
            ready = READY.search(text)
            if ready and "started in" in text:
                demo = DEMO_LOGIN.search(text)
                moto = MOTO.search(text)
                if demo is None or moto is None:
                    self.stop()
                    raise StackFailed(f"the banner lacks the demo login or moto's port:\n{text[-4000:]}")
                self.url = ready.group(1)
                self.demo_email, self.demo_password = demo.groups()
                self.moto_port = int(moto.group(1))
                sample = SAMPLE.search(text)
                self.sample_port = int(sample.group(1)) if sample else 0
                self.startup_seconds = time.monotonic() - started
                self.postgres_pid = int((self.home / "pgdata" / "postmaster.pid").read_text().split()[0])
                return
            if self.process.poll() is not None:
                raise StackFailed(
                    f"the stack exited with {self.process.returncode} before it was ready:\n{text[-4000:]}"
                )
            time.sleep(0.2)
        self.stop()
        raise StackFailed(f"the stack was not ready within {START_TIMEOUT_SECONDS}s:\n{self.output[-4000:]}")

    def stop(self) -> int | None:
        """SIGTERM, as `docker stop` or a supervisor would send; None if it had to be killed."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            self._stop_postgres()
            return None
        finally:
            self.output = self.log.read_text(encoding="utf-8", errors="replace")
        return code

    def _stop_postgres(self) -> None:
        """The stack's PostgreSQL runs in a session of its own: a killed stack leaves it behind."""
        if self.postgres_pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.postgres_pid, signal.SIGINT)  # PostgreSQL's fast shutdown
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                os.kill(self.postgres_pid, 0)
                time.sleep(0.2)
            os.kill(self.postgres_pid, signal.SIGKILL)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stored_secrets(self) -> dict[str, str]:
        loaded: dict[str, str] = json.loads((self.home / "secrets.json").read_text())
        return loaded

    def _socket_url(self, credentials: str, database: str) -> str:
        socket_dir = quote(str(self.home / "pgdata"), safe="")
        return f"postgresql://{credentials}@/{database}?host={socket_dir}"

    @property
    def metadata_url(self) -> str:
        """The stack's own database, as the server's superuser (over its socket, trust)."""
        return self._socket_url("postgres", "loupe")

    def reader_url(self, database: str = "loupe_sample", password: str | None = None) -> str:
        password = self.stored_secrets()["sample_reader_password"] if password is None else password
        return self._socket_url(f"loupe_sample_reader:{quote(password, safe='')}", database)


@contextmanager
def running_stack(environment: Mapping[str, str] | None = None) -> Iterator[StackProcess]:
    """A started stack in a temporary folder, stopped and removed when the block ends."""
    # Not pytest's tmp_path: pytest deletes old base folders when another session starts, pgdata included.
    with tempfile.TemporaryDirectory(prefix="loupe-stack-") as folder:
        base = Path(folder)
        running = StackProcess(home=base / "home", log=base / "devstack.log", environment=environment or {})
        try:
            running.start()
            yield running
        finally:
            running.stop()
