"""/markets/ in a real browser (issue 14): search, favourites that survive a reload, the
language switch and the theme toggle, and a trade moving the last price without a reload."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import Browser, expect

from accounts.models import Asset, User
from markets.models import Market
from tests.conftest import make_user
from tests.factories import fund
from tests.trading.conftest import eth_usdt  # noqa: F401  (the fixture)
from tests.trading.pipeline_helpers import loops_running, wait_settled
from tests.web.conftest import new_page
from trading.services.orders import place_order
from trading.validation import OrderSpec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

TIMEOUT = 20_000


def _row(page, symbol: str):
    return page.locator(f'tr[data-symbol="{symbol}"]')


def test_search_favourites_language_and_theme(
    live_api: str,
    browser: Browser,
    btc_usdt: Market,
    eth_usdt: Market,  # noqa: F811
) -> None:
    page = new_page(browser, live_api)
    page.goto("/markets/")
    expect(_row(page, "BTC-USDT")).to_be_visible()
    page.fill("#market-search", "eth")
    expect(_row(page, "BTC-USDT")).to_be_hidden()
    expect(_row(page, "ETH-USDT")).to_be_visible()
    page.fill("#market-search", "nothing-like-it")
    expect(page.get_by_text("No market matches.")).to_be_visible()
    page.fill("#market-search", "")

    _row(page, "ETH-USDT").locator("button.fav").click()
    page.reload()
    page.get_by_label("Favourites only").check()
    expect(_row(page, "BTC-USDT")).to_be_hidden()
    expect(_row(page, "ETH-USDT")).to_be_visible()

    theme = page.locator("html").get_attribute("data-theme")
    page.click("#theme-toggle")
    flipped = "light" if theme == "dark" else "dark"
    expect(page.locator("html")).to_have_attribute("data-theme", flipped)
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", flipped)

    page.select_option("#language", "fa")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("heading", name="بازارها")).to_be_visible()


def test_a_trade_moves_the_last_price_live(
    live_api: str, browser: Browser, btc_usdt: Market, assets: dict[str, Asset]
) -> None:
    maker: User = make_user("maker@example.com")
    taker: User = make_user("taker@example.com")
    fund(maker, assets["BTC"], "1")
    fund(taker, assets["USDT"], "100000")
    page = new_page(browser, live_api)
    page.goto("/markets/")
    expect(page.locator(".live-state")).to_have_text("Live", timeout=TIMEOUT)
    with loops_running(["BTC-USDT"]):
        for user, side in ((maker, "sell"), (taker, "buy")):
            place_order(
                user=user,
                market=btc_usdt,
                spec=OrderSpec(
                    side=side,
                    price=Decimal("51234.56"),
                    quantity=Decimal("0.01"),
                ),
            )
        wait_settled(["BTC-USDT"])
        last = _row(page, "BTC-USDT").locator('[data-field="last"]')
        expect(last).to_have_text("51234.56", timeout=TIMEOUT)
