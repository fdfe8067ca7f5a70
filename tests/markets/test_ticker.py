"""tickers(): the rolling 24 h window equals the raw trades aggregated over the same minute-
granular window; markets without trades; the best bid and ask; every market in a constant
number of queries; the cache never serves a value older than a second; refusals change
nothing (no candle, no cache key)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from typing import Any

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.models import Asset
from exchange import clock
from markets.errors import MarketNotFound
from markets.marketdata.ticker import Ticker, ticker, tickers
from markets.models import Candle, Market
from tests.markets.marketdata_helpers import Fill, TradeFeed
from trading.models import Trade

pytestmark = pytest.mark.django_db

D = Decimal
NOW = datetime(2026, 3, 2, 10, 17, 40, tzinfo=UTC)  # the window opens 2026-03-01 10:17:00
DAY = timedelta(hours=24)
EXACT = Context(prec=100)


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[redis.Redis]:
    """Django's cache is this suite's Redis database (never db 0), empty before and after."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    assert client.connection_pool.connection_kwargs.get("db", 0) != 0, settings.REDIS_URL
    cache.clear()
    yield client
    cache.clear()


def cache_keys(client: redis.Redis) -> list[bytes]:
    return sorted(k for k in client.keys("*") if b"marketdata:tickers:" in k)


def expected(market: Market, got: Ticker) -> Ticker:
    """The ticker computed from the Trade rows in [floor_to_minute(now) - 24 h, now]."""
    market.refresh_from_db()
    now = got.close_time
    start = now.replace(second=0, microsecond=0) - DAY
    rows = list(
        Trade.objects.filter(market=market)
        .order_by("seq")
        .values_list("seq", "price", "quantity", "quote_quantity", "created_at")
    )
    inside = [r for r in rows if start <= r[4] <= now]
    before = [r for r in rows if r[4] < start]
    prev = D(0)
    if before:  # the last minute before the window, its last trade by id
        minute = max(r[4].replace(second=0, microsecond=0) for r in before)
        prev = max(r for r in before if r[4].replace(second=0, microsecond=0) == minute)[1]
    if inside:
        open_, last = inside[0][1], inside[-1][1]
        high, low = max(r[1] for r in inside), min(r[1] for r in inside)
        volume = sum((r[2] for r in inside), D(0))
        quote = sum((r[3] for r in inside), D(0))
        ids = (inside[0][0], inside[-1][0])
    else:
        open_ = last = high = low = market.last_price or D(0)
        volume = quote = D(0)
        ids = (-1, -1)
    change = last - open_
    return Ticker(
        symbol=market.symbol,
        open_time=start,
        close_time=now,
        open=open_.quantize(D("0.01")),
        high=high.quantize(D("0.01")),
        low=low.quantize(D("0.01")),
        last=last.quantize(D("0.01")),
        prev_close=prev.quantize(D("0.01")),
        volume=volume.quantize(D("0.0001")),
        quote_volume=quote.quantize(D("0.000001")),
        change=change.quantize(D("0.01")),
        change_percent=(
            EXACT.divide(change * 100, open_).quantize(D("0.01")) if open_ else D("0.00")
        ),
        weighted_average=(EXACT.divide(quote, volume).quantize(D("0.01")) if volume else D("0.00")),
        trade_count=len(inside),
        first_trade_id=ids[0],
        last_trade_id=ids[1],
        bid_price=None,
        bid_quantity=None,
        ask_price=None,
        ask_quantity=None,
    )


fills = st.builds(
    Fill,
    price=st.integers(1, 100_000).map(lambda n: D(n) * D("0.01")),
    quantity=st.integers(1, 50_000).map(lambda n: D(n) * D("0.0001")),
    taker_side=st.sampled_from(["buy", "sell"]),
)
# Seconds before NOW: around the window's start edge (24 h 40 s), inside, and just before now.
ages = st.one_of(
    st.integers(86440 - 90, 86440 + 90),
    st.integers(1, 27 * 3600),
    st.integers(1, 90),
)


