"""Every page a trader sees, in English and Persian, at a desktop's and a phone's width, in
a real browser: it renders, has the right direction and language, has no script error and
no horizontal scroll on a phone; a screenshot of each is saved (tests/web/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from accounts.models import Asset
from markets.models import Market
from tests.conftest import make_user
from tests.factories import PASSWORD, fund
from tests.web.conftest import new_page, sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

PAGES = [
    ("markets", "/markets/"),
    ("trade", "/trade/BTC-USDT/"),
    ("orders", "/orders/"),
    ("wallet", "/wallet/"),
    ("api-keys", "/api-keys/"),
    ("webhooks", "/webhooks/"),
    ("security", "/security/"),
    ("fees", "/account/fees/"),
    ("account", "/account/"),
]


@pytest.mark.parametrize("lang", ["en", "fa"])
def test_every_page_renders_in_both_languages_and_widths(
    live_api: str,
    browser: Browser,
    assets: dict[str, Asset],
    btc_usdt: Market,
    screenshot_dir: Path,
    lang: str,
) -> None:
    trader = make_user("tour@example.com")
    fund(trader, assets["USDT"], "1000")
    for width in (1400, 390):
        page = new_page(browser, live_api, lang=lang, width=width)
        sign_in(page, trader.email, PASSWORD)
        for name, path in PAGES:
            response = page.goto(path)
            assert response is not None
            assert response.status == 200, (path, response.status)
            html = page.locator("html")
            expect(html).to_have_attribute("lang", lang)
            expect(html).to_have_attribute("dir", "rtl" if lang == "fa" else "ltr")
            page.wait_for_load_state("networkidle")
            if width == 390:
                overflow = page.evaluate(
                    "() => document.documentElement.scrollWidth - window.innerWidth"
                )
                assert overflow <= 1, (path, overflow)
            page.screenshot(path=screenshot_dir / f"{name}-{lang}-{width}.png", full_page=True)
        assert page.js_errors == [], page.js_errors  # type: ignore[attr-defined]
        page.context.close()
