"""Debian's Chromium (/usr/bin/chromium, the `chromium` package) driven by Playwright pointed at that binary; pages
are screenshotted into the artefacts directory (MCP_GATEWAY_TEST_ARTIFACTS, default build/test-artifacts)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

CHROMIUM = os.environ.get("MCP_GATEWAY_TEST_CHROMIUM", "/usr/bin/chromium")
# as the machine's notes say: no sandbox as root, and none of Chromium's own network traffic (refused here)
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(
    os.environ.get("MCP_GATEWAY_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "build" / "test-artifacts")
)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium; its absence is a failure (install Debian's `chromium`), never a skip."""
    assert shutil.which(CHROMIUM) or Path(CHROMIUM).is_file(), f"{CHROMIUM} missing: apt-get install chromium"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        await browser.close()


async def new_page(browser: Browser, scheme: str = "light", **options: Any) -> tuple[BrowserContext, Page]:
    """A fresh profile (its own cookies) with JavaScript off: every page must work without it."""
    context = await browser.new_context(color_scheme=scheme, java_script_enabled=False, **options)  # type: ignore[arg-type]
    return context, await context.new_page()


async def snap(page: Page, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    return path
