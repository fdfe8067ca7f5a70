"""seed_history: real orders between two funded accounts, settled by the real loops at past
times; candles span the history, the ledger and the market data stay clean, a second run
adds nothing, and a bad command line changes nothing. The price walk and the slots are
pure functions of their random generator."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Max, Min
from django.utils import timezone

from accounts.models import Deposit, EntryKind, JournalEntry, User
from markets.models import Candle, DepthLevel, Market
from tests.trading.pipeline_helpers import loops_running, wait_settled
from trading.history import MAKER_EMAIL, PROFILES, TAKER_EMAIL, price_walk, slot_times
from trading.models import Order, Trade
from trading.services.orders import place_order
from trading.validation import OrderSpec

D = Decimal
DAYS, STEP = 2, 240  # twelve slots: a few seconds, yet two calendar days at least


def _state() -> dict[str, Any]:
    return {
        "orders": Order.objects.count(),
        "trades": Trade.objects.count(),
        "entries": JournalEntry.objects.count(),
        "deposits": Deposit.objects.count(),
        "candles": list(Candle.objects.order_by("pk").values_list("pk", "volume")),
        "depth": list(DepthLevel.objects.order_by("pk").values_list("pk", "quantity")),
        "markets": list(Market.objects.order_by("pk").values_list("pk", "last_price", "book_seq")),
    }


def _seed(*argv: str) -> str:
    out = StringIO()
    call_command("seed_history", *argv, stdout=out)
    return out.getvalue()


@pytest.fixture
def demo(redis_db: object) -> None:
    call_command("seed_demo", stdout=StringIO())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
def test_a_history_of_real_trades_in_the_past() -> None:
    before = timezone.now()

    text = _seed("--days", str(DAYS), "--step", str(STEP), "--seed", "4")

    assert "[history] " in text
    for symbol in PROFILES:
        market = Market.objects.get(symbol=symbol)
        trades = Trade.objects.filter(market=market)
        span = trades.aggregate(first=Min("created_at"), last=Max("created_at"))
        assert trades.count() >= DAYS * 24 * 60 // STEP  # at least one trade a slot
        assert before - timedelta(days=DAYS, minutes=STEP) < span["first"]
        assert span["first"] < before - timedelta(days=DAYS - 1)
        assert span["last"] < before
        # Every day and hour with a trade has its candle, and no candle lacks a trade.
        for interval, unit in (("1d", "day"), ("1h", "hour")):
            opens = set(
                Candle.objects.filter(market=market, interval=interval).values_list(
                    "open_time", flat=True
                )
            )
            traded = {
                moment.replace(minute=0, second=0, microsecond=0)
                if unit == "hour"
                else datetime.combine(moment.date(), datetime.min.time(), tzinfo=UTC)
                for moment in trades.values_list("created_at", flat=True)
            }
            assert opens == {t.astimezone(UTC) for t in traded}
        assert len({t.date() for t in trades.values_list("created_at", flat=True)}) >= DAYS
        # The price stays near the demo price (the walk is bent back to where it started).
        assert market.last_price is not None
        low, high = market.last_price * 9 / 10, market.last_price * 11 / 10
        assert all(low < price < high for price in trades.values_list("price", flat=True))
    # The orders and their holds carry the slots' times too.
    orders = Order.objects.filter(user__email__in=[MAKER_EMAIL, TAKER_EMAIL])
    assert orders.aggregate(first=Min("created_at"))["first"] < before - timedelta(days=1)
    holds = JournalEntry.objects.filter(kind=EntryKind.ORDER_HOLD)
    assert holds.aggregate(first=Min("created_at"))["first"] < before - timedelta(days=1)
    # The last slot's quotes rest on the book.
    assert DepthLevel.objects.filter(side="buy").exists()
    assert DepthLevel.objects.filter(side="sell").exists()

    out = StringIO()
    call_command("check_marketdata", "--samples", "50", "--seed", "2", stdout=out)
    assert "market data clean" in out.getvalue()
    call_command("check_ledger", stdout=StringIO())  # raises on any violation


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
def test_a_second_run_adds_nothing() -> None:
    _seed("--days", "1", "--step", "360")
    after_first = _state()

    text = _seed("--days", "3", "--step", "60", "--seed", "9")

    assert _state() == after_first
    assert text.count("has trades already, left as it is") == len(PROFILES)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
def test_a_market_that_has_trades_is_left_alone() -> None:
    btc = Market.objects.get(symbol="BTC-USDT")
    for email, side in (("alice@exchange.localhost", "sell"), ("bob@exchange.localhost", "buy")):
        spec = OrderSpec(side=side, price=D("60000"), quantity=D("0.01"))
        place_order(user=User.objects.get(email=email), market=btc, spec=spec)
    with loops_running([btc.symbol]):
        wait_settled([btc.symbol])
    trade = Trade.objects.get()

    text = _seed("--days", "1", "--step", "360")

    assert list(Trade.objects.filter(market=btc)) == [trade]
    assert "BTC-USDT: has trades already, left as it is" in text
    assert Trade.objects.filter(market__symbol="ETH-USDT").count() >= 4
    assert Trade.objects.filter(market__symbol="USDT-IRT").count() >= 4


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "argv", "message"),
    [
        ("no days", ["--days", "0"], "--days must be between 1 and 366"),
        ("days not a number", ["--days", "two"], "--days must be a whole number"),
        ("no step", ["--step", "0"], "--step must be between 1 and 1440"),
        ("step longer than a day", ["--step", "1441"], "--step must be between 1 and 1440"),
        ("negative seed", ["--seed", "-1"], "--seed must be between 0"),
    ],
)
def test_a_bad_command_line_changes_nothing(_case: str, argv: list[str], message: str) -> None:
    call_command("seed_demo", stdout=StringIO())
    before = _state()

    with pytest.raises(CommandError, match=message):
        _seed(*argv)

    assert _state() == before


@pytest.mark.django_db
def test_without_the_demo_markets_nothing_is_written() -> None:
    before = _state()

    with pytest.raises(CommandError, match=r"demo markets missing .*: run seed_demo"):
        _seed("--days", "1")

    assert _state() == before


def test_the_walk_is_seeded_bounded_and_ends_where_it_started() -> None:
    walk = price_walk(anchor_ticks=6_000_000, slots=500, rng=random.Random(3))

    assert walk == price_walk(anchor_ticks=6_000_000, slots=500, rng=random.Random(3))
    assert walk != price_walk(anchor_ticks=6_000_000, slots=500, rng=random.Random(4))
    assert len(walk) == 500
    assert walk[-1] == 6_000_000
    assert all(isinstance(mid, int) for mid in walk)
    steps = [abs(b - a) for a, b in zip([6_000_000, *walk], walk, strict=False)]
    assert max(steps) < 6_000_000 // 100  # under 1% a slot: inside any order's price band
    assert min(walk) > 5_400_000
    assert max(walk) < 6_600_000


def test_slots_are_ordered_one_per_step_and_in_the_past() -> None:
    end = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)

    slots = slot_times(end=end, days=1, step_minutes=15, rng=random.Random(1))

    assert len(slots) == 96
    assert slots == sorted(slots)
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    for i, moment in enumerate(slots):
        begins = start + i * timedelta(minutes=15)
        assert begins <= moment < begins + timedelta(minutes=15) - timedelta(seconds=14)
    assert slots[-1] < end
