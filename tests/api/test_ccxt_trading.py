"""Unmodified ccxt.binance and ccxt.binanceus trade against the live uvicorn (issue 12):
limit and market orders, fetch_order, fetch_open_orders, fetch_orders, cancel_order,
cancel_all_orders, fetch_balance, fetch_my_trades, and the exception classes ccxt raises
for our errors. The clients are pointed at the server by URL options only (PARTNER_API
§1.2); a transport refuses any request that is not to 127.0.0.1.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
import pytest

from accounts.models import Asset, User
from markets.models import Market
from tests.api.conftest import make_key
from tests.api.test_ccxt_public import RecordingAdapter, RefusingAdapter
from tests.conftest import balance_of, fund, ledger_snapshot
from tests.trading.conftest import btc_usdt  # noqa: F401  (the fixture)
from tests.trading.pipeline_helpers import loops_running, wait_settled
from trading.models import Order

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("redis_db"),
]

D = Decimal
SYMBOL = "BTC-USDT"
KINDS = ["binance", "binanceus"]


def trader(kind: str, base: str, user: User, *, secret: str | None = None) -> Any:
    """ccxt's class as installed, with our URLs (and binance's three options), keyed."""
    key, real_secret = make_key(user)
    cls = getattr(ccxt, kind)
    api = dict.fromkeys(("public", "private"), base + "/api/v3")
    api.update({k: base + "/unsupported" for k in cls().urls["api"] if k not in api})
    config: dict[str, Any] = {
        "urls": {"api": api},
        "apiKey": key,
        "secret": secret or real_secret,
    }
    if kind == "binance":
        config["options"] = {
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
            "adjustForTimeDifference": True,
        }
    exchange = cls(config)
    exchange.session.mount("http://", RecordingAdapter([]))
    exchange.session.mount("https://", RefusingAdapter())
    exchange.load_markets()
    return exchange


@pytest.fixture
def funded(alice: User, bob: User, assets: dict[str, Asset], btc_usdt: Market) -> None:  # noqa: F811
    fund(alice, assets["USDT"], "100000")
    fund(bob, assets["BTC"], "2")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.usefixtures("funded")
def test_ccxt_places_fetches_lists_and_cancels(kind, live_api, alice, bob, assets):
    a = trader(kind, live_api, alice)
    b = trader(kind, live_api, bob)
    with loops_running([SYMBOL]):
        resting = a.create_order("BTC/USDT", "limit", "buy", 0.1, 50000)
        assert resting["status"] == "open"
        assert resting["clientOrderId"].startswith("x-")  # ccxt's own broker-prefixed id
        sold = b.create_order("BTC/USDT", "market", "sell", 0.04)
        assert sold["status"] == "closed"
        assert sold["filled"] == pytest.approx(0.04)
        assert sold["cost"] == pytest.approx(2000)
        assert sold["fee"]["currency"] == "USDT"
        assert sold["fee"]["cost"] == pytest.approx(4)  # taker 0.2%
        wait_settled([SYMBOL])
        fetched = a.fetch_order(resting["id"], "BTC/USDT")
        assert (fetched["status"], fetched["filled"], fetched["remaining"]) == ("open", 0.04, 0.06)
        assert fetched["side"] == "buy"
        assert fetched["type"] == "limit"
        second = a.create_order("BTC/USDT", "limit", "buy", 0.01, 48000)
        third = a.create_order("BTC/USDT", "limit", "buy", 0.01, 47000)
        wait_settled([SYMBOL])
        open_ids = [o["id"] for o in a.fetch_open_orders("BTC/USDT")]
        assert open_ids == [resting["id"], second["id"], third["id"]]
        cancelled = a.cancel_order(second["id"], "BTC/USDT")
        assert cancelled["status"] == "canceled"
        wait_settled([SYMBOL])
        a.cancel_all_orders("BTC/USDT")
        wait_settled([SYMBOL])
        assert a.fetch_open_orders("BTC/USDT") == []
        # a market buy with a price: ccxt sends quoteOrderQty = amount x price
        b.create_order("BTC/USDT", "limit", "sell", 0.05, 50000)
        bought = a.create_order("BTC/USDT", "market", "buy", 0.02, 50000)
        assert bought["status"] == "closed"
        assert bought["cost"] == pytest.approx(1000)
        wait_settled([SYMBOL])
    statuses = {o["id"]: o["status"] for o in a.fetch_orders("BTC/USDT")}
    assert statuses == {
        resting["id"]: "canceled",
        second["id"]: "canceled",
        third["id"]: "canceled",
        bought["id"]: "closed",
    }
    balance = a.fetch_balance()
    assert balance["BTC"]["free"] == pytest.approx(0.06)
    assert balance["USDT"]["used"] == 0
    assert D(str(balance["USDT"]["total"])) == balance_of(alice, assets["USDT"])[0]
    trades = a.fetch_my_trades("BTC/USDT")
    assert [(t["side"], t["takerOrMaker"], t["amount"]) for t in trades] == [
        ("buy", "maker", 0.04),
        ("buy", "taker", 0.02),
    ]
    assert trades[0]["fee"] == {"cost": 2.0, "currency": "USDT"}  # maker 0.1% of 2000
    assert trades[0]["order"] == resting["id"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.usefixtures("funded")
def test_ccxt_raises_the_right_exception_classes(kind, live_api, alice, bob):
    a = trader(kind, live_api, alice)
    b = trader(kind, live_api, bob)
    before = ledger_snapshot(), Order.objects.count()
    with pytest.raises(ccxt.InsufficientFunds):
        a.create_order("BTC/USDT", "limit", "buy", 10, 50000)
    with pytest.raises(ccxt.OrderNotFound):
        a.fetch_order("987654321", "BTC/USDT")
    with pytest.raises(ccxt.OrderNotFound):
        a.cancel_order("987654321", "BTC/USDT")
    with pytest.raises(ccxt.BadSymbol):
        a.privateGetOpenOrders({"symbol": "NOPEUSDT"})  # a market the server does not list
    with pytest.raises(ccxt.InvalidOrder):
        a.create_order("BTC/USDT", "limit", "buy", 0.01, 10000)  # outside the price band
    offset = a.options.get("timeDifference", 0)
    a.options["timeDifference"] = 120_000  # the client's clock two minutes behind
    with pytest.raises(ccxt.InvalidNonce):
        a.fetch_balance()
    a.options["timeDifference"] = offset
    wrong = trader(kind, live_api, alice, secret="not-the-secret")
    with pytest.raises(ccxt.AuthenticationError):
        wrong.fetch_balance()
    assert (ledger_snapshot(), Order.objects.count()) == before
    with loops_running([SYMBOL]):
        b.create_order("BTC/USDT", "limit", "sell", 0.01, 50000)
        wait_settled([SYMBOL])
        with pytest.raises(ccxt.OrderImmediatelyFillable):  # an InvalidOrder
            a.create_order("BTC/USDT", "limit", "buy", 0.01, 50000, {"postOnly": True})
        wait_settled([SYMBOL])
    assert issubclass(ccxt.OrderImmediatelyFillable, ccxt.InvalidOrder)
