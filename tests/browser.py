"""A real browser for tests: Debian's Chromium, driven by Playwright's async API (launched with
the system binary; Playwright's own browser downloads are never used). `.ci/run` installs
Chromium; where it is missing the browser tests skip and say how to get it."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    given = os.environ.get("INTERLOCK_CHROMIUM")
    if given:
        return given
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def need_browser() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium: `apt-get install chromium` (or set INTERLOCK_CHROMIUM)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip("no Playwright: `pip install -e '.[dev]'`")
    return path


@asynccontextmanager
async def browser_page(width: int = 1280, height: int = 900) -> AsyncIterator[object]:
    """A fresh page in a headless Chromium (closed afterwards)."""
    from playwright.async_api import async_playwright

    path = need_browser()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=path, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = await browser.new_context(viewport={"width": width, "height": height})
            page = await context.new_page()
            page.set_default_timeout(10_000)
            yield page
        finally:
            await browser.close()
