"""Swagger UI at `/api/v1/docs` of `make dev` in headless Chromium: every documented operation renders,
and "Try it out" on `GET /health` shows the live answer."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Page,
    Request,
    Response,
    expect,
    sync_playwright,
)

from infra.local.stack_process import StackProcess
from tests.e2e.test_local_stack import client, stack

__all__ = ["client", "stack"]  # the stack's fixtures, shared with this module

pytestmark = pytest.mark.e2e

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
TIMEOUT_MS = 30_000


def chromium_path() -> str:
    """LOUPE_CHROMIUM when set (a path or a name on PATH), else the first browser on PATH; skips when
    there is none, since `make test` tried to install one before and could not."""
    chosen = os.environ.get("LOUPE_CHROMIUM")
    if chosen:
        found = shutil.which(chosen)
        if found is None:
            # Someone asked for this browser by name: running without it would hide their mistake.
            pytest.fail(f"LOUPE_CHROMIUM={chosen!r} is not an executable file or a command on PATH")
        return found
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found is not None:
            return found
    pytest.skip(
        "Chromium could not be installed: none of chromium, chromium-browser, google-chrome is on PATH; "
        "`make browser` installs Debian's chromium (needs root or passwordless sudo), "
        "or set LOUPE_CHROMIUM to a Chromium binary"
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    # Chromium refuses to start its sandbox as root (containers, CI runners).
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=args, timeout=TIMEOUT_MS
        )
        yield launched
        launched.close()


@dataclass
class Watched:
    """A page of its own browser context, with what went wrong while it was open."""

    page: Page
    origin: str
    problems: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text} ({message.location})")

    def on_request(self, request: Request) -> None:
        if not request.url.startswith(("data:", "blob:")) and _origin(request.url) != self.origin:
            # The docs must work where no CDN is reachable: everything comes from the API itself.
            self.problems.append(f"request outside {self.origin}: {request.method} {request.url}")

    def on_request_failed(self, request: Request) -> None:
        self.problems.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def on_response(self, response: Response) -> None:
        if _origin(response.url) == self.origin and response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    def on_page_error(self, error: Error) -> None:
        self.problems.append(f"uncaught exception: {error}")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture
def docs(browser: Browser, stack: StackProcess) -> Iterator[Watched]:
    """Swagger UI loaded and rendered: its operations are on the page."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    watched = Watched(page=page, origin=_origin(stack.url))
    page.on("console", watched.on_console)
    page.on("request", watched.on_request)
    page.on("requestfailed", watched.on_request_failed)
    page.on("response", watched.on_response)
    page.on("pageerror", watched.on_page_error)
    try:
        loaded = page.goto(f"{stack.url}/api/v1/docs")
        assert loaded is not None
        assert loaded.status == 200
        expect(page.locator("#swagger-ui .opblock").first).to_be_visible(timeout=TIMEOUT_MS)
        yield watched
    finally:
        context.close()


@pytest.fixture
def document(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200, response.text
    loaded: dict[str, Any] = response.json()
    return loaded


def documented_operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """Method and path of each operation, once under each of its tags: Swagger UI lists every tag's
    operations in that tag's section."""
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
        for _tag in operation.get("tags") or ["default"]
    ]


def rendered_operations(page: Page) -> list[tuple[str, str]]:
    pairs: list[list[str]] = page.locator("#swagger-ui .opblock").evaluate_all(
        """blocks => blocks.map(block => [
            block.querySelector('.opblock-summary-method').textContent.trim(),
            block.querySelector('.opblock-summary-path, .opblock-summary-path__deprecated')
                .getAttribute('data-path'),
        ])"""
    )
    return [(method, path) for method, path in pairs]


def test_every_documented_operation_renders(docs: Watched, document: dict[str, Any]) -> None:
    expected = documented_operations(document)
    assert len(expected) > 10  # the whole API, not a stub document
    # "list" expansion opens every tag section, so each operation is on the page without a click.
    expect(docs.page.locator("#swagger-ui .opblock")).to_have_count(len(expected), timeout=TIMEOUT_MS)
    assert sorted(rendered_operations(docs.page)) == sorted(expected)
    assert docs.problems == []


def test_try_it_out_on_health_shows_the_live_answer(
    docs: Watched, document: dict[str, Any], client: httpx.Client, stack: StackProcess
) -> None:
    found = [path for path, item in document["paths"].items() if path.endswith("/health") and "get" in item]
    assert len(found) == 1, found
    health_path = found[0]
    live_url = stack.url + document["servers"][0]["url"] + health_path
    real = client.get(live_url)
    assert real.status_code == 200, real.text

    page = docs.page
    operation = page.locator("#swagger-ui .opblock.opblock-get").filter(
        has=page.locator(f'.opblock-summary [data-path="{health_path}"]')
    )
    expect(operation).to_have_count(1)
    operation.locator(".opblock-summary").first.click()
    operation.get_by_role("button", name="Try it out").click()
    with page.expect_response(live_url, timeout=TIMEOUT_MS) as sent:
        operation.get_by_role("button", name="Execute").click()
    assert sent.value.status == 200

    live = operation.locator(".live-responses-table")
    expect(live.locator("tr.response .response-col_status")).to_have_text("200", timeout=TIMEOUT_MS)
    expect(operation.locator(".request-url pre")).to_have_text(live_url)
    shown = live.locator("tr.response .response-col_description .highlight-code pre").text_content()
    assert shown is not None
    assert json.loads(shown) == real.json()
    assert docs.problems == []
