"""A real uvicorn process serving a copy of the seeds index, on a free port."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bench.serving import free_port
from tests.conftest import ROOT


@dataclass
class Server:
    url: str
    data: Path
    env: dict
    proc: subprocess.Popen | None = None
    log: Path | None = None  # the server's stderr: its JSON log lines, one file for all its starts

    def start(self, wait: bool = True) -> Server:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = self.log or self.data.with_name(self.data.name + ".log")
        with self.log.open("ab") as log:  # a file, not a pipe nobody reads, which would fill and block
            self.proc = subprocess.Popen(
                [str(Path(sys.executable).with_name("citeqa")), "serve", "--port", str(port)], cwd=ROOT,
                env={**os.environ, "HF_HUB_OFFLINE": "1", "CITEQA_DATA_DIR": str(self.data), **self.env},
                stdout=subprocess.DEVNULL, stderr=log)
        return self.wait_ready() if wait else self

    def wait_ready(self, seconds: float = 120) -> Server:
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log_text()[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"server did not become ready in {seconds:.0f} s:\n{self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a crash or an OOM kill."""
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def restart(self) -> Server:
        self.stop()
        return self.start()


def serve_copy(seeds_data: Path, tmp: Path, **env: str) -> Server:
    """A server over its own copy of the seeds index, so what it writes stays its own."""
    data = tmp / "data"
    shutil.copytree(seeds_data, data)
    return Server("", data, env).start()


@pytest.fixture(scope="session")
def server(seeds_data):
    """Read-only use: the seeds index as built, shared by every test that does not write."""
    srv = Server("", seeds_data, {}).start()
    yield srv.url
    srv.stop()


# ---------- the chat page in a real browser: Debian's Chromium driven by Playwright ----------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Tab:
    """A page, and every console error, page error and failed request it met."""

    page: object
    problems: list[str]
    allowed: set[int]  # HTTP statuses this test provokes on purpose; Chromium logs each as a console error

    def allow(self, *statuses: int) -> None:
        self.allowed.update(statuses)


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
