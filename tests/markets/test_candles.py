"""candles(): every interval equals an independent aggregation of the trades table, with
Binance's alignment, gap filling and start/end/limit semantics; redelivered batches change
no candle; every bad input is refused with its code and field and changes nothing.

The oracle below shares no code with markets.marketdata: it buckets the settled Trade rows
by their own timestamps with integer epoch arithmetic (weeks from Monday 1970-01-05, months
by the calendar), takes open and close by trade id and fills tradeless buckets with the
previous kline's close.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Asset
from exchange import clock
from markets.errors import MarketNotFound
from markets.marketdata.candles import Kline, candles
from markets.marketdata.errors import InvalidInterval, InvalidLimit, InvalidRange
from markets.marketdata.intervals import INTERVALS
from markets.models import Candle, Market
from tests.markets.marketdata_helpers import (
    INTERVAL_NAMES,
    Fill,
    TradeFeed,
    expected_klines,
    oracle_bucket,
    oracle_step,
)
from trading.models import Trade

pytestmark = pytest.mark.django_db

D = Decimal
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)  # a Sunday
EARLY = datetime(2000, 1, 1, tzinfo=UTC)
# "Now" for the comparisons: after every trade, 30 s from the nearest bucket edge, so the
# current interval cannot change between the oracle's clock reading and candles()'s.
PIN = datetime(2027, 8, 10, 12, 0, 30, tzinfo=UTC)


def stored(market: Market) -> list[tuple[Any, ...]]:
    return list(
        Candle.objects.filter(market=market)
        .order_by("interval", "open_time")
        .values_list(*(f.name for f in Candle._meta.fields if f.name != "id"))
    )


# --- alignment ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "moment", "opens"),
    [
        # Binance's 3d kline and 1d kline of 2018-06-27 opened together (day 17709 = 3 x 5903).
        ("3d", datetime(2018, 6, 29, 23, 59, tzinfo=UTC), datetime(2018, 6, 27, tzinfo=UTC)),
        # Binance's documented 1w example: open 2017-07-03 (a Monday), close 07-09 23:59:59.999.
        ("1w", datetime(2017, 7, 9, 23, 59, tzinfo=UTC), datetime(2017, 7, 3, tzinfo=UTC)),
        ("1w", datetime(2017, 7, 10, tzinfo=UTC), datetime(2017, 7, 10, tzinfo=UTC)),
        ("1M", datetime(2024, 2, 29, 23, 59, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)),
        ("12h", datetime(2026, 3, 1, 11, 59, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        ("4h", datetime(2026, 3, 1, 11, 59, tzinfo=UTC), datetime(2026, 3, 1, 8, tzinfo=UTC)),
        (
            "15m",
            datetime(2026, 3, 1, 11, 44, 59, tzinfo=UTC),
            datetime(2026, 3, 1, 11, 30, tzinfo=UTC),
        ),
    ],
)
def test_buckets_open_where_binance_opens_them(
    name: str, moment: datetime, opens: datetime
) -> None:
    assert INTERVALS[name].floor(moment) == opens
    assert oracle_bucket(name, moment) == opens


def test_close_time_is_the_next_open_minus_a_millisecond() -> None:
    assert INTERVALS["1w"].close_time(datetime(2017, 7, 3, tzinfo=UTC)) == datetime(
        2017, 7, 9, 23, 59, 59, 999000, tzinfo=UTC
    )
    assert INTERVALS["1M"].close_time(datetime(2026, 2, 1, tzinfo=UTC)) == datetime(
        2026, 2, 28, 23, 59, 59, 999000, tzinfo=UTC
    )
    assert INTERVALS["1M"].close_time(datetime(2026, 12, 1, tzinfo=UTC)) == datetime(
        2026, 12, 31, 23, 59, 59, 999000, tzinfo=UTC
    )


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.integers(0, 2_000_000_000), min_size=1, max_size=20))
def test_sql_buckets_equal_the_python_ones(db: None, seconds: list[int]) -> None:
    moments = [datetime.fromtimestamp(s, tz=UTC) for s in seconds]
    with connection.cursor() as cursor:
        for name, spec in INTERVALS.items():
            cursor.execute(
                f"SELECT {spec.sql_bucket('t')} FROM unnest(%s::timestamptz[]) AS u(t)",  # noqa: S608 - constants
                [moments],
            )
            assert [row[0] for row in cursor.fetchall()] == [
                oracle_bucket(name, m) for m in moments
            ]
            assert [spec.floor(m) for m in moments] == [oracle_bucket(name, m) for m in moments]


# --- random histories ---------------------------------------------------------------------

fills = st.builds(
    Fill,
    price=st.integers(1, 200_000).map(lambda n: D(n) * D("0.01")),
    quantity=st.integers(1, 50_000).map(lambda n: D(n) * D("0.0001")),
    taker_side=st.sampled_from(["buy", "sell"]),
)
offsets = st.one_of(
    st.integers(-600, 3600),  # minutes apart
    st.integers(-2 * 86400, 4 * 86400),  # days
    st.integers(-30 * 86400, 120 * 86400),  # months
)
bases = st.sampled_from(
    [
        datetime(2026, 2, 28, 23, 58, 30, tzinfo=UTC),  # a month, week and 3d edge nearby
        datetime(2025, 12, 29, 0, 0, 10, tzinfo=UTC),  # a Monday
        datetime(2025, 6, 14, 11, 59, 50, tzinfo=UTC),
    ]
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    base=bases,
    batches=st.lists(
        st.tuples(offsets, st.lists(fills, min_size=1, max_size=4)), min_size=1, max_size=5
    ),
    limit=st.integers(1, 1000),
    tail=st.integers(0, 400 * 86400),
)
def test_every_interval_equals_the_trades_aggregated(
    assets: dict[str, Asset],
    base: datetime,
    batches: list[tuple[int, list[Fill]]],
    limit: int,
    tail: int,
) -> None:
    feed = TradeFeed.create(assets)
    for offset, batch in batches:  # the times jump back and forth between batches
        feed.settle(batch, at=base + timedelta(seconds=offset))
    times = sorted(Trade.objects.filter(market=feed.market).values_list("created_at", flat=True))
    end = times[-1] + timedelta(seconds=tail)
    for name in INTERVAL_NAMES:
        queries: list[dict[str, Any]] = [
            {"start": EARLY, "limit": 1000},
            {"end": end, "limit": 1000},
            {"end": end, "limit": limit},
        ]
        for moment in times:  # around every batch: an unaligned start, an end at the trade
            opened = oracle_bucket(name, moment)
            queries.append(
                {"start": oracle_step(name, opened, -2) + timedelta(seconds=1), "end": moment}
            )
            queries.append({"start": moment, "limit": limit})
        for query in queries:
            with clock.shifted(PIN):
                now = clock.now()
                got = candles(feed.market, name, **query)
            assert got == expected_klines(feed.market, name, now=now, **query), (name, query)


# --- redelivery ---------------------------------------------------------------------------


def test_redelivered_and_overlapping_batches_change_no_candle(assets: dict[str, Asset]) -> None:
    feed = TradeFeed.create(assets)
    first = feed.prepare([Fill("100", "1", "buy"), Fill("101", "0.5", "sell")])
    assert feed.deliver([first], at=T0 + timedelta(seconds=5)).applied == 6
    after_first = stored(feed.market)

    again = feed.deliver([first], at=T0 + timedelta(hours=3))  # another time, same seqs
    assert (again.applied, again.duplicates) == (0, 6)
    assert stored(feed.market) == after_first

    second = feed.prepare([Fill("99", "2", "sell")])
    overlap = feed.deliver([first, second], at=T0 + timedelta(minutes=2))
    assert (overlap.applied, overlap.duplicates) == (3, 6)
    after_second = stored(feed.market)
    assert after_second != after_first
    assert feed.deliver([first, second, second], at=T0 + timedelta(days=2)).applied == 0
    assert stored(feed.market) == after_second
    for name in INTERVAL_NAMES:
        with clock.shifted(PIN):
            now = clock.now()
            got = candles(feed.market, name, start=EARLY, limit=5)
        assert got == expected_klines(feed.market, name, start=EARLY, limit=5, now=now)
    assert Trade.objects.filter(market=feed.market).count() == 3


# --- gap filling, start/end/limit, the current interval ------------------------------------


@pytest.fixture
def history(assets: dict[str, Asset]) -> TradeFeed:
    """Trades at 10:00:30 (100, then 102) and 10:05:10 (105) on T0; nothing else."""
    feed = TradeFeed.create(assets)
    feed.settle(
        [Fill("100", "1", "buy"), Fill("102", "0.5", "sell")], at=T0 + timedelta(seconds=30)
    )
    feed.settle([Fill("105", "2", "buy")], at=T0 + timedelta(minutes=5, seconds=10))
    return feed


def opens(klines: list[Kline]) -> list[str]:
    return [f"{k.open_time:%H:%M}" for k in klines]


def test_tradeless_intervals_repeat_the_previous_close_with_zero_volume(history: TradeFeed) -> None:
    got = candles(
        history.market, "1m", start=T0 - timedelta(minutes=5), end=T0 + timedelta(minutes=6)
    )

    assert opens(got) == ["10:00", "10:01", "10:02", "10:03", "10:04", "10:05", "10:06"]
    first, gap, traded = got[0], got[1], got[5]
    assert (first.open, first.high, first.low, first.close) == (
        D("100.00"),
        D("102.00"),
        D("100.00"),
        D("102.00"),
    )
    assert (first.volume, first.quote_volume, first.trade_count) == (
        D("1.5000"),
        D("151.000000"),
        2,
    )
    assert (first.taker_buy_volume, first.taker_buy_quote_volume) == (D("1.0000"), D("100.000000"))
    assert (first.first_trade_id, first.last_trade_id) == (3, 6)
    assert gap == Kline(
        open_time=T0 + timedelta(minutes=1),
        close_time=T0 + timedelta(minutes=2, milliseconds=-1),
        open=D("102.00"),
        high=D("102.00"),
        low=D("102.00"),
        close=D("102.00"),
        volume=D("0.0000"),
        quote_volume=D("0.000000"),
        trade_count=0,
        taker_buy_volume=D("0.0000"),
        taker_buy_quote_volume=D("0.000000"),
        first_trade_id=None,
        last_trade_id=None,
    )
    assert (traded.open, traded.trade_count, traded.first_trade_id) == (D("105.00"), 1, 9)
    assert (got[6].close, got[6].trade_count) == (D("105.00"), 0)


def test_nothing_before_the_first_trade(history: TradeFeed) -> None:
    assert candles(history.market, "1m", end=T0 - timedelta(seconds=1)) == []
    assert opens(candles(history.market, "1m", end=T0 + timedelta(minutes=1), limit=10)) == [
        "10:00",
        "10:01",
    ]
    assert opens(candles(history.market, "1h", start=EARLY, limit=3)) == [
        "10:00",
        "11:00",
        "12:00",
    ]
    days = candles(history.market, "1d", start=EARLY, limit=2)
    assert [k.open_time for k in days] == [T0.replace(hour=0), T0.replace(day=2, hour=0)]
    assert (days[0].trade_count, days[1].trade_count, days[1].open) == (3, 0, D("105.00"))


def test_start_is_inclusive_of_an_open_and_rounds_up_otherwise(history: TradeFeed) -> None:
    at_open = candles(history.market, "1m", start=T0 + timedelta(minutes=2), limit=3)
    unaligned = candles(
        history.market, "1m", start=T0 + timedelta(minutes=2, milliseconds=1), limit=3
    )

    assert opens(at_open) == ["10:02", "10:03", "10:04"]
    assert opens(unaligned) == ["10:03", "10:04", "10:05"]
    assert at_open[0].close == D("102.00")  # filled from the kline before start


def test_end_alone_gives_the_latest_limit_opening_at_or_before_it(history: TradeFeed) -> None:
    got = candles(history.market, "1m", end=T0 + timedelta(minutes=4, seconds=59), limit=3)
    assert opens(got) == ["10:02", "10:03", "10:04"]
    assert opens(candles(history.market, "1m", end=T0 + timedelta(minutes=5), limit=1)) == ["10:05"]


def test_start_and_end_bound_both_sides_and_limit_counts_from_start(history: TradeFeed) -> None:
    start, end = T0 + timedelta(minutes=1), T0 + timedelta(minutes=4)
    assert opens(candles(history.market, "1m", start=start, end=end)) == [
        "10:01",
        "10:02",
        "10:03",
        "10:04",
    ]
    assert opens(candles(history.market, "1m", start=start, end=end, limit=2)) == ["10:01", "10:02"]
    assert candles(history.market, "1m", start=end, end=end) == candles(
        history.market, "1m", start=end, limit=1
    )


def test_without_bounds_the_latest_limit_up_to_the_open_interval(history: TradeFeed) -> None:
    with clock.shifted(T0 + timedelta(minutes=7, seconds=30)):
        got = candles(history.market, "1m", limit=4)
        default = candles(history.market, "3m")
        later = candles(history.market, "1m", start=T0 + timedelta(minutes=8))
    assert opens(got) == ["10:04", "10:05", "10:06", "10:07"]
    assert got[-1].close_time == T0 + timedelta(minutes=8, milliseconds=-1)  # still open
    assert opens(default) == ["10:00", "10:03", "10:06"]  # none before the first trade
    assert later == []  # opens after now: not yet


def test_the_default_limit_is_500_and_1000_the_most(history: TradeFeed) -> None:
    with clock.shifted(T0 + timedelta(days=2)):
        assert len(candles(history.market, "1m")) == 500
        assert len(candles(history.market, "1m", limit=1000)) == 1000
        latest = candles(history.market, "1m", limit=1000)[-1]
    assert latest.open_time == T0 + timedelta(days=2)
    assert latest.close == D("105.00")


def test_a_symbol_names_the_market_and_intervals_are_case_sensitive(history: TradeFeed) -> None:
    minutes = candles(history.market.symbol.lower(), "1m", start=T0, limit=2)
    months = candles(history.market, "1M", start=EARLY)
    assert minutes == candles(history.market, "1m", start=T0, limit=2)
    assert months[0].open_time == datetime(2026, 3, 1, tzinfo=UTC)
    assert months[0].trade_count == 3


# --- refusals -----------------------------------------------------------------------------

NAIVE = datetime(2026, 3, 1, 10, 0)  # noqa: DTZ001 - the point: no zone


@pytest.mark.parametrize(
    ("kwargs", "error", "code", "field"),
    [
        ({"market": "NOPE-USDT"}, MarketNotFound, "market_not_found", "market"),
        ({"market": 42}, MarketNotFound, "market_not_found", "market"),
        ({"interval": "1s"}, InvalidInterval, "interval_invalid", "interval"),
        ({"interval": "1H"}, InvalidInterval, "interval_invalid", "interval"),
        ({"interval": "2m"}, InvalidInterval, "interval_invalid", "interval"),
        ({"interval": None}, InvalidInterval, "interval_invalid", "interval"),
        ({"limit": 0}, InvalidLimit, "limit_invalid", "limit"),
        ({"limit": 1001}, InvalidLimit, "limit_invalid", "limit"),
        ({"limit": "5"}, InvalidLimit, "limit_invalid", "limit"),
        ({"limit": 5.0}, InvalidLimit, "limit_invalid", "limit"),
        ({"limit": True}, InvalidLimit, "limit_invalid", "limit"),
        ({"start": NAIVE}, InvalidRange, "range_invalid", "start"),
        ({"end": NAIVE}, InvalidRange, "range_invalid", "end"),
        ({"start": "2026-03-01T10:00:00Z"}, InvalidRange, "range_invalid", "start"),
        ({"end": date(2026, 3, 1)}, InvalidRange, "range_invalid", "end"),
        ({"end": 1772359200000}, InvalidRange, "range_invalid", "end"),
        ({"start": T0 + timedelta(seconds=1), "end": T0}, InvalidRange, "range_invalid", "start"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    history: TradeFeed, kwargs: dict[str, Any], error: type[Exception], code: str, field: str
) -> None:
    args = {"market": history.market, "interval": "1m", **kwargs}
    before = stored(history.market), Candle.objects.count()

    with pytest.raises(error) as refused:
        candles(**args)

    assert (refused.value.code, refused.value.field) == (code, field)  # type: ignore[attr-defined]
    assert (stored(history.market), Candle.objects.count()) == before
