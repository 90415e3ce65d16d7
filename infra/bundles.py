"""The bundles command line: a small client of the HTTP API that keeps an organization's saved objects in
a folder of YAML files (one per object, stable order) and pushes a folder back through plan and apply.

    python -m infra.bundles pull DIR [--include queries,dashboards]
    python -m infra.bundles push DIR [--prune] [--dry-run]

LOUPE_URL is the API's base (https://loupe.example.com/api/v1); LOUPE_API_KEY (an editor's key) or
LOUPE_TOKEN (an access token) authenticates."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

import yaml

KINDS = ("datasources", "snippets", "queries", "visualizations", "dashboards", "canvases")
INDEX = "bundle.yaml"

# (method, path under the API's base, JSON body or None) -> the answer's JSON; raises ApiError.
Send = Callable[[str, str, dict[str, Any] | None], dict[str, Any]]


# A bundle larger than this goes by a signed upload URL rather than in the request (API Gateway takes
# 10 MB bodies).
INLINE_MAX_BYTES = 5 * 1024**2


class ApiError(RuntimeError):
    """The API answered with an error; the message is its envelope's."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def signed(method: str, url: str, data: bytes | None = None) -> bytes:
    """A signed URL's object, fetched or stored without Loupe's credentials (S3 takes the signature)."""
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, method=method, data=data, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=120) as answer:  # noqa: S310  # the API's signed URL
        body: bytes = answer.read()
        return body


def http_sender(base_url: str, headers: dict[str, str]) -> Send:
    def send(method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310  # the operator's own API URL
            base_url.rstrip("/") + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", "Accept": "application/json", **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
                parsed: dict[str, Any] = json.loads(answer.read() or b"{}")
                return parsed
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise ApiError(error.code, f"{method} {path}: HTTP {error.code} {detail}") from None

    return send


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=True, allow_unicode=True, default_flow_style=False)


def write_folder(bundle: dict[str, Any], folder: Path) -> list[Path]:
    """The bundle as files: bundle.yaml (schema, source, kinds held) and <kind>/<key>.yaml per object; a
    file of an object no longer in the bundle is removed. The files written, in order."""
    folder.mkdir(parents=True, exist_ok=True)
    held = [kind for kind in KINDS if kind in bundle]
    index = {"schema": bundle["schema"], "source": bundle.get("source"), "kinds": held}
    written = [folder / INDEX]
    written[0].write_text(_dump(index))
    for kind in held:
        directory = folder / kind
        directory.mkdir(exist_ok=True)
        keep = set()
        for item in bundle[kind]:
            path = directory / f"{item['key']}.yaml"
            path.write_text(_dump(item))
            keep.add(path.name)
            written.append(path)
        for stale in directory.glob("*.yaml"):
            if stale.name not in keep:
                stale.unlink()
    return written


def read_folder(folder: Path) -> dict[str, Any]:
    """The bundle a folder holds (as write_folder wrote it, or as edited since)."""
    index = yaml.safe_load((folder / INDEX).read_text())
    bundle: dict[str, Any] = {"schema": index["schema"]}
    if index.get("source"):
        bundle["source"] = index["source"]
    for kind in index["kinds"]:
        bundle[kind] = [yaml.safe_load(path.read_text()) for path in sorted((folder / kind).glob("*.yaml"))]
    return bundle


def exported(send: Send, include: str | None) -> dict[str, Any]:
    """The organization's bundle of the kinds named (all by default)."""
    query = f"?include={include}" if include else ""
    try:
        return send("GET", f"/bundles{query}", None)
    except ApiError as error:
        if error.status != HTTPStatus.CONFLICT:
            raise
        # Larger than a response: by a signed URL.
        located: dict[str, Any] = json.loads(
            signed("GET", send("GET", f"/bundles/download{query}", None)["url"])
        )
        return located


def pull(send: Send, folder: Path, include: str | None) -> list[Path]:
    return write_folder(exported(send, include), folder)


def push(send: Send, folder: Path, *, prune: bool, dry_run: bool, out: Callable[[str], None]) -> int:
    """Plan the folder's bundle, print the plan, and apply it unless `dry_run`; 1 on conflicts."""
    bundle = read_folder(folder)
    text = json.dumps(bundle).encode()
    sent: dict[str, Any] = {"bundle": bundle}
    if len(text) > INLINE_MAX_BYTES:
        upload = send("POST", "/bundles/uploads", None)
        signed("PUT", upload["url"], text)
        sent = {"upload_id": upload["upload_id"]}
    planned = send("POST", "/bundles/plan", {**sent, "prune": prune})
    for change in planned["changes"]:
        fields = ", ".join(item["path"] for item in change["changes"])
        out(f"{change['action']:7} {change['kind']}/{change['key']}" + (f" ({fields})" if fields else ""))
    for conflict in planned["conflicts"]:
        out(f"CONFLICT {conflict['kind']}/{conflict['key']}: {conflict['code']}: {conflict['message']}")
    if planned["conflicts"]:
        return 1
    if not planned["changes"]:
        out("nothing to change")
        return 0
    if dry_run:
        return 0
    send("POST", "/bundles/apply", {**sent, "prune": prune, "base": planned["base"]})
    out(f"applied {len(planned['changes'])} changes")
    held = [kind for kind in KINDS if kind in bundle]
    refreshed = exported(send, ",".join(held))
    if bundle.get("source") == refreshed.get("source"):
        # The folder is this organization's: it takes the new revisions, so the next push is no conflict.
        write_folder(refreshed, folder)
    return 0


def main(argv: Sequence[str] | None = None, send: Send | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.bundles", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    pulling = commands.add_parser("pull", help="write the organization's bundle into a folder")
    pulling.add_argument("folder", type=Path)
    pulling.add_argument("--include", help="kinds, comma-separated (all by default)")
    pushing = commands.add_parser("push", help="plan a folder's bundle and apply it")
    pushing.add_argument("folder", type=Path)
    pushing.add_argument("--prune", action="store_true", help="delete what the folder does not hold")
    pushing.add_argument("--dry-run", action="store_true", help="print the plan only")
    arguments = parser.parse_args(argv)
    if send is None:
        url = os.environ.get("LOUPE_URL")
        if not url:
            parser.error("set LOUPE_URL to the API's base, like https://loupe.example.com/api/v1")
        key, token = os.environ.get("LOUPE_API_KEY"), os.environ.get("LOUPE_TOKEN")
        headers = {"X-API-Key": key} if key else {"Authorization": f"Bearer {token}"} if token else {}
        if not headers:
            parser.error("set LOUPE_API_KEY (an editor's key) or LOUPE_TOKEN")
        send = http_sender(url, headers)
    try:
        if arguments.command == "pull":
            written = pull(send, arguments.folder, arguments.include)
            print(f"wrote {len(written)} files to {arguments.folder}")
            return 0
        return push(send, arguments.folder, prune=arguments.prune, dry_run=arguments.dry_run, out=print)
    except ApiError as error:
        print(error, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
