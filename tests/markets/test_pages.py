"""The market pages' server side (issue 14): /markets/ and /trade/<SYMBOL>/ render from the
market-data selectors; the trading page's config carries the rules, the trader's own rates
and balances, and nothing of anyone else's. The live behaviour is in tests/web."""

# ruff: noqa: F811  (pytest fixtures by name; Persian text is the point)
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client

from accounts.models import Asset, User
from markets.models import FeeTier, Market, UserFeeTier
from tests.conftest import make_user
from tests.factories import PASSWORD, fund
from tests.trading.conftest import btc_usdt, eth_usdt, make_market  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def _config(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="market-config" type="application/json">') + len(
        '<script id="market-config" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_market_list_shows_every_listed_market_and_hides_unlisted(
    client: Client, btc_usdt: Market, eth_usdt: Market, assets: dict[str, Asset]
) -> None:
    make_market("ETH-BTC", assets["ETH"], assets["BTC"], listed=False)
    response = client.get("/markets/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-symbol="BTC-USDT"' in html
    assert 'data-symbol="ETH-USDT"' in html
    assert "ETH-BTC" not in html
    assert 'href="/trade/BTC-USDT/"' in html
    assert "vendor/alpinejs/alpine.min.js" in html  # vendored, no CDN
    assert "https://" not in html.split("<body")[0]


def test_trade_page_for_a_visitor_has_the_rules_and_asks_to_sign_in(
    client: Client, btc_usdt: Market
) -> None:
    response = client.get("/trade/btc-usdt/")
    assert response.status_code == 200
    config = _config(response)
    assert config["symbol"] == "BTC-USDT"
    assert config["stream"] == "btcusdt"
    assert config["rest_symbol"] == "BTCUSDT"
    assert config["tick_size"] == "0.01"
    assert config["lot_size"] == "0.00001"
    assert config["min_notional"] == "5"
    assert config["price_places"] == 2
    assert config["signed_in"] is False
    assert config["balances"] == {}
    assert "Sign in to trade." in response.content.decode()


def test_trade_page_for_a_trader_has_own_rates_and_balances_only(
    client: Client, btc_usdt: Market, assets: dict[str, Asset]
) -> None:
    alice: User = make_user("alice@example.com")
    bob: User = make_user("bob@example.com")
    fund(alice, assets["USDT"], "1234.5")
    fund(bob, assets["BTC"], "3")
    tier = FeeTier.objects.create(
        name="VIP",
        min_volume_30d=Decimal("0"),
        maker_fee=Decimal("0.0005"),
        taker_fee=Decimal("0.003"),
    )
    UserFeeTier.objects.create(user=alice, tier=tier, volume_30d=Decimal("0"))
    client.login(email=alice.email, password=PASSWORD)
    config = _config(client.get("/trade/BTC-USDT/"))
    assert config["signed_in"] is True
    assert config["balances"]["USDT"]["available"] == "1234.500000"
    assert config["balances"]["BTC"]["available"] == "0.00000000"  # bob's 3 BTC are not hers
    # the lower of the market's and the tier's rate per side
    assert config["maker_fee"] == "0.0005"
    assert config["taker_fee"] == "0.002"


@pytest.mark.parametrize("path", ["/trade/NOPE-USDT/", "/trade/ETH-BTC/", "/trade/%0A/"])
def test_unknown_or_unlisted_market_is_a_404(
    client: Client, btc_usdt: Market, assets: dict[str, Asset], path: str
) -> None:
    make_market("ETH-BTC", assets["ETH"], assets["BTC"], listed=False)
    assert client.get(path).status_code == 404


def test_trade_page_in_persian_is_right_to_left_and_translated(
    client: Client, btc_usdt: Market
) -> None:
    client.cookies["django_language"] = "fa"
    html = client.get("/trade/BTC-USDT/").content.decode()
    assert 'dir="rtl"' in html
    assert "دفتر سفارش" in html
    assert "معاملات اخیر" in html
    labels = json.loads(
        html.split('<script id="labels" type="application/json">')[1].split("</script>")[0]
    )
    assert labels["buy"] == "خرید"
    assert "%s" in labels["too_precise"]


def test_pages_refuse_unsafe_methods(client: Client, btc_usdt: Market) -> None:
    assert client.post("/markets/").status_code == 405
    assert client.post("/trade/BTC-USDT/").status_code == 405
