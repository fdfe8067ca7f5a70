"""The Binance-compatible public endpoints (/api/v3 market data, the /sapi stubs, the
/unsupported catch-all) through the live uvicorn, over trades settled by the real
settlement (tests.markets.marketdata_helpers.TradeFeed) and orders matched by the real loops.

Bad input is tried twice: every case through Django's test client (fast, with a check that
nothing changed) and all of them once more through uvicorn (never a 500 there either).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from rest_framework.test import APIClient

from accounts.models import Asset, User
from exchange import clock
from markets import selectors
from markets.models import Market, MarketStatus
from tests.api.conftest import SignedClient, call, make_key
from tests.conftest import ledger_snapshot
from tests.markets.marketdata_helpers import Fill, TradeFeed
from trading.models import Order, Trade

live = pytest.mark.django_db(transaction=True)

MS = timedelta(milliseconds=1)


def ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // MS


def minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


@pytest.fixture
def feed(assets: dict[str, Asset]) -> TradeFeed:
    """BTC-USDT (tick 0.01, lot 0.0001, no band) with a short history: two trades an hour
    and a half ago, three in the last minutes (the 24 h ticker and avgPrice see those), and
    a book of two bids and two asks."""
    feed = TradeFeed.create(assets, "BTC-USDT")
    now = clock.now()
    feed.settle(
        [Fill("100.00", "1", "buy"), Fill("101.00", "2", "sell")], at=now - timedelta(minutes=90)
    )
    feed.settle([Fill("102.00", "0.5", "buy")], at=now - timedelta(minutes=3))
    feed.settle(
        [Fill("104.00", "0.5", "sell"), Fill("103.00", "1", "buy")], at=now - timedelta(minutes=1)
    )
    at = clock.now()
    feed.rest("buy", "99.00", "1.5", at=at)
    feed.rest("buy", "98.50", "2", at=at)
    feed.rest("sell", "105.00", "0.25", at=at)
    feed.rest("sell", "106.00", "3", at=at)
    return feed


def get(base: str, path: str, **query: Any) -> Any:
    text = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items())
    return call(base, "GET", path, query=text)


# ------------------------------------------------------------------ general


@live
def test_ping_and_time(live_api: str, redis_db: Any) -> None:
    assert get(live_api, "/api/v3/ping").body == {}
    before = ms(clock.now())
    answer = get(live_api, "/api/v3/time")
    assert answer.status == 200
    assert set(answer.body) == {"serverTime"}
    assert before - 1000 <= answer.body["serverTime"] <= ms(clock.now()) + 1000


@live
def test_exchange_info_lists_the_listed_markets_with_their_rules(
    live_api: str, redis_db: Any, assets: dict[str, Asset]
) -> None:
    btc = Market.objects.create(
        symbol="BTC-USDT", base=assets["BTC"], quote=assets["USDT"],
        tick_size=Decimal("0.01"), lot_size=Decimal("0.00001"), min_quantity=Decimal("0.0001"),
        max_quantity=Decimal("100"), min_notional=Decimal("5"), price_band_pct=Decimal("10"),
    )  # fmt: skip
    Market.objects.create(
        symbol="ETH-USDT", base=assets["ETH"], quote=assets["USDT"], tick_size=Decimal("0.1"),
        lot_size=Decimal("0.001"), max_quantity=Decimal("1000"), price_band_pct=Decimal("0"),
        status=MarketStatus.CANCEL_ONLY,
    )  # fmt: skip
    Market.objects.create(
        symbol="ETH-BTC", base=assets["ETH"], quote=assets["BTC"], tick_size=Decimal("0.00001"),
        lot_size=Decimal("0.001"), max_quantity=Decimal("1000"), status=MarketStatus.HALTED,
    )  # fmt: skip
    Market.objects.create(
        symbol="SIM-USDT", base=assets["IRT"], quote=assets["USDT"], tick_size=Decimal("1"),
        lot_size=Decimal("1"), max_quantity=Decimal("10"), listed=False,
    )  # fmt: skip
    answer = get(live_api, "/api/v3/exchangeInfo")
    assert answer.status == 200
    body = answer.body
    assert body["timezone"] == "UTC"
    assert abs(body["serverTime"] - ms(clock.now())) < 5000
    assert body["exchangeFilters"] == []
    assert {limit["rateLimitType"] for limit in body["rateLimits"]} == {"REQUEST_WEIGHT", "ORDERS"}
    by_symbol = {s["symbol"]: s for s in body["symbols"]}
    assert list(by_symbol) == ["BTCUSDT", "ETHBTC", "ETHUSDT"]  # SIM-USDT is unlisted
    assert {k: v["status"] for k, v in by_symbol.items()} == {
        "BTCUSDT": "TRADING",
        "ETHBTC": "BREAK",
        "ETHUSDT": "HALT",
    }
    info = by_symbol["BTCUSDT"]
    assert {k: v for k, v in info.items() if k != "filters"} == {
        "symbol": "BTCUSDT",
        "status": "TRADING",
        "baseAsset": "BTC",
        "baseAssetPrecision": 8,
        "quoteAsset": "USDT",
        "quotePrecision": 6,
        "quoteAssetPrecision": 6,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 6,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT"],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": True,
        "amendAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "permissions": ["SPOT"],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }
    assert info["filters"] == [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": "0.01",
            "maxPrice": "999999999999999999.99",
            "tickSize": "0.01",
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": "0.00010",
            "maxQty": "100.00000",
            "stepSize": "0.00001",
        },
        {
            "filterType": "MARKET_LOT_SIZE",
            "minQty": "0.00010",
            "maxQty": "100.00000",
            "stepSize": "0.00001",
        },
        {
            "filterType": "NOTIONAL",
            "minNotional": "5.000000",
            "applyMinToMarket": True,
            "maxNotional": "999999999999999999.999999",
            "applyMaxToMarket": False,
            "avgPriceMins": 0,
        },
        {
            "filterType": "PERCENT_PRICE_BY_SIDE",
            "bidMultiplierUp": "1.1000",
            "bidMultiplierDown": "0.9000",
            "askMultiplierUp": "1.1000",
            "askMultiplierDown": "0.9000",
            "avgPriceMins": 0,
        },
    ]
    # No band, no PERCENT_PRICE_BY_SIDE; a zero minimum quantity is the lot.
    eth = by_symbol["ETHUSDT"]["filters"]
    assert [f["filterType"] for f in eth] == [
        "PRICE_FILTER",
        "LOT_SIZE",
        "MARKET_LOT_SIZE",
        "NOTIONAL",
    ]
    assert eth[1]["minQty"] == "0.001"

    one = get(live_api, "/api/v3/exchangeInfo", symbol="BTCUSDT").body["symbols"]
    assert [s["symbol"] for s in one] == ["BTCUSDT"]
    some = get(live_api, "/api/v3/exchangeInfo", symbols='["ETHBTC","BTCUSDT"]').body["symbols"]
    assert [s["symbol"] for s in some] == ["ETHBTC", "BTCUSDT"]
    halted = get(live_api, "/api/v3/exchangeInfo", symbolStatus="HALT").body["symbols"]
    assert [s["symbol"] for s in halted] == ["ETHUSDT"]
    assert btc.pk  # the market the filters above describe


# ------------------------------------------------------------------ book and trades


@live
def test_depth_is_the_depth_selector(live_api: str, redis_db: Any, feed: TradeFeed) -> None:
    answer = get(live_api, "/api/v3/depth", symbol="BTCUSDT")
    assert answer.status == 200
    book = selectors.depth(feed.market, limit=100)
    assert answer.body == {
        "lastUpdateId": book.last_update_id,
        "bids": [["99.00", "1.5000"], ["98.50", "2.0000"]],
        "asks": [["105.00", "0.2500"], ["106.00", "3.0000"]],
    }
    assert book.last_update_id == Market.objects.get(pk=feed.market.pk).book_seq > 0
    top = get(live_api, "/api/v3/depth", symbol="BTCUSDT", limit=1).body
    assert (top["bids"], top["asks"]) == ([["99.00", "1.5000"]], [["105.00", "0.2500"]])
    # Binance truncates a limit above 5000 to 5000.
    assert get(live_api, "/api/v3/depth", symbol="BTCUSDT", limit=99999).status == 200


@live
def test_trades_historical_and_aggregate(live_api: str, redis_db: Any, feed: TradeFeed) -> None:
    trades = list(Trade.objects.filter(market=feed.market).order_by("seq"))
    assert len(trades) == 5
    recent = get(live_api, "/api/v3/trades", symbol="BTCUSDT").body
    assert [t["id"] for t in recent] == [t.seq for t in trades]
    first = trades[0]
    assert recent[0] == {
        "id": first.seq,
        "price": "100.00",
        "qty": "1.0000",
        "quoteQty": "100.000000",
        "time": ms(first.created_at),
        "isBuyerMaker": False,  # the taker bought
        "isBestMatch": True,
    }
    assert recent[1]["isBuyerMaker"] is True
    last_two = get(live_api, "/api/v3/trades", symbol="BTCUSDT", limit=2).body
    assert [t["id"] for t in last_two] == [trades[3].seq, trades[4].seq]

    history = get(live_api, "/api/v3/historicalTrades", symbol="BTCUSDT", fromId=trades[2].seq)
    assert [t["id"] for t in history.body] == [t.seq for t in trades[2:]]

    agg = get(live_api, "/api/v3/aggTrades", symbol="BTCUSDT").body
    assert agg[0] == {
        "a": first.seq,
        "p": "100.00",
        "q": "1.0000",
        "f": first.seq,
        "l": first.seq,
        "T": ms(first.created_at),
        "m": False,
        "M": True,
    }
    since = ms(trades[2].created_at)
    window = get(
        live_api, "/api/v3/aggTrades", symbol="BTCUSDT", startTime=since, endTime=since + 3600000
    ).body  # ccxt's fetch_trades(since=...) sends exactly this one-hour window
    assert [t["a"] for t in window] == [t.seq for t in trades[2:]]
    from_id = get(live_api, "/api/v3/aggTrades", symbol="BTCUSDT", fromId=trades[3].seq, limit=1)
    assert [t["a"] for t in from_id.body] == [trades[3].seq]


# ------------------------------------------------------------------ klines


@live
def test_klines_are_the_candles_selector_in_binance_arrays(
    live_api: str, redis_db: Any, feed: TradeFeed
) -> None:
    for interval in ("1m", "5m", "1h", "1d", "1w", "1M"):
        answer = get(live_api, "/api/v3/klines", symbol="BTCUSDT", interval=interval, limit=200)
        assert answer.status == 200, (interval, answer.body)
        expected = selectors.candles(feed.market, interval, limit=200)
        assert [row[0] for row in answer.body] == [ms(k.open_time) for k in expected]
        assert answer.body[-1][4] == "103.00"  # the close of the last trade
    trades = list(Trade.objects.filter(market=feed.market).order_by("seq"))
    hourly = get(live_api, "/api/v3/klines", symbol="BTCUSDT", interval="1h").body
    hour = ms(minute(trades[0].created_at).replace(minute=0))
    first = next(row for row in hourly if row[0] == hour)
    assert first[1:6] == ["100.00", "101.00", "100.00", "101.00", "3.0000"]
    assert first[6] == first[0] + 3600000 - 1
    assert first[7:] == ["302.000000", 2, "1.0000", "100.000000", "0"]
    # startTime / endTime select by open time, both inclusive.
    opened = ms(minute(trades[2].created_at))
    picked = get(
        live_api,
        "/api/v3/klines",
        symbol="BTCUSDT",
        interval="1m",
        startTime=opened,
        endTime=opened + 60000,
    ).body
    assert [row[0] for row in picked] == [opened, opened + 60000]
    assert picked[0][8] == 1
    ui = get(live_api, "/api/v3/uiKlines", symbol="BTCUSDT", interval="1m", startTime=opened).body
    assert ui[0] == picked[0]


# ------------------------------------------------------------------ tickers


TICKER_FIELDS = {
    "symbol", "priceChange", "priceChangePercent", "weightedAvgPrice", "prevClosePrice",
    "lastPrice", "bidPrice", "bidQty", "askPrice", "askQty", "openPrice", "highPrice",
    "lowPrice", "volume", "quoteVolume", "openTime", "closeTime", "firstId", "lastId", "count",
}  # fmt: skip


@live
def test_ticker_24hr_object_for_a_symbol_array_otherwise(
    live_api: str, redis_db: Any, feed: TradeFeed, assets: dict[str, Asset]
) -> None:
    Market.objects.create(
        symbol="ETH-USDT", base=assets["ETH"], quote=assets["USDT"], tick_size=Decimal("0.1"),
        lot_size=Decimal("0.001"), max_quantity=Decimal("1000"),
    )  # fmt: skip
    one = get(live_api, "/api/v3/ticker/24hr", symbol="BTCUSDT").body
    assert set(one) == TICKER_FIELDS
    trades = list(Trade.objects.filter(market=feed.market).order_by("seq"))
    assert {k: one[k] for k in TICKER_FIELDS - {"openTime", "closeTime"}} == {
        "symbol": "BTCUSDT",
        "priceChange": "3.00",  # 103 - 100: all five trades are in the 24 h window
        "priceChangePercent": "3.00",
        "weightedAvgPrice": "101.60",  # 508 / 5
        "prevClosePrice": "0.00",
        "lastPrice": "103.00",
        "bidPrice": "99.00",
        "bidQty": "1.5000",
        "askPrice": "105.00",
        "askQty": "0.2500",
        "openPrice": "100.00",
        "highPrice": "104.00",
        "lowPrice": "100.00",
        "volume": "5.0000",
        "quoteVolume": "508.000000",
        "firstId": trades[0].seq,
        "lastId": trades[-1].seq,
        "count": 5,
    }
    assert one["closeTime"] - one["openTime"] >= 24 * 3600 * 1000
    every = get(live_api, "/api/v3/ticker/24hr").body
    assert [t["symbol"] for t in every] == ["BTCUSDT", "ETHUSDT"]
    assert every[1]["count"] == 0
    assert every[1]["lastPrice"] == "0.0"
    some = get(live_api, "/api/v3/ticker/24hr", symbols='["ETHUSDT"]').body
    assert isinstance(some, list)
    assert [t["symbol"] for t in some] == ["ETHUSDT"]
    mini = get(live_api, "/api/v3/ticker/24hr", symbol="BTCUSDT", type="MINI").body
    assert set(mini) == {
        "symbol", "lastPrice", "openPrice", "highPrice", "lowPrice", "volume", "quoteVolume",
        "openTime", "closeTime", "firstId", "lastId", "count",
    }  # fmt: skip
    rolling = get(live_api, "/api/v3/ticker", symbol="BTCUSDT").body
    assert rolling["lastPrice"] == "103.00"
    assert "bidPrice" not in rolling
    assert isinstance(get(live_api, "/api/v3/ticker", symbols='["BTCUSDT"]').body, list)


@live
def test_price_book_ticker_and_average(live_api: str, redis_db: Any, feed: TradeFeed) -> None:
    assert get(live_api, "/api/v3/ticker/price", symbol="BTCUSDT").body == {
        "symbol": "BTCUSDT",
        "price": "103.00",
    }
    assert get(live_api, "/api/v3/ticker/price").body == [{"symbol": "BTCUSDT", "price": "103.00"}]
    assert get(live_api, "/api/v3/ticker/bookTicker", symbol="BTCUSDT").body == {
        "symbol": "BTCUSDT",
        "bidPrice": "99.00",
        "bidQty": "1.5000",
        "askPrice": "105.00",
        "askQty": "0.2500",
    }
    many = get(live_api, "/api/v3/ticker/bookTicker", symbols='["BTCUSDT"]').body
    assert [b["symbol"] for b in many] == ["BTCUSDT"]
    average = get(live_api, "/api/v3/avgPrice", symbol="BTCUSDT").body
    # The three trades of the last minutes: (51 + 52 + 103) / 2 BTC.
    assert (average["mins"], average["price"]) == (5, "103.000000")
    assert abs(average["closeTime"] - ms(clock.now())) < 61000


@live
def test_orders_matched_by_the_loops_show_in_trades_and_depth(
    live_api: str, redis_db: Any, alice: User, bob: User, assets: dict[str, Asset]
) -> None:
    from tests.conftest import fund
    from tests.trading.conftest import make_market
    from tests.trading.pipeline_helpers import loops_running, wait_settled
    from trading.services.orders import place_order
    from trading.validation import OrderSpec

    market = make_market("BTC-USDT", assets["BTC"], assets["USDT"], last_price=Decimal("100"))
    fund(alice, assets["USDT"], "10000")
    fund(bob, assets["BTC"], "10")
    with loops_running([market.symbol]):
        for price in ("99", "100"):
            spec = OrderSpec(side="buy", price=Decimal(price), quantity=Decimal("1"))
            place_order(user=alice, market=market, spec=spec)
        spec = OrderSpec(side="sell", price=Decimal("100"), quantity=Decimal("0.4"))
        place_order(user=bob, market=market, spec=spec)
        wait_settled([market.symbol])
    trades = get(live_api, "/api/v3/trades", symbol="BTCUSDT").body
    assert [(t["price"], t["qty"], t["isBuyerMaker"]) for t in trades] == [
        ("100.00", "0.4000", True)
    ]
    depth = get(live_api, "/api/v3/depth", symbol="BTCUSDT").body
    assert depth["bids"] == [["100.00", "0.6000"], ["99.00", "1.0000"]]
    assert depth["asks"] == []
    assert depth["lastUpdateId"] == selectors.depth(market).last_update_id


# ------------------------------------------------------------------ sapi, catch-all, weight


@live
def test_sapi_stubs_are_signed(
    live_api: str, redis_db: Any, alice: User, assets: dict[str, Asset]
) -> None:
    Market.objects.create(
        symbol="BTC-USDT", base=assets["BTC"], quote=assets["USDT"], tick_size=Decimal("0.01"),
        lot_size=Decimal("0.0001"), max_quantity=Decimal("10"), maker_fee=Decimal("0.001"),
        taker_fee=Decimal("0.002"),
    )  # fmt: skip
    key, secret = make_key(alice, trade=False)
    client = SignedClient(live_api, key, secret)
    assert client.request("GET", "/sapi/v1/spot/delist-schedule").body == []
    fees = client.request("GET", "/sapi/v1/asset/tradeFee")
    assert fees.status == 200
    assert fees.body == [
        {"symbol": "BTCUSDT", "makerCommission": "0.001", "takerCommission": "0.002"}
    ]
    one = client.request("GET", "/sapi/v1/asset/tradeFee", {"symbol": "BTCUSDT"})
    assert one.body == fees.body
    unsigned = call(live_api, "GET", "/sapi/v1/spot/delist-schedule")
    assert unsigned.status == 401
    assert unsigned.code == -2014
    wrong = SignedClient(live_api, key, "not-the-secret").request("GET", "/sapi/v1/asset/tradeFee")
    assert wrong.status == 401
    assert isinstance(wrong.code, int)


@live
def test_unsupported_paths_answer_404_in_binance_shape(live_api: str, redis_db: Any) -> None:
    for method, path in [
        ("GET", "/unsupported/fapi/v1/exchangeInfo"),
        ("GET", "/unsupported"),
        ("POST", "/unsupported/sapi/v1/capital/config/getall"),
        ("DELETE", "/unsupported/x/y/z"),
        ("GET", "/sapi/v1/capital/config/getall"),  # /sapi beyond the two stubs
    ]:
        answer = call(live_api, method, path, body=b'{"a": 1}' if method == "POST" else None,
                      headers={"Content-Type": "application/json"})  # fmt: skip
        assert (answer.status, answer.body) == (
            404,
            {"code": -1020, "msg": "This operation is not supported."},
        ), path


# ------------------------------------------------------------------ bad input


BAD = [
    ("unknown_symbol", "/api/v3/depth", {"symbol": "NOPEUSDT"}, -1121),
    ("symbol_missing", "/api/v3/depth", {}, -1102),
    ("symbol_lowercase_punctuation", "/api/v3/trades", {"symbol": "btc-usdt"}, -1121),
    ("symbol_huge", "/api/v3/klines", {"symbol": "A" * 1000, "interval": "1m"}, -1121),
    ("value_too_long", "/api/v3/depth", {"symbol": "A" * 5000}, -1100),
    ("depth_limit_zero", "/api/v3/depth", {"symbol": "BTCUSDT", "limit": "0"}, -1100),
    ("depth_limit_negative", "/api/v3/depth", {"symbol": "BTCUSDT", "limit": "-5"}, -1100),
    ("depth_limit_text", "/api/v3/depth", {"symbol": "BTCUSDT", "limit": "ten"}, -1100),
    ("depth_limit_exponent", "/api/v3/depth", {"symbol": "BTCUSDT", "limit": "1e3"}, -1100),
    ("depth_limit_huge", "/api/v3/depth", {"symbol": "BTCUSDT", "limit": "9" * 30}, -1100),
    ("depth_limit_arabic_digits", "/api/v3/depth",
     {"symbol": "BTCUSDT", "limit": "\u0661\u0660"}, -1100),
    ("trades_limit_over", "/api/v3/trades", {"symbol": "BTCUSDT", "limit": "1001"}, -1100),
    ("trades_limit_space", "/api/v3/trades", {"symbol": "BTCUSDT", "limit": " 5"}, -1100),
    ("historical_from_id_text", "/api/v3/historicalTrades",
     {"symbol": "BTCUSDT", "fromId": "x"}, -1100),
    ("agg_from_id_negative", "/api/v3/aggTrades", {"symbol": "BTCUSDT", "fromId": "-1"}, -1100),
    ("agg_window_over_an_hour", "/api/v3/aggTrades",
     {"symbol": "BTCUSDT", "startTime": "0", "endTime": "3600001"}, -1127),
    ("agg_from_id_and_time", "/api/v3/aggTrades",
     {"symbol": "BTCUSDT", "fromId": "1", "startTime": "0"}, -1128),
    ("agg_start_after_end", "/api/v3/aggTrades",
     {"symbol": "BTCUSDT", "startTime": "10", "endTime": "5"}, -1023),
    ("klines_interval_missing", "/api/v3/klines", {"symbol": "BTCUSDT"}, -1102),
    ("klines_interval_unknown", "/api/v3/klines", {"symbol": "BTCUSDT", "interval": "2m"}, -1120),
    ("klines_interval_case", "/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1H"}, -1120),
    ("klines_interval_1s", "/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1s"}, -1120),
    ("klines_limit_over", "/api/v3/klines",
     {"symbol": "BTCUSDT", "interval": "1m", "limit": "1001"}, -1100),
    ("klines_start_text", "/api/v3/klines",
     {"symbol": "BTCUSDT", "interval": "1m", "startTime": "yesterday"}, -1100),
    ("klines_start_beyond_year_9999", "/api/v3/klines",
     {"symbol": "BTCUSDT", "interval": "1m", "startTime": "253402300800000"}, -1100),
    ("klines_start_fraction", "/api/v3/klines",
     {"symbol": "BTCUSDT", "interval": "1m", "startTime": "1.5"}, -1100),
    ("klines_start_after_end", "/api/v3/klines",
     {"symbol": "BTCUSDT", "interval": "1m", "startTime": "20", "endTime": "10"}, -1023),
    ("klines_time_zone", "/api/v3/uiKlines",
     {"symbol": "BTCUSDT", "interval": "1m", "timeZone": "+03:30"}, -1100),
    ("symbols_not_json", "/api/v3/ticker/24hr", {"symbols": "BTCUSDT"}, -1100),
    ("symbols_not_array", "/api/v3/ticker/24hr", {"symbols": '{"a": 1}'}, -1100),
    ("symbols_empty", "/api/v3/ticker/price", {"symbols": "[]"}, -1100),
    ("symbols_numbers", "/api/v3/ticker/bookTicker", {"symbols": "[1, 2]"}, -1100),
    ("symbols_duplicated", "/api/v3/ticker/24hr", {"symbols": '["BTCUSDT","BTCUSDT"]'}, -1101),
    ("symbols_unknown", "/api/v3/exchangeInfo", {"symbols": '["BTCUSDT","NOPE"]'}, -1121),
    ("symbol_and_symbols", "/api/v3/ticker/price",
     {"symbol": "BTCUSDT", "symbols": '["BTCUSDT"]'}, -1128),
    ("ticker_type", "/api/v3/ticker/24hr", {"symbol": "BTCUSDT", "type": "HUGE"}, -1100),
    ("rolling_without_symbol", "/api/v3/ticker", {}, -1102),
    ("rolling_window", "/api/v3/ticker", {"symbol": "BTCUSDT", "windowSize": "7d"}, -1100),
    ("avg_price_unknown", "/api/v3/avgPrice", {"symbol": "ETHBTC"}, -1121),
    ("info_status_unknown", "/api/v3/exchangeInfo", {"symbolStatus": "OPEN"}, -1100),
    ("info_status_and_symbol", "/api/v3/exchangeInfo",
     {"symbolStatus": "TRADING", "symbol": "BTCUSDT"}, -1128),
    ("info_permissions", "/api/v3/exchangeInfo", {"permissions": "MARGIN"}, -1100),
]  # fmt: skip
DUPLICATED = [
    ("/api/v3/depth", "symbol=BTCUSDT&symbol=BTCUSDT"),
    ("/api/v3/klines", "symbol=BTCUSDT&interval=1m&interval=1h"),
    ("/api/v3/ticker/24hr", "symbol=BTCUSDT&symbols=%5B%5D&symbols=%5B%5D"),
    ("/api/v3/exchangeInfo", "symbol=BTCUSDT&symbol=ETHUSDT"),
    # More parameters than Django parses (DATA_UPLOAD_MAX_NUMBER_FIELDS): Binance's -1101 too.
    ("/api/v3/depth", "symbol=BTCUSDT&" + "&".join(f"p{i}=1" for i in range(3000))),
]


def _market_for_bad_input(assets: dict[str, Asset]) -> Market:
    return Market.objects.create(
        symbol="BTC-USDT", base=assets["BTC"], quote=assets["USDT"], tick_size=Decimal("0.01"),
        lot_size=Decimal("0.0001"), max_quantity=Decimal("10"),
    )  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(("_case", "path", "query", "code"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_binance_error_and_changes_nothing(
    _case: str, path: str, query: dict[str, str], code: int, assets: dict[str, Asset], redis_db: Any
) -> None:
    _market_for_bad_input(assets)
    before, orders = ledger_snapshot(), Order.objects.count()
    response = APIClient().get(path, query)
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"code", "msg"}
    assert body["code"] == code, body
    assert ledger_snapshot() == before
    assert Order.objects.count() == orders


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "query"), DUPLICATED)
def test_a_duplicated_parameter_is_refused(
    path: str, query: str, assets: dict[str, Asset], redis_db: Any
) -> None:
    _market_for_bad_input(assets)
    response = APIClient().get(f"{path}?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == -1101


@live
def test_bad_input_through_uvicorn_is_never_a_500(
    live_api: str, redis_db: Any, assets: dict[str, Asset]
) -> None:
    _market_for_bad_input(assets)
    before = ledger_snapshot()
    for case, path, query, code in BAD:
        answer = get(live_api, path, **query)
        assert (answer.status, answer.code) == (400, code), (case, answer.body)
    for path, raw in DUPLICATED:
        answer = call(live_api, "GET", path, query=raw)
        assert (answer.status, answer.code) == (400, -1101), path
    # A method the endpoint does not have is a Binance error too.
    answer = call(live_api, "POST", "/api/v3/depth", body=b"symbol=BTCUSDT",
                  headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert answer.status == 405
    assert answer.code == -1000
    assert ledger_snapshot() == before


WEIGHTS = [
    ("/api/v3/ping", "", 1),
    ("/api/v3/exchangeInfo", "", 20),
    ("/api/v3/depth", "symbol=BTCUSDT", 5),
    ("/api/v3/depth", "symbol=BTCUSDT&limit=500", 25),
    ("/api/v3/depth", "symbol=BTCUSDT&limit=1000", 50),
    ("/api/v3/depth", "symbol=BTCUSDT&limit=5000", 250),
    ("/api/v3/trades", "symbol=BTCUSDT", 25),
    ("/api/v3/aggTrades", "symbol=BTCUSDT", 4),
    ("/api/v3/klines", "symbol=BTCUSDT&interval=1m", 2),
    ("/api/v3/ticker/24hr", "symbol=BTCUSDT", 2),
    ("/api/v3/ticker/24hr", "", 80),
    ("/api/v3/ticker", "symbols=%5B%22BTCUSDT%22%5D", 4),
    ("/api/v3/ticker/price", "symbol=BTCUSDT", 2),
    ("/api/v3/ticker/price", "", 4),
    ("/api/v3/ticker/bookTicker", "", 4),
    ("/api/v3/avgPrice", "symbol=BTCUSDT", 2),
    ("/api/v3/depth", "symbol=BTCUSDT&limit=x", 5),  # refused, charged the base weight
]


@live
def test_each_request_is_charged_binances_weight(
    live_api: str, redis_db: Any, assets: dict[str, Asset]
) -> None:
    _market_for_bad_input(assets)

    def weight_of(answer: Any) -> int:
        headers = {name.lower(): value for name, value in answer.headers.items()}
        return int(headers["x-mbx-used-weight-1m"])

    def used() -> int:
        return weight_of(get(live_api, "/api/v3/ping"))

    for path, query, weight in WEIGHTS:
        for _attempt in range(2):  # a minute boundary between the calls restarts the bucket
            before = used()
            after = weight_of(call(live_api, "GET", path, query=query))
            if after > before:
                break
        assert after - before == weight, (path, query)


QUERY_COUNTS = [
    # (path, query, queries with one market, with three): the market reads are one query
    # whatever the number of markets, the data one or two more.
    ("/api/v3/exchangeInfo", "", 1, 1),
    ("/api/v3/depth", "symbol=BTCUSDT", 2, 2),
    ("/api/v3/ticker/24hr", "", 4, 4),
    ("/api/v3/ticker/24hr", "symbols=%5B%22BTCUSDT%22%5D", 4, 4),
    ("/api/v3/ticker/price", "", 1, 1),
    ("/api/v3/ticker/bookTicker", "", 2, 2),
    ("/api/v3/trades", "symbol=BTCUSDT", 2, 2),
    ("/api/v3/klines", "symbol=BTCUSDT&interval=1h", 2, 2),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "query", "one", "three"), QUERY_COUNTS)
def test_a_constant_number_of_queries(
    path: str,
    query: str,
    one: int,
    three: int,
    assets: dict[str, Asset],
    redis_db: Any,
    django_assert_num_queries: Any,
) -> None:
    _market_for_bad_input(assets)
    # A symbol's first request in a process also loads the market's rules into the
    # per-process caches (exchange.api.binance.base.resolve_symbol, markets.selectors);
    # what is counted is every request after it.
    assert APIClient().get(f"{path}?{query}").status_code == 200
    redis_db.flushdb()  # the tickers' one-second cache
    with django_assert_num_queries(one):
        assert APIClient().get(f"{path}?{query}").status_code == 200
    for code in ("ETH", "IRT"):
        Market.objects.create(
            symbol=f"{code}-USDT", base=assets[code], quote=assets["USDT"],
            tick_size=Decimal("0.1"), lot_size=Decimal("0.001"), max_quantity=Decimal("10"),
        )  # fmt: skip
    redis_db.flushdb()  # the tickers' one-second cache
    assert APIClient().get(f"{path}?{query}").status_code == 200
    redis_db.flushdb()
    with django_assert_num_queries(three):
        assert APIClient().get(f"{path}?{query}").status_code == 200
