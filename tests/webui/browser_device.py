"""The web UI tests' browser side: a :class:`Device` (one browser context with one page) and the viewports the
screenshots are taken at."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect
from server_live import LiveServer, password_of

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


class Device:
    """One browser context (its own cookies and storage: a device) with one page, recording console errors."""

    def __init__(self, browser: Any, live: LiveServer, viewport: dict[str, int] = DESKTOP,
                 scheme: str = "light") -> None:
        self.live = live
        self.context = browser.new_context(viewport=viewport, color_scheme=scheme)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.expected: list[str] = []  # console errors a test provokes on purpose (an API error it shows)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _console(self, message: Any) -> None:
        if message.type == "error" and not any(text in message.text for text in self.expected):
            self.errors.append(message.text)

    def login(self, user: str = "admin") -> Any:
        """Open the UI and log in through its form; the page, once the Generate view shows and the stream is live."""
        page = self.page
        page.goto(f"{self.live.url}/")
        page.get_by_label("User name").fill(user)
        page.get_by_label("Password").fill(password_of(user))
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("button", name="Generate")).to_be_visible()
        expect(page.get_by_role("contentinfo", name="Status")).to_contain_text("Live")
        return page

    def close(self) -> None:
        """Close the context."""
        self.context.close()