@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=st.lists(st.tuples(ages, st.lists(fills, min_size=1, max_size=3)), max_size=5))
def test_the_window_equals_the_raw_trades_aggregated(
    assets: dict[str, Asset], batches: list[tuple[int, list[Fill]]]
) -> None:
    feed = TradeFeed.create(assets)
    for age, batch in batches:
        feed.settle(batch, at=NOW - timedelta(seconds=age))

    with clock.shifted(NOW):
        got = ticker(feed.market)

    assert got == expected(feed.market, got)
    assert got.open_time == datetime(2026, 3, 1, 10, 17, tzinfo=UTC)


def test_the_window_is_minute_granular_at_its_start(assets: dict[str, Asset]) -> None:
    feed = TradeFeed.create(assets)
    feed.settle([Fill("90", "1", "buy")], at=NOW - DAY - timedelta(seconds=41))  # 10:16:59
    feed.settle([Fill("100", "1", "sell")], at=NOW - DAY - timedelta(seconds=39))  # 10:17:01
    feed.settle([Fill("110", "2", "buy")], at=NOW - timedelta(minutes=20))  # an hour's row

    with clock.shifted(NOW):
        got = ticker(feed.market.symbol)

    assert (got.open, got.high, got.low, got.last, got.prev_close) == (
        D("100.00"),
        D("110.00"),
        D("100.00"),
        D("110.00"),
        D("90.00"),
    )
    assert (got.volume, got.quote_volume, got.trade_count) == (D("3.0000"), D("320.000000"), 2)
    assert (got.change, got.change_percent, got.weighted_average) == (
        D("10.00"),
        D("10.00"),
        D("106.67"),
    )
    assert (got.first_trade_id, got.last_trade_id) == (6, 9)


def test_a_market_without_trades_in_the_window(assets: dict[str, Asset]) -> None:
    never = TradeFeed.create(assets, last_price=D("50000")).market
    quiet = TradeFeed.create(assets)
    quiet.settle([Fill("77.7", "1", "buy")], at=NOW - DAY - timedelta(hours=3))

    with clock.shifted(NOW):
        got = {t.symbol: t for t in tickers([never, quiet.market])}

    idle = got[never.symbol]
    assert (idle.open, idle.high, idle.low, idle.last) == (D("50000.00"),) * 4
    assert (idle.volume, idle.quote_volume, idle.trade_count) == (D("0.0000"), D("0.000000"), 0)
    assert (idle.change, idle.change_percent, idle.weighted_average) == (D("0.00"),) * 3
    assert (idle.first_trade_id, idle.last_trade_id, idle.prev_close) == (-1, -1, D("0.00"))
    stale = got[quiet.market.symbol]
    assert (stale.last, stale.prev_close, stale.trade_count) == (D("77.70"), D("77.70"), 0)
    assert stale == expected(quiet.market, stale)


def test_best_bid_and_ask_come_from_the_book(assets: dict[str, Asset]) -> None:
    feed = TradeFeed.create(assets)
    feed.settle([Fill("100", "1", "buy")], at=NOW - timedelta(hours=1))
    feed.rest("buy", "95", "1.5", at=NOW - timedelta(minutes=5))
    feed.rest("buy", "96", "0.5", at=NOW - timedelta(minutes=4))
    feed.rest("sell", "104", "2", at=NOW - timedelta(minutes=3))

    with clock.shifted(NOW):
        got = ticker(feed.market)

    assert (got.bid_price, got.bid_quantity) == (D("96.00"), D("0.5000"))
    assert (got.ask_price, got.ask_quantity) == (D("104.00"), D("2.0000"))
    assert got.trade_count == 1


