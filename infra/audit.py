"""`make audit`: the Lambda layers' locked dependencies checked for known vulnerabilities (pip-audit)
and for licenses the layer may not ship (GPL, AGPL). The license check needs no network; the
vulnerability check is reported as skipped, with the reason, when its data cannot be reached."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

from infra.dependencies import closure

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
# Every layer the template deploys: the shared one, and the export and render functions' own.
LAYER_REQUIREMENTS = tuple(
    ROOT / "layers" / name / "requirements.txt" for name in ("loupe", "export", "render")
)
# pip-audit's default vulnerability service (PyPI's JSON API), probed first with one locked package so
# that "unreachable" (or a mirror without vulnerability data) is not read as "clean".
VULNERABILITY_SERVICE = "https://pypi.org/pypi/{name}/{version}/json"
PROBE_SECONDS = 10
# Copyleft licenses whose terms would reach the code shipped with them in the layer. LGPL is not
# among them: it allows linking from code under other licenses.
FORBIDDEN = re.compile(r"(?<!L)(?<!Lesser )\b(A?GPL|GNU (Affero )?General Public License)", re.IGNORECASE)


@dataclass(frozen=True)
class PackageLicense:
    name: str
    version: str
    license: str

    @property
    def forbidden(self) -> bool:
        return bool(FORBIDDEN.search(self.license))


def license_of(name: str) -> PackageLicense:
    fields = metadata.metadata(name).json
    expression = str(fields.get("license_expression") or "")
    declared = str(fields.get("license") or "")
    classifiers = [
        str(value).removeprefix("License :: ")
        for value in fields.get("classifier") or []
        if str(value).startswith("License ::")
    ]
    # A long License field is often the whole license text: its first line names it.
    described = expression or (declared.splitlines()[0][:120] if declared.strip() else "")
    text = "; ".join(part for part in [described, *classifiers] if part) or "UNKNOWN"
    return PackageLicense(name=name, version=str(fields["version"]), license=text)


def check_licenses() -> list[PackageLicense]:
    names = set().union(*(closure(path) for path in LAYER_REQUIREMENTS))
    return [license_of(name) for name in sorted(names)]


def vulnerability_data_reachable(name: str, version: str) -> str | None:
    """None when the service answers with vulnerability data for a locked package; otherwise why not."""
    url = VULNERABILITY_SERVICE.format(name=name, version=version)
    try:
        with urllib.request.urlopen(url, timeout=PROBE_SECONDS) as answer:  # noqa: S310  # a fixed https URL
            document = json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return f"{url} answered HTTP {error.code} (no vulnerability data for a locked package)"
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as error:
        return f"{url} cannot be reached ({getattr(error, 'reason', error)})"
    if "vulnerabilities" not in document:
        return f"{url} carries no vulnerability data"
    return None


def locked_layer_requirements(closure: list[str]) -> str:
    """The lock's pins of the layer's packages, as a requirements file for pip-audit."""
    pins: dict[str, str] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if "==" in line:
            name = canonicalize_name(line.split("==", 1)[0])
            pins[name] = line.strip()
    return "\n".join(pins[name] for name in closure if name in pins) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make audit", description=__doc__)
    parser.add_argument("--pip-audit", default="pip-audit", help="the pip-audit executable")
    args = parser.parse_args(argv)

    licenses = check_licenses()
    width = max(len(package.name) for package in licenses)
    print(f"Licenses of the {len(licenses)} packages in the Lambda layers:")
    for package in licenses:
        flag = "FORBIDDEN" if package.forbidden else "ok"
        print(f"  {package.name:<{width}}  {package.version:<14} {flag:<9} {package.license}")
    forbidden = [package.name for package in licenses if package.forbidden]
    if forbidden:
        print(f"license check FAILED: GPL/AGPL in the layer: {', '.join(forbidden)}")
    else:
        print("license check passed: no GPL or AGPL in the layer")

    probe = licenses[0]
    unreachable = vulnerability_data_reachable(probe.name, probe.version)
    if unreachable is not None:
        print(f"vulnerability audit SKIPPED: {unreachable}")
        return 1 if forbidden else 0
    requirements = ROOT / ".audit-requirements.txt"
    requirements.write_text(
        locked_layer_requirements([package.name for package in licenses]), encoding="utf-8"
    )
    try:
        # --strict: a dependency that could not be audited fails the audit instead of passing silently.
        audited = subprocess.run(
            [args.pip_audit, "--strict", "--no-deps", "--progress-spinner", "off", "-r", str(requirements)],
            check=False,
        )
    finally:
        requirements.unlink(missing_ok=True)
    print("vulnerability audit " + ("passed" if audited.returncode == 0 else "FAILED"))
    return 1 if forbidden or audited.returncode != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
