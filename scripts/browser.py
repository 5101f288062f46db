"""The ComfyUI frontend in headless Debian chromium (driven by Playwright), for the browser tests
and the workflow builder."""

from __future__ import annotations

import tempfile
from contextlib import contextmanager

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@contextmanager
def open_page(url: str, width: int = 1600, height: int = 1000):
    """A headless chromium page at ``url`` (a server's or a file:// address)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        browser = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": width, "height": height})
        try:
            page = browser.new_page()
            page.goto(url)
            yield page
        finally:
            browser.close()


@contextmanager
def open_frontend(server, width: int = 1600, height: int = 1000):
    """A page with the frontend of ``server`` loaded and its app ready (tutorial skipped)."""
    server.post("/settings/Comfy.TutorialCompleted", True)
    with open_page(server.url, width, height) as page:
        page.wait_for_function("window.app && window.app.graph && window.LiteGraph",
                               timeout=90_000)
        page.wait_for_function("Object.keys(window.LiteGraph.registered_node_types).length > 100",
                               timeout=90_000)
        yield page
