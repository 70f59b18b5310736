"""Refresh the Train tab's screenshots in docs/screenshots/ (train_spiral, train_lenet,
train_at_step): the spiral lesson trained 1,500 steps and LeNet-5's 300, as a student runs
them. They take longer than a test should, so they are made here, not in tests/browser.

    python scripts/train_screenshots.py

Needs /usr/bin/chromium and Fashion-MNIST; never runs ``playwright install``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from server.child import ChildServer

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]


def train(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_timeout(1500)  # a new hash reloads the page
    page.wait_for_selector("#train-start:not([disabled])")
    page.click("#train-start")
    page.wait_for_selector("#train[data-trained=done]", timeout=600_000)
    page.wait_for_timeout(1500)
    page.locator("#train-status").scroll_into_view_if_needed()


def main() -> None:
    env = {"PLAYGROUND_RATE_LIMIT_PER_MINUTE": "0"}
    with ChildServer(Path(tempfile.mkdtemp()), env=env, timeout=60) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        train(page, f"{srv.url}/playground#lesson=spiral_mlp&hide=palette")
        page.screenshot(path=str(OUT / "train_spiral.png"))
        train(page, f"{srv.url}/playground#lesson=lenet5_fashion&hide=palette")
        page.screenshot(path=str(OUT / "train_lenet.png"))
        page.locator("#time-slider").fill("3")
        page.wait_for_timeout(2500)
        page.locator("#at-step").scroll_into_view_if_needed()
        box = page.locator("#conv-maps .nsewdrag").first.bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.6)
        page.wait_for_selector("#hand-result")
        page.evaluate("() => document.getElementById('conv-kernels').scrollIntoView()")
        page.screenshot(path=str(OUT / "train_at_step.png"))
        browser.close()


if __name__ == "__main__":
    main()
