"""The trading page in a real browser (issue 14): two traders, one signed in with 2FA, trade
against each other through the page; the book, the trades, the chart's last candle, the
open orders and the balances change without a reload; cancel; the server's refusal is
shown; Persian is right-to-left with Jalali dates; a dropped websocket reconnects."""

# ruff: noqa: RUF001  (pytest fixtures by name; Persian text is the point)
from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from playwright.sync_api import Browser, Page, expect

from accounts.models import Asset, User
from markets.models import Market
from tests.accounts.web_support import totp_code
from tests.conftest import balance_of, make_user
from tests.factories import PASSWORD, fund
from tests.trading.pipeline_helpers import loops_running, wait_settled
from tests.web.conftest import new_page, sign_in
from trading.models import Order, Trade

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

D = Decimal
SYMBOL = "BTC-USDT"
TIMEOUT = 20_000  # ms: the loops settle within a second; the slack is for a loaded machine


@pytest.fixture
def traders(assets: dict[str, Asset], btc_usdt: Market) -> tuple[User, str, User]:
    alice = make_user("alice@example.com")
    bob = make_user("bob@example.com")
    fund(alice, assets["USDT"], "100000")
    fund(bob, assets["BTC"], "2")
    secret = generate_totp_secret()
    TOTP.activate(alice, secret)
    return alice, secret, bob


def _open_trade(page: Page) -> None:
    page.goto(f"/trade/{SYMBOL}/")
    expect(page.get_by_test_id("live-state")).to_have_text("Live", timeout=TIMEOUT)


def _place(page: Page, *, side: str, price: str, amount: str) -> None:
    page.get_by_role("tab", name=re.compile(("Buy" if side == "buy" else "Sell") + " BTC")).click()
    page.get_by_role("tab", name="Limit", exact=True).click()
    page.fill("#price", price)
    page.fill("#amount", amount)
    page.get_by_test_id("submit").click()


def test_two_traders_trade_live_cancel_and_see_refusals(
    live_api: str, browser: Browser, traders, screenshot_dir: Path, assets
) -> None:
    alice, secret, bob = traders
    with loops_running([SYMBOL]):
        a = new_page(browser, live_api)
        sign_in(a, alice.email, PASSWORD, totp=lambda: totp_code(secret))
        _open_trade(a)
        b = new_page(browser, live_api)
        sign_in(b, bob.email, PASSWORD)
        _open_trade(b)

        # alice bids; the order is in her open orders and in both pages' books
        _place(a, side="buy", price="50000", amount="0.01")
        expect(a.get_by_test_id("notice")).to_have_text("Order placed.", timeout=TIMEOUT)
        expect(a.get_by_test_id("orders").locator("tr")).to_have_count(1, timeout=TIMEOUT)
        expect(a.get_by_test_id("bids")).to_contain_text("50000", timeout=TIMEOUT)
        expect(b.get_by_test_id("bids")).to_contain_text("50000", timeout=TIMEOUT)
        expect(a.get_by_test_id("balances")).to_contain_text(
            "99499", timeout=TIMEOUT
        )  # 500 + 0.2 % fee held
        a.screenshot(path=screenshot_dir / "trade-en-resting-bid.png", full_page=True)

        # bob sells into it: both pages show the trade, the candle and the new balances
        _place(b, side="sell", price="50000", amount="0.01")
        for page in (a, b):
            expect(page.get_by_test_id("trades")).to_contain_text("50000", timeout=TIMEOUT)
            expect(page.get_by_test_id("bids")).not_to_contain_text("50000", timeout=TIMEOUT)
        wait_settled([SYMBOL])
        assert Trade.objects.count() == 1
        expect(a.get_by_test_id("orders").locator("tr")).to_have_count(0, timeout=TIMEOUT)
        expect(a.locator("[data-asset=BTC]")).to_have_text("0.01", timeout=TIMEOUT)
        expect(b.locator("[data-asset=USDT]")).to_have_text(
            "499", timeout=TIMEOUT
        )  # 500 - 0.2 % fee
        a.wait_for_function("() => window.tradePageInstance.lastCandle?.c === '50000'")
        assert balance_of(alice, assets["BTC"])[0] == D("0.01")
        b.screenshot(path=screenshot_dir / "trade-en-after-trade.png", full_page=True)

        # cancel a resting order from the open orders tab
        _place(a, side="buy", price="49000", amount="0.01")
        expect(a.get_by_test_id("orders").locator("tr")).to_have_count(1, timeout=TIMEOUT)
        a.get_by_test_id("orders").get_by_role("button", name="Cancel").click()
        expect(a.get_by_test_id("orders").locator("tr")).to_have_count(0, timeout=TIMEOUT)
        wait_settled([SYMBOL])
        assert Order.objects.filter(user=alice, status="canceled").count() == 1

        # a bad order: the server's message is shown and nothing is placed
        before = Order.objects.count()
        _place(a, side="buy", price="50000", amount="50")  # 2.5M USDT: more than alice has
        expect(a.get_by_test_id("server-error")).to_contain_text("nsufficient", timeout=TIMEOUT)
        assert Order.objects.count() == before

        # a dropped websocket reconnects and resyncs the book from a snapshot
        a.evaluate("() => window.tradePageInstance.market.drop()")
        expect(a.get_by_test_id("live-state")).to_have_text("Reconnecting…", timeout=TIMEOUT)
        expect(a.get_by_test_id("live-state")).to_have_text("Live", timeout=TIMEOUT)
        _place(b, side="sell", price="51000", amount="0.001")
        expect(a.get_by_test_id("asks")).to_contain_text("51000", timeout=TIMEOUT)

        # Persian: right to left, Jalali dates and Persian digits in the order history
        a.context.add_cookies([{"name": "django_language", "value": "fa", "url": live_api}])
        a.reload()
        expect(a.locator("html")).to_have_attribute("dir", "rtl")
        expect(a.get_by_test_id("live-state")).to_have_text("زنده", timeout=TIMEOUT)
        a.get_by_role("tab", name="تاریخچه سفارش‌ها").click()
        expect(a.get_by_test_id("orders")).to_contain_text("۱۴۰", timeout=TIMEOUT)  # a 140x year
        expect(a.get_by_test_id("asks")).to_contain_text("۵۱۰۰۰", timeout=TIMEOUT)
        a.screenshot(path=screenshot_dir / "trade-fa-history.png", full_page=True)
        assert a.js_errors == []
        assert b.js_errors == []


