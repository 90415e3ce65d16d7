"""The deployable size: `sam build` into a temporary folder, then the unzipped size of the layer and
of each function (Lambda allows 250 MB for a function and its layers together, unzipped)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT_SECONDS = 900


class BuildUnavailable(RuntimeError):
    """SAM CLI or Python 3.12 is missing: the size cannot be measured here."""


@dataclass(frozen=True)
class ArtifactSizes:
    layer_mb: float
    largest_function: str
    largest_function_mb: float

    @property
    def deployed_mb(self) -> float:
        return self.layer_mb + self.largest_function_mb


def _folder_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 1024**2


def _python312() -> Path:
    candidates = [
        shutil.which("python3.12"),
        *sorted(Path("~/.pyenv/versions").expanduser().glob("3.12*/bin/python3.12")),
    ]
    for candidate in candidates:
        if (
            candidate
            and subprocess.run(  # noqa: S603  # interpreters found on this machine, fixed arguments
                [str(candidate), "-c", "import sys; assert sys.version_info[:2] == (3, 12)"],
                capture_output=True,
                check=False,
            ).returncode
            == 0
        ):
            return Path(candidate)
    raise BuildUnavailable("no python3.12 (sam build needs the Lambda runtime's Python)")


def measure() -> ArtifactSizes:
    sam = ROOT / ".venv-sam" / "bin" / "sam"
    if not os.access(sam, os.X_OK):
        raise BuildUnavailable("no SAM CLI in .venv-sam (make validate installs it)")
    python = _python312()
    with tempfile.TemporaryDirectory(prefix="loupe-bench-build-") as folder:
        build = Path(folder) / "build"
        environment = dict(
            os.environ, SAM_CLI_TELEMETRY="0", PATH=f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"
        )
        completed = subprocess.run(  # noqa: S603  # the repository's SAM CLI and template
            [str(sam), "build", "--template", str(ROOT / "template.yaml"), "--build-dir", str(build)],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_SECONDS,
            check=False,
        )
        if completed.returncode != 0:
            raise BuildUnavailable(f"sam build failed: {completed.stderr[-500:]}")
        functions = {
            path.name: _folder_mb(path)
            for path in build.iterdir()
            if path.is_dir() and path.name != "LoupeLayer"
        }
        largest = max(functions, key=lambda name: functions[name])
        return ArtifactSizes(
            layer_mb=_folder_mb(build / "LoupeLayer"),
            largest_function=largest,
            largest_function_mb=functions[largest],
        )
