"""The deployable size: `sam build` into a temporary folder, then the unzipped size of the layer and
of each function (Lambda allows 250 MB for a function and its layers together, unzipped)."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from infra.sam_tools import find_python312, find_sam, sam_environment

ROOT = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT_SECONDS = 900


class BuildUnavailable(RuntimeError):
    """SAM CLI or Python 3.12 is missing: the size cannot be measured here."""


# The export function's own layer (DuckDB, ADR 11): only that function carries it.
EXPORT_LAYER = "ExportLayer"
EXPORT_FUNCTION = "ExportFunction"
# The render function's own layer (vl-convert, ADR 19), likewise.
RENDER_LAYER = "RenderLayer"
RENDER_FUNCTION = "RenderFunction"


@dataclass(frozen=True)
class ArtifactSizes:
    layer_mb: float
    largest_function: str
    largest_function_mb: float
    export_layer_mb: float
    export_function_mb: float
    render_layer_mb: float
    render_function_mb: float

    @property
    def deployed_mb(self) -> float:
        return self.layer_mb + self.largest_function_mb

    @property
    def export_deployed_mb(self) -> float:
        """The export function with both of its layers."""
        return self.layer_mb + self.export_layer_mb + self.export_function_mb

    @property
    def render_deployed_mb(self) -> float:
        """The render function with both of its layers."""
        return self.layer_mb + self.render_layer_mb + self.render_function_mb


def _folder_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 1024**2


def measure() -> ArtifactSizes:
    sam = find_sam()
    if sam is None:
        raise BuildUnavailable("no SAM CLI in .venv-sam or on PATH (make validate installs it)")
    python = find_python312()
    if python is None:
        raise BuildUnavailable("no python3.12 (sam build needs the Lambda runtime's Python)")
    with tempfile.TemporaryDirectory(prefix="loupe-bench-build-") as folder:
        build = Path(folder) / "build"
        environment = sam_environment(python)
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
            if path.is_dir() and path.name not in ("LoupeLayer", EXPORT_LAYER, RENDER_LAYER)
        }
        # The largest of the functions that carry the shared layer alone.
        largest = max(
            (name for name in functions if name not in (EXPORT_FUNCTION, RENDER_FUNCTION)),
            key=lambda name: functions[name],
        )
        return ArtifactSizes(
            layer_mb=_folder_mb(build / "LoupeLayer"),
            largest_function=largest,
            largest_function_mb=functions[largest],
            export_layer_mb=_folder_mb(build / EXPORT_LAYER),
            export_function_mb=functions[EXPORT_FUNCTION],
            render_layer_mb=_folder_mb(build / RENDER_LAYER),
            render_function_mb=functions[RENDER_FUNCTION],
        )
