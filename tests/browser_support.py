"""What the browser tests share: Debian's Chromium driven by Playwright, a live server and a browser for a
module (``serving`` and ``chromium``, which each module's fixtures yield from), and ``Page``: a page in a
fresh context that records console errors and every request it makes.

Skipped when Chromium or Playwright is absent outside CI (``conftest``); .ci/run installs Chromium.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from conftest import require_file, require_module
from live_server import live_server

CHROMIUM = require_file(Path("/usr/bin/chromium"), "Debian's chromium: .ci/run installs it")
sync_api = require_module("playwright.sync_api")
require_module("uvicorn")

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "browser"  # screenshots of each test (git-ignored)
# The flags this machine needs: no sandbox as root, no GPU, no background calls to the network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 20_000
DESKTOP = {"width": 1280, "height": 1000}


def serving() -> Iterator[str]:
    """The app served on a free loopback port, its base URL yielded (for a module-scoped fixture)."""
    with live_server() as url:
        yield url


def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, launched by Playwright (for a module-scoped fixture)."""
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


class Page:
    """A page in a fresh context that records console errors and every request it makes."""

    def __init__(self, browser: Any, viewport: dict[str, int] | None = None, **context_options: Any) -> None:
        self.context = browser.new_context(viewport=viewport or DESKTOP, **context_options)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))

    def count(self, kind: str) -> int:
        """How many times the page has drawn ``kind`` (body[data-updates], [data-advice], ...)."""
        return int(self.page.locator("body").get_attribute(f"data-{kind}") or 0)

    def wait(self, kind: str, after: int) -> None:
        """Until the page has drawn ``kind`` more than ``after`` times. Read through the locator, not a script
        (the page's Content-Security-Policy forbids evaluating strings), and compared as a number: a page that
        draws twice between two looks has drawn, where a selector for exactly ``after + 1`` would wait on."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while (drawn := self.count(kind)) <= after:
            if time.monotonic() > deadline:
                raise AssertionError(f"the page drew {kind} {drawn} times in {TIMEOUT_MS} ms; waited for more "
                                     f"than {after}")
            self.page.wait_for_timeout(20)

    def updates(self) -> int:
        return self.count("updates")

    def wait_for_update(self, after: int) -> None:
        self.wait("updates", after)

    def open(self, url: str, **state: Any) -> None:
        """The page with ``state`` in its address, once its analysis and advice are drawn."""
        query = urlencode({key: ",".join(v) if isinstance(v, list) else v for key, v in state.items()})
        self.page.goto(f"{url}/?{query}" if query else url)
        self.wait("updates", 0)
        self.wait("advice", 0)

    def cells(self, selector: str, column: int) -> list[str]:
        return self.page.locator(f"{selector} tbody tr").evaluate_all(
            f"rows => rows.map(r => r.cells[{column}].textContent)")

    def close(self, name: str) -> None:
        """Save a full-page screenshot as test-artifacts/browser/<name>.png and close the context."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        self.context.close()
