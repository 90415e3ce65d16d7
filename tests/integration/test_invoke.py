"""`make invoke FN=...` runs a scheduled function once in a fresh local home: its database is created
and migrated, moto is started, and the function's result is printed as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("function", "keys"),
    [
        ("janitor", {"results_expired", "runs_deleted", "objects_deleted", "sessions_purged"}),
        ("scheduler", {"fired", "sent", "alerts_delivered", "reports_fired", "report_attempts"}),
    ],
)
def test_a_scheduled_function_runs_once_in_a_fresh_home(
    tmp_path: Path, function: str, keys: set[str]
) -> None:
    environment = {
        **os.environ,
        "LOUPE_HOME": str(tmp_path / "home"),
        "PYTHONPATH": f"{ROOT / 'layers' / 'loupe'}{os.pathsep}{ROOT}",
    }
    environment.pop("DATABASE_URL", None)
    finished = subprocess.run(
        [sys.executable, "-m", "infra.local.invoke", function],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    # The result is printed last, indented; the log lines before it are one JSON object per line.
    printed = json.loads(finished.stdout[finished.stdout.rindex("{\n  ") :])
    assert keys <= set(printed)
    assert all(value == 0 for value in printed.values())
