"""Browser tests: Debian's chromium driven by Playwright against a live uvicorn (the API's
`live_api`), with the matching and settlement loops running in the test process.

Screenshots go to $SCREENSHOT_DIR (default: .local/screenshots, which git ignores); they
are artifacts, not committed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.api.conftest import live_api  # noqa: F401  (the fixture)
from tests.trading.conftest import btc_usdt, redis_db  # noqa: F401  (the fixtures)

# Playwright's sync API keeps an event loop running in the test's thread; Django then refuses
# ORM calls from that thread unless told the loop is not serving requests (it is not).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    path = Path(os.environ.get("SCREENSHOT_DIR") or ROOT / ".local" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: apt-get install -y chromium (./run test does it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def new_page(browser: Browser, base: str, *, lang: str = "en", width: int = 1400) -> Page:
    context = browser.new_context(viewport={"width": width, "height": 1000}, base_url=base)
    context.add_cookies([{"name": "django_language", "value": lang, "url": base}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # type: ignore[attr-defined]
    return page


def sign_in(page: Page, email: str, password: str, totp: Any = None) -> None:
    """The real sign-in form, then allauth's TOTP step when `totp` (a callable) is given."""
    page.goto("/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    if totp is not None:
        page.wait_for_selector("input[name=code]")
        page.fill("input[name=code]", totp())
        page.click("form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "/accounts/login" not in page.url, page.content()[:2000]
