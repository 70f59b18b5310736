"""Browser fixtures: the real server in a subprocess, Debian's Chromium through Playwright.

The server runs ``python -m server`` on 127.0.0.1 (``server.child.ChildServer``) with a free
port and a temporary data directory; it is always stopped, even when a test fails. Every page
records console errors and uncaught exceptions, and a test fails if any appear.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from models.presets import PRESETS
from server.child import ChildServer

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 768}
# A shared CI box can be slow: wait up to 15 s for what the page should show.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    # every test shares this server and 127.0.0.1, hence one rate-limit bucket; live
    # validation alone can use it up. The limiter has its own tests (test_security.py).
    no_limit = {
        "PLAYGROUND_RATE_LIMIT_PER_MINUTE": "0",
        "PLAYGROUND_VALIDATE_RATE_LIMIT_PER_MINUTE": "0",
    }
    with ChildServer(tmp_path_factory.mktemp("data"), env=no_limit, timeout=60) as srv:
        # a cold first validation can pass its 2 s budget (torch's FLOP counter imports sympy
        # on first use; issue 17): pay it here, not in the first page, which fails on a 5xx
        httpx.post(f"{srv.url}/api/validate", json={"spec": PRESETS["lenet5"].spec}, timeout=60)
        yield srv.url


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Problems:
    """Console errors and page errors seen by a page."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.allowed: list[str] = []

    def allow(self, text: str) -> None:
        """Expect console errors containing ``text`` (Chromium logs every 4xx a test provokes)."""
        self.allowed.append(text)

    def console(self, msg: ConsoleMessage) -> None:
        if any(a in msg.text for a in self.allowed):
            return
        if msg.type in ("error", "warning") and not _ignorable(msg.text):
            self.items.append(f"console.{msg.type}: {msg.text}")
        if msg.type == "log":
            self.items.append(f"console.log left behind: {msg.text}")

    def error(self, exc: Exception) -> None:
        self.items.append(f"pageerror: {exc}")

    def watch(self, page: Page) -> None:
        page.on("console", self.console)
        page.on("pageerror", self.error)


def _ignorable(text: str) -> bool:
    # Chromium's own notes about its flags are not the page's problems.
    return "GPU stall due to ReadPixels" in text


@pytest.fixture()
def problems() -> Problems:
    return Problems()


@pytest.fixture()
def new_page(browser: Browser, problems: Problems):
    """Make pages in fresh contexts (empty storage and cache), watched for errors."""
    contexts = []

    def make(**kwargs) -> Page:
        ctx = browser.new_context(viewport=VIEWPORT, **kwargs)
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(20_000)
        problems.watch(page)
        return page

    yield make
    for ctx in contexts:
        ctx.close()
    assert problems.items == [], "the page reported problems:\n" + "\n".join(problems.items)


@pytest.fixture()
def page(new_page) -> Page:
    return new_page()


def save_shot(page: Page, name: str, *, docs: bool = False, full_page: bool = False) -> Path:
    """Save a screenshot under tests/artifacts/ (gitignored) for people to look at.

    With ``docs=True`` and UPDATE_SCREENSHOTS=1 in the environment it is also copied to
    docs/screenshots/ for the README (not on every run: the PNGs are tracked files).
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    if docs and os.environ.get("UPDATE_SCREENSHOTS") == "1":
        target = ROOT / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / f"{name}.png")
    return path


@pytest.fixture()
def shot():
    """save_shot(page, name, docs=False): a screenshot for people to look at."""
    return save_shot


def heatmap_count(page: Page, selector: str) -> int:
    """How many heatmap traces Plotly holds in the figure at ``selector``."""
    return page.evaluate(
        "(s) => (document.querySelector(s).data || []).filter(t => t.type === 'heatmap').length",
        selector,
    )


@pytest.fixture()
def heatmaps():
    return heatmap_count
