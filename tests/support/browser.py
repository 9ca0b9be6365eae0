"""Debian's Chromium driven by Playwright (never `playwright install`: nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def skip_without_browser() -> None:
    """Skip the calling test module, saying why, when the browser or the driver is missing."""
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)",
            allow_module_level=True,
        )
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.skip(
            "the playwright package is not installed (pip install playwright)", allow_module_level=True
        )
