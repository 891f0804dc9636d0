"""Finding a browser for the web UI's tests: Debian's Chromium (``apt-get install chromium``), driven by
Playwright for Python without Playwright's own browser download."""

from __future__ import annotations

import shutil

#: the names a Chromium goes by on PATH, Debian's first
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    """The first Chromium on PATH, or None when there is none."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None
