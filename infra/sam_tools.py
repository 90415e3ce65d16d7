"""Finding SAM CLI and the Lambda runtime's Python (3.12) on this machine, for `sam build` in the tests
and in `make bench`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def find_sam() -> Path | None:
    """The repository's SAM CLI (`.venv-sam`, which `make validate` creates), else `sam` on PATH."""
    repo_sam = ROOT / ".venv-sam" / "bin" / "sam"
    if os.access(repo_sam, os.X_OK):
        return repo_sam
    on_path = shutil.which("sam")
    return Path(on_path) if on_path else None


def _is_python312(candidate: Path) -> bool:
    # pyenv shims of an inactive version exist on PATH but fail, hence running each candidate.
    try:
        probe = subprocess.run(  # interpreters found on this machine, fixed arguments
            [str(candidate), "-c", "import sys; assert sys.version_info[:2] == (3, 12)"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def find_python312() -> Path | None:
    """A working python3.12: on PATH, then pyenv's versions/3.12*/bin, then this interpreter."""
    candidates: list[Path] = []
    on_path = shutil.which("python3.12")
    if on_path:
        candidates.append(Path(on_path))
    pyenv_roots = {Path(os.environ.get("PYENV_ROOT", "~/.pyenv")).expanduser(), Path("~/.pyenv").expanduser()}
    for root in sorted(pyenv_roots):
        candidates.extend(sorted((root / "versions").glob("3.12*/bin/python3.12"), reverse=True))
    candidates.append(Path(sys.executable))
    return next((candidate for candidate in candidates if _is_python312(candidate)), None)


def sam_environment(python: Path | None = None) -> dict[str, str]:
    """This process's environment for SAM CLI: no telemetry, and `python`'s folder first on PATH."""
    environment = dict(os.environ, SAM_CLI_TELEMETRY="0")
    if python is not None:
        environment["PATH"] = f"{python.parent}{os.pathsep}{environment.get('PATH', '')}"
    return environment
