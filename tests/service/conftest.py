"""Fixtures of the service tests: the chat page in Debian's Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, Tab


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser):
    """Opens the page in a fresh browser context; at teardown, fails the test on any console error."""
    tabs = []

    def open_(url: str, viewport: dict = DESKTOP) -> Tab:
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        page.set_default_timeout(30_000)
        tab = Tab(page, [], set())
        page.on("console", lambda m: tab.problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: tab.problems.append(f"uncaught: {e}"))
        tabs.append((context, tab))
        page.goto(url)
        return tab

    yield open_
    for context, tab in tabs:
        context.close()
        unexpected = [p for p in tab.problems
                      if not any(f"status of {s}" in p for s in tab.allowed)]
        assert not unexpected, f"the page logged errors: {unexpected}"


@pytest.fixture
def shots(request, tmp_path) -> Path:
    """Where screenshots go: the --screenshots folder when given, else the test's temporary folder."""
    given = request.config.getoption("--screenshots")
    folder = Path(given) if given else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder
