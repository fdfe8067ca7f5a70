"""Unmodified ccxt.binance and ccxt.binanceus, pointed at the live uvicorn by URL options only
(PARTNER_API §1.2: every `urls.api` key overridden), read the market data.

The clients are ccxt's own classes as installed; the only thing the test adds is a
transport on their requests session that records each URL and refuses any request that is
not to the local server, so a test can never send a request to Binance.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import ccxt
import pytest
from requests.adapters import HTTPAdapter

from accounts.models import Asset
from exchange import clock
from markets import selectors
from markets.models import Market
from tests.markets.marketdata_helpers import Fill, TradeFeed
from trading.models import Trade

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]


class RecordingAdapter(HTTPAdapter):
    """Sends only to 127.0.0.1 and remembers every path (with its query) it sent."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(request.url)
        if parts.hostname != "127.0.0.1":
            raise AssertionError(f"ccxt tried to reach {request.url}")
        self.log.append(parts.path + (f"?{parts.query}" if parts.query else ""))
        return super().send(request, *args, **kwargs)


class RefusingAdapter(HTTPAdapter):
    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"ccxt tried to reach {request.url}")


def client(kind: str, base: str) -> tuple[Any, list[str]]:
    """The partner snippet of docs/api/compat.md: binance + 3 options, or binanceus as is."""
    cls = getattr(ccxt, kind)
    api = dict.fromkeys(("public", "private"), base + "/api/v3")
    api.update({k: base + "/unsupported" for k in cls().urls["api"] if k not in api})
    config: dict[str, Any] = {"urls": {"api": api}}
    if kind == "binance":
        config["options"] = {
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
            "adjustForTimeDifference": True,
        }
    exchange = cls(config)
    log: list[str] = []
    exchange.session.mount("http://", RecordingAdapter(log))
    exchange.session.mount("https://", RefusingAdapter())
    return exchange, log


@pytest.fixture
def feed(assets: dict[str, Asset]) -> TradeFeed:
    feed = TradeFeed.create(assets, "BTC-USDT")
    now = clock.now()
    feed.settle(
        [Fill("100.00", "1", "buy"), Fill("101.00", "2", "sell")], at=now - timedelta(minutes=30)
    )
    feed.settle([Fill("102.00", "0.5", "buy")], at=now - timedelta(minutes=2))
    at = clock.now()
    feed.rest("buy", "99.00", "1.5", at=at)
    feed.rest("buy", "98.50", "2", at=at)
    feed.rest("sell", "105.00", "0.25", at=at)
    return feed