def test_every_market_in_a_constant_number_of_queries(assets: dict[str, Asset]) -> None:
    feeds = [TradeFeed.create(assets) for _ in range(5)]
    for n, feed in enumerate(feeds):
        feed.settle([Fill(str(100 + n), "1", "buy")], at=NOW - timedelta(hours=n + 1))
    hidden = TradeFeed.create(assets, listed=False).market
    counts = []
    with clock.shifted(NOW):
        for wanted in (feeds[:1], feeds[:2], feeds):
            with CaptureQueriesContext(connection) as queries:
                got = tickers([f.market for f in wanted])
            counts.append(len(queries))
            assert [t.trade_count for t in got] == [1] * len(wanted)
        with CaptureQueriesContext(connection) as queries:
            listed = tickers()
    assert counts == [3, 3, 3]
    assert len(queries) == 3
    symbols = [t.symbol for t in listed]
    assert symbols == sorted(f.market.symbol for f in feeds)
    assert hidden.symbol not in symbols


def test_a_new_trade_shows_within_a_second(assets: dict[str, Asset]) -> None:
    feed = TradeFeed.create(assets)
    feed.settle([Fill("100", "1", "buy")], at=clock.now())
    before = ticker(feed.market)
    feed.settle([Fill("101", "1", "sell")], at=clock.now())

    time.sleep(1.1)
    after = ticker(feed.market)

    assert (before.trade_count, after.trade_count, after.last) == (1, 2, D("101.00"))


def test_the_cache_never_serves_a_value_older_than_a_second_by_the_clock(
    assets: dict[str, Asset], fresh_cache: redis.Redis
) -> None:
    feed = TradeFeed.create(assets)
    feed.settle([Fill("100", "1", "buy")], at=NOW - timedelta(minutes=1))
    with clock.shifted(NOW):
        first = ticker(feed.market)
    feed.settle([Fill("101", "1", "sell")], at=NOW)

    # Redis may still hold the first value; by the clock it is 1.5 s old, or from the future.
    with clock.shifted(NOW + timedelta(seconds=1.5)):
        later = ticker(feed.market)
    with clock.shifted(NOW - timedelta(seconds=10)):
        earlier = ticker(feed.market)

    assert (first.trade_count, later.trade_count, later.last) == (1, 2, D("101.00"))
    assert later.close_time >= NOW + timedelta(seconds=1.5)
    assert NOW - timedelta(seconds=10) <= earlier.close_time < NOW
    assert len(cache_keys(fresh_cache)) == 1


def test_the_cache_is_keyed_by_the_set_of_markets(
    assets: dict[str, Asset], fresh_cache: redis.Redis
) -> None:
    a, b = TradeFeed.create(assets).market, TradeFeed.create(assets).market
    with clock.shifted(NOW):
        pair = tickers([a, b])
        keys = cache_keys(fresh_cache)
        tickers([b.symbol.lower(), a, b])
        same = cache_keys(fresh_cache)
        tickers([a])
    stored_at, value = cache.get(keys[0].decode().split(":", 2)[2])

    assert len(keys) == 1
    assert same == keys
    assert len(cache_keys(fresh_cache)) == 2
    assert value == pair
    assert stored_at == pair[0].close_time


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda m: ticker("NOPE-USDT"), "market"),
        (lambda m: ticker(None), "market"),
        (lambda m: ticker(m.pk), "market"),
        (lambda m: tickers([m, "NOPE-USDT"]), "markets"),
        (lambda m: tickers([m.symbol, 42]), "markets"),
        (lambda m: tickers([""]), "markets"),
        (lambda m: tickers(m.symbol), "markets"),
        (lambda m: tickers(m), "markets"),
        (lambda m: tickers(7), "markets"),
    ],
)
def test_an_unknown_market_is_refused_and_changes_nothing(
    assets: dict[str, Asset], fresh_cache: redis.Redis, call: Any, field: str
) -> None:
    feed = TradeFeed.create(assets)
    feed.settle([Fill("100", "1", "buy")], at=NOW - timedelta(minutes=1))
    candles_before = list(Candle.objects.order_by("pk").values_list())

    with pytest.raises(MarketNotFound) as refused, clock.shifted(NOW):
        call(feed.market)

    assert (refused.value.code, refused.value.field) == ("market_not_found", field)
    assert cache_keys(fresh_cache) == []
    assert list(Candle.objects.order_by("pk").values_list()) == candles_before
