"""rebuild_candles: the candles recomputed from the trades equal what settlement wrote for a
real pipeline run, a second run changes nothing, a corrupted candle is repaired, and a bad
command line is refused with nothing changed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Asset, User
from exchange import clock
from markets.errors import MarketNotFound
from markets.marketdata.rebuild import rebuild_candles
from markets.models import Candle, Market
from tests.conftest import assert_ledger_clean, fund
from tests.trading.conftest import btc_usdt, redis_db  # noqa: F401 - fixtures used by name
from tests.trading.pipeline_helpers import loops_running, wait_settled
from trading.models import Trade
from trading.services.orders import place_order
from trading.validation import OrderSpec

D = Decimal
DAY0 = date(2026, 3, 1)
# (moment, [(maker side, price, quantity, taker price)]): several trades in one minute and
# in separate batches of one minute, minutes of one hour, hours of one day and two days.
SLOTS = [
    (datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC), [("sell", "50000", "0.5", "50010")]),
    (datetime(2026, 3, 1, 10, 0, 40, tzinfo=UTC), [("buy", "49990", "0.2", "49980")]),
    (datetime(2026, 3, 1, 10, 7, 0, tzinfo=UTC), [("sell", "50100", "0.1", "50100")]),
    (datetime(2026, 3, 1, 13, 30, 0, tzinfo=UTC), [("sell", "50200", "0.3", "50300")]),
    (datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC), [("buy", "50050", "0.4", "50000")]),
]
FIELDS = (
    "interval",
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trade_count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "first_trade_id",
    "last_trade_id",
)


def candles(market: Market) -> list[tuple[Any, ...]]:
    return list(
        Candle.objects.filter(market=market).order_by("interval", "open_time").values_list(*FIELDS)
    )


@pytest.fixture
def traded(alice: User, bob: User, assets: dict[str, Asset], btc_usdt: Market) -> Market:  # noqa: F811
    """btc_usdt with trades settled by the real loops at the SLOTS' (past) times."""
    fund(alice, assets["BTC"], "10")
    fund(alice, assets["USDT"], "500000")
    fund(bob, assets["BTC"], "10")
    fund(bob, assets["USDT"], "500000")
    with loops_running([btc_usdt.symbol]):
        for moment, fills in SLOTS:
            with clock.shifted(moment):
                for side, price, quantity, taker_price in fills:
                    taker_side = "buy" if side == "sell" else "sell"
                    place_order(
                        user=alice,
                        market=btc_usdt,
                        spec=OrderSpec(side=side, price=D(price), quantity=D(quantity)),
                    )
                    # Two takers: two trades, one batch or two, in the same minute.
                    for share in ("0.6", "0.4"):
                        place_order(
                            user=bob,
                            market=btc_usdt,
                            spec=OrderSpec(
                                side=taker_side,
                                price=D(taker_price),
                                quantity=D(quantity) * D(share),
                            ),
                        )
                wait_settled([btc_usdt.symbol])
    return btc_usdt


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db")
def test_rebuild_equals_settlements_candles_and_is_idempotent(traded: Market) -> None:
    written = candles(traded)
    assert Trade.objects.filter(market=traded).count() == 10
    assert {(row[0], row[1].date()) for row in written if row[0] == "1d"} == {
        ("1d", date(2026, 3, 1)),
        ("1d", date(2026, 3, 2)),
    }
    assert sum(1 for row in written if row[0] == "1m") == 4

    assert rebuild_candles(market=traded, start=DAY0) == len(written)
    assert candles(traded) == written
    assert rebuild_candles(market=traded.symbol, start=DAY0) == len(written)
    assert candles(traded) == written
    assert_ledger_clean()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db")
def test_a_corrupted_candle_is_repaired(traded: Market) -> None:
    written = candles(traded)
    hour = Candle.objects.get(
        market=traded, interval="1h", open_time=datetime(2026, 3, 1, 10, tzinfo=UTC)
    )
    Candle.objects.filter(pk=hour.pk).update(high=D("1"), volume=D("99"), close=D("2"))
    Candle.objects.filter(
        market=traded, interval="1m", open_time=datetime(2026, 3, 1, 13, 30, tzinfo=UTC)
    ).delete()
    Candle.objects.create(  # a candle of a minute without a trade
        market=traded,
        interval="1m",
        open_time=datetime(2026, 3, 1, 11, 0, tzinfo=UTC),
        **dict.fromkeys(("open", "high", "low", "close", "volume", "quote_volume"), D("1")),
        **dict.fromkeys(("taker_buy_volume", "taker_buy_quote_volume"), D("0")),
        trade_count=1,
        first_trade_id=1,
        last_trade_id=1,
    )
    assert candles(traded) != written

    rebuild_candles(market=traded, start=DAY0)

    assert candles(traded) == written


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db")
def test_candles_before_the_start_day_are_left_alone(traded: Market) -> None:
    day0 = Candle.objects.filter(market=traded, interval="1d", open_time__date=DAY0)
    day0.update(volume=D("12345"))
    day1 = Candle.objects.filter(market=traded, open_time__date=date(2026, 3, 2))
    day1.update(volume=D("12345"))

    rebuild_candles(market=traded, start=date(2026, 3, 2))

    assert day0.get().volume == D("12345")
    assert not day1.filter(volume=D("12345")).exists()
    assert day1.filter(interval="1d").get().volume == D("0.4")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db")
def test_the_command_rebuilds_every_market_by_default(traded: Market) -> None:
    written = candles(traded)
    Candle.objects.filter(market=traded, interval="1d").update(trade_count=1)
    out = StringIO()

    call_command("rebuild_candles", "--from", "2026-03-01", stdout=out)

    assert candles(traded) == written
    assert f"{traded.symbol}: {len(written)} candle(s) rebuilt from 2026-03-01" in out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "argv", "message"),
    [
        ("unknown market", ["--market", "BTC-USDT", "--market", "NOPE-USDT"], "unknown market"),
        ("malformed day", ["--market", "BTC-USDT", "--from", "2026-13-01"], "YYYY-MM-DD"),
        ("not a day", ["--from", "yesterday"], "YYYY-MM-DD"),
    ],
)
def test_a_bad_command_line_changes_nothing(
    _case: str,
    argv: list[str],
    message: str,
    btc_usdt: Market,  # noqa: F811
) -> None:
    Candle.objects.create(  # a wrong candle the rebuild would delete
        market=btc_usdt,
        interval="1m",
        open_time=datetime(2026, 3, 1, 11, 0, tzinfo=UTC),
        **dict.fromkeys(("open", "high", "low", "close", "volume", "quote_volume"), D("1")),
        **dict.fromkeys(("taker_buy_volume", "taker_buy_quote_volume"), D("0")),
        trade_count=1,
        first_trade_id=1,
        last_trade_id=1,
    )
    before = candles(btc_usdt)
    if "--from" not in argv:
        argv = [*argv, "--from", "2026-03-01"]

    with pytest.raises(CommandError, match=message):
        call_command("rebuild_candles", *argv, stdout=StringIO())

    assert candles(btc_usdt) == before


@pytest.mark.django_db
def test_an_unknown_symbol_is_refused() -> None:
    with pytest.raises(MarketNotFound):
        rebuild_candles(market="NOPE-USDT", start=DAY0)