BAD_INPUTS = [
    ("price", "50000.001", "At most 2 decimal places."),
    ("price", "-5", "Must be greater than zero."),
    ("price", "", "Enter a value."),
    ("price", "5e4", "Enter a plain number"),
    ("price", "50000.5.1", "Enter a plain number"),
    ("amount", "0.000001", "At most 5 decimal places."),
    ("amount", "1" * 40, "The number is too large."),
    ("amount", "0.00001", "The minimum amount is 0.0001."),
    ("amount", "1000", "The maximum amount is 100."),
    ("amount", "0", "Must be greater than zero."),
]


def test_bad_inputs_get_a_message_and_place_nothing(
    live_api: str, browser: Browser, traders, screenshot_dir: Path
) -> None:
    alice, secret, _ = traders
    page = new_page(browser, live_api)
    sign_in(page, alice.email, PASSWORD, totp=lambda: totp_code(secret))
    _open_trade(page)
    for field, value, message in BAD_INPUTS:
        page.fill("#price", "50000")
        page.fill("#amount", "0.01")
        page.fill(f"#{field}", value)
        page.get_by_test_id("submit").click()
        error = page.locator(f"#{'amount' if field == 'amount' else field}-error")
        expect(error).to_contain_text(message)
    # Persian and Arabic-Indic digits are understood, never misread
    page.fill("#price", "۵۰۰۰۰٫۵")
    expect(page.locator("#price")).to_have_value("50000.5")
    page.fill("#amount", "٠٫٠١")
    expect(page.locator("#amount")).to_have_value("0.01")
    expect(page.locator("#total")).to_have_value("500.005")
    # below the minimum value (5 USDT), checked before it is sent: 45000 x 0.0001 = 4.5
    page.fill("#price", "45000")
    page.fill("#amount", "0.0001")
    page.get_by_test_id("submit").click()
    expect(page.locator("#total-error")).to_contain_text("at least 5")
    page.screenshot(path=screenshot_dir / "trade-en-bad-input.png", full_page=True)
    assert Order.objects.count() == 0
