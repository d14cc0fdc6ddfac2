"""The status page in a real headless Chromium (Debian's ``chromium``, driven by
Playwright's Python API; never a browser Playwright downloads): a plugin's health flips
and the page, reloading itself, shows it turn from active to degraded.

Skipped, with the reason, where Playwright or a Chromium binary is missing; ``.ci/run``
installs Debian's ``chromium`` so CI always runs it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_harness import live_server

from pipeline_ex import Runtime
from pipeline_ex.server.settings import ServerSettings

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (the 'browser' extra)"
)

#: Where Debian (and derivatives) put Chromium; PIPELINE_EX_CHROMIUM names another.
CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
#: Headless, and nothing that would reach for the network or a GPU.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str | None:
    named = os.environ.get("PIPELINE_EX_CHROMIUM")
    for candidate in (named, *CANDIDATES, shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture
def browser_path() -> str:
    found = chromium()
    if found is None:
        pytest.skip(
            "no Chromium found (/usr/bin/chromium): apt-get install chromium "
            "(.ci/run does), or set PIPELINE_EX_CHROMIUM"
        )
    return found


@pytest.fixture
def watched_runtime(flag_file: Path) -> Iterator[Runtime]:
    """``flippy`` with its health checked by the Runtime's own interval thread."""
    runtime = Runtime(
        {
            "monitoring": {"health_interval_s": 0.2},
            "plugins": {
                "flippy": {
                    "module": "server_plugins:Flippy",
                    "config": {"flag_file": str(flag_file)},
                }
            },
        }
    )
    try:
        yield runtime
    finally:
        runtime.close()


def test_the_page_shows_a_plugin_turning_degraded(
    browser_path: str, watched_runtime: Runtime, flag_file: Path, tmp_path: Path
) -> None:
    expect = sync_api.expect
    with (
        live_server(watched_runtime, ServerSettings(refresh_s=1)) as live,
        sync_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=browser_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(live.url + "/")
            badge = page.locator('td > span.status[data-plugin="flippy"]')
            expect(badge).to_have_text("active", timeout=30_000)

            flag_file.write_text("disk on fire", encoding="utf-8")
            expect(badge).to_have_text("degraded", timeout=30_000)
            section = page.locator('section[data-plugin="flippy"]')
            expect(section).to_contain_text("disk on fire")
            expect(section.locator("table").last).to_contain_text("degraded")  # history
            shot = tmp_path / "status-page.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    assert shot.read_bytes().startswith(b"\x89PNG")