@pytest.mark.parametrize("kind", ["binance", "binanceus"])
def test_ccxt_reads_markets_tickers_book_trades_and_candles(
    kind: str, live_api: str, feed: TradeFeed, assets: dict[str, Asset]
) -> None:
    Market.objects.create(
        symbol="ETH-USDT", base=assets["ETH"], quote=assets["USDT"], tick_size=Decimal("0.1"),
        lot_size=Decimal("0.001"), min_quantity=Decimal("0.01"), max_quantity=Decimal("500"),
        min_notional=Decimal("10"),
    )  # fmt: skip
    exchange, log = client(kind, live_api)

    markets = exchange.load_markets()
    assert sorted(markets) == ["BTC/USDT", "ETH/USDT"]
    eth = markets["ETH/USDT"]
    assert (eth["id"], eth["spot"], eth["active"], eth["type"]) == ("ETHUSDT", True, True, "spot")
    assert eth["precision"]["price"] == 0.1
    assert eth["precision"]["amount"] == 0.001
    assert eth["limits"]["amount"] == {"min": 0.01, "max": 500.0}
    assert eth["limits"]["market"] == {"min": 0.01, "max": 500.0}
    assert eth["limits"]["cost"]["min"] == 10.0
    assert eth["limits"]["price"]["min"] == 0.1
    btc = markets["BTC/USDT"]
    assert (btc["precision"]["price"], btc["precision"]["amount"]) == (0.01, 0.0001)
    assert not any(path.startswith("/unsupported") for path in log), log

    assert abs(exchange.fetch_time() - int(clock.now().timestamp() * 1000)) < 5000

    ticker = exchange.fetch_ticker("BTC/USDT")
    assert (ticker["last"], ticker["open"], ticker["high"], ticker["low"]) == (102, 100, 102, 100)
    assert (ticker["bid"], ticker["bidVolume"], ticker["ask"], ticker["askVolume"]) == (
        99,
        1.5,
        105,
        0.25,
    )
    assert ticker["baseVolume"] == 3.5
    rolling = exchange.fetch_ticker("BTC/USDT", {"rolling": True})  # GET /api/v3/ticker
    assert (rolling["last"], rolling["baseVolume"]) == (102, 3.5)
    assert sorted(exchange.fetch_tickers()) == ["BTC/USDT", "ETH/USDT"]
    assert list(exchange.fetch_tickers(["ETH/USDT"])) == ["ETH/USDT"]

    book = exchange.fetch_order_book("BTC/USDT")
    depth = selectors.depth(feed.market)
    assert book["nonce"] == depth.last_update_id
    assert book["bids"] == [[float(p), float(q)] for p, q in depth.bids] == [[99, 1.5], [98.5, 2]]
    assert book["asks"] == [[float(p), float(q)] for p, q in depth.asks] == [[105, 0.25]]
    assert len(exchange.fetch_order_book("BTC/USDT", limit=1)["bids"]) == 1

    seqs = list(
        Trade.objects.filter(market=feed.market).order_by("seq").values_list("seq", flat=True)
    )
    trades = exchange.fetch_trades("BTC/USDT")
    assert [int(t["id"]) for t in trades] == seqs
    assert [(t["price"], t["amount"], t["side"]) for t in trades] == [
        (100, 1, "buy"),
        (101, 2, "sell"),
        (102, 0.5, "buy"),
    ]
    plain = exchange.fetch_trades("BTC/USDT", params={"method": "publicGetTrades"})
    assert [int(t["id"]) for t in plain] == seqs
    since = trades[2]["timestamp"]
    assert [int(t["id"]) for t in exchange.fetch_trades("BTC/USDT", since=since)] == seqs[2:]

    candles = exchange.fetch_ohlcv("BTC/USDT", "1m", limit=40)
    assert candles == [
        [
            int(k.open_time.timestamp() * 1000),
            *(float(v) for v in (k.open, k.high, k.low, k.close, k.volume)),
        ]
        for k in selectors.candles(feed.market, "1m", limit=40)
    ]
    assert candles[-1][4] == 102
    hour = candles[0][0] - candles[0][0] % 3600000  # the first trade's hour
    hourly = exchange.fetch_ohlcv("BTC/USDT", "1h", since=hour, limit=5)
    assert (hourly[0][0], hourly[0][1]) == (hour, 100)

    bids_asks = exchange.fetch_bids_asks(["BTC/USDT"])
    assert (bids_asks["BTC/USDT"]["bid"], bids_asks["BTC/USDT"]["ask"]) == (99, 105)
    prices = exchange.fetch_last_prices()
    assert prices["BTC/USDT"]["price"] == 102
    assert not prices["ETH/USDT"]["price"]  # never traded: "0.0", which ccxt reads as None
    assert not any(path.startswith("/unsupported") for path in log), log
    assert {path.split("?")[0] for path in log} >= {
        "/api/v3/exchangeInfo",
        "/api/v3/ticker/24hr",
        "/api/v3/depth",
        "/api/v3/aggTrades",
        "/api/v3/klines",
        "/api/v3/ticker/bookTicker",
        "/api/v3/ticker/price",
        "/api/v3/time",
        "/api/v3/ticker",
        "/api/v3/trades",
    }


@pytest.mark.parametrize("kind", ["binance", "binanceus"])
def test_ccxt_raises_bad_symbol_and_bad_request_not_a_network_error(
    kind: str, live_api: str, feed: TradeFeed
) -> None:
    exchange, _log = client(kind, live_api)
    exchange.load_markets()
    with pytest.raises(ccxt.BadSymbol):
        exchange.public_get_depth({"symbol": "NOPEUSDT"})
    with pytest.raises(ccxt.BadRequest):
        exchange.public_get_klines({"symbol": "BTCUSDT", "interval": "1s"})
    # A section the exchange does not serve: BadRequest (-1020), never ExchangeNotAvailable.
    with pytest.raises(ccxt.BadRequest) as raised:
        exchange.fapipublic_get_exchangeinfo()
    assert not isinstance(raised.value, ccxt.NetworkError)
