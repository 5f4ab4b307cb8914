"""The chat page in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

from dataclasses import dataclass

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@dataclass
class Tab:
    """A page, and every console error, page error and failed request it met."""

    page: object
    problems: list[str]
    allowed: set[int]  # HTTP statuses this test provokes on purpose; Chromium logs each as a console error

    def allow(self, *statuses: int) -> None:
        self.allowed.update(statuses)
