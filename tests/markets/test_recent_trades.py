"""Recent trades: the latest, from a trade id, and by time, from trades real settlement wrote.

Each trade here is a resting order and a crossing one through place_order, the engine and
settle_batch in-process (book_client.InProcessPipeline); `exchange.clock.shifted` stamps a
batch at a chosen time, as seed_history does.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from accounts.models import Asset, User
from exchange import clock
from markets.errors import MarketNotFound
from markets.marketdata.errors import InvalidLimit, InvalidRange, InvalidTradeId
from markets.models import Market
from markets.selectors import recent_trades
from tests.conftest import fund, make_user
from tests.markets.book_client import InProcessPipeline
from tests.trading.conftest import make_market
from tests.trading.conftest import redis_db as redis_db  # the fixture, for this folder
from trading.models import SettlementCursor, Trade
from trading.services.orders import place_order
from trading.validation import OrderSpec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

D = Decimal
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def market(assets: dict[str, Asset]) -> Market:
    return make_market(
        "T-USDT",
        assets["BTC"],
        assets["USDT"],
        lot_size=D("0.001"),
        min_quantity=D("0.001"),
        min_notional=D("0"),
        last_price=D("100"),
    )


@pytest.fixture
def pair(assets: dict[str, Asset]) -> tuple[User, User]:
    users = (make_user("maker@example.com"), make_user("taker@example.com"))
    for user in users:
        fund(user, assets["BTC"], "1000")
        fund(user, assets["USDT"], "1000000")
    return users


class _Trades:
    """Makes one trade per call: a resting order, then a taker crossing it."""

    def __init__(self, market: Market, pair: tuple[User, User]) -> None:
        self.market, self.maker, self.taker = market, *pair
        self.pipeline = InProcessPipeline(market)

    def make(
        self, taker_side: str, price: str, quantity: str, *, count: int = 1, at: Any = None
    ) -> list[int]:
        maker_side = "sell" if taker_side == "buy" else "buy"
        for _ in range(count):
            for user, side in ((self.maker, maker_side), (self.taker, taker_side)):
                spec = OrderSpec(side=side, price=D(price), quantity=D(quantity))
                place_order(user=user, market=self.market, spec=spec)
        with clock.shifted(at) if at is not None else contextlib.nullcontext():
            self.pipeline.drain()  # one batch: every trade of it has the batch's time
        return list(
            Trade.objects.filter(market=self.market).order_by("-seq").values_list("seq", flat=True)
        )[:count][::-1]


@pytest.fixture
def trades(market: Market, pair: tuple[User, User]) -> _Trades:
    return _Trades(market, pair)


def test_the_latest_trades_come_ascending_with_exact_fields(
    market: Market, trades: _Trades
) -> None:
    first = trades.make("sell", "100.01", "0.123")
    second = trades.make("buy", "100.02", "0.5")
    third = trades.make("buy", "99.9", "1")

    got = recent_trades(market)

    assert [t.id for t in got] == first + second + third
    assert [t.id for t in got] == sorted(t.id for t in got)
    top = got[0]
    assert (str(top.price), str(top.quantity), str(top.quote_quantity)) == (
        "100.01",
        "0.123",
        "12.30123",
    )
    assert top.is_buyer_maker is True  # the taker sold
    assert [t.is_buyer_maker for t in got[1:]] == [False, False]
    assert str(got[2].price) == "99.90"
    row = Trade.objects.get(market=market, seq=top.id)
    assert top.time == row.created_at
    assert top.time.utcoffset() == timedelta(0)


def test_the_limit_keeps_the_latest(market: Market, trades: _Trades) -> None:
    ids = trades.make("buy", "100", "0.01", count=4)

    assert [t.id for t in recent_trades("t-usdt", limit=2)] == ids[2:]
    assert [t.id for t in recent_trades(market, limit=1000)] == ids


def test_from_id_gives_the_first_trades_at_or_after_it(market: Market, trades: _Trades) -> None:
    ids = trades.make("buy", "100", "0.01", count=3) + trades.make("sell", "100", "0.01")
    assert ids[1] - ids[0] > 1  # ids are seqs: other events take the numbers between

    assert [t.id for t in recent_trades(market, from_id=ids[1])] == ids[1:]
    assert [t.id for t in recent_trades(market, from_id=ids[1] + 1)] == ids[2:]
    assert [t.id for t in recent_trades(market, from_id=0, limit=2)] == ids[:2]
    assert recent_trades(market, from_id=ids[-1] + 1) == []


def test_a_time_range_gives_the_first_trades_within_it(market: Market, trades: _Trades) -> None:
    early = trades.make("buy", "100", "0.01", at=T0)
    middle = trades.make("sell", "100", "0.02", count=2, at=T0 + timedelta(minutes=1))
    late = trades.make("buy", "100", "0.03", at=T0 + timedelta(minutes=2))
    times = dict(Trade.objects.filter(market=market).values_list("seq", "created_at"))
    start, end = times[middle[0]], times[late[0]]

    def ids(**kwargs: Any) -> list[int]:
        return [t.id for t in recent_trades(market, **kwargs)]

    assert ids(start=start, end=end) == middle + late  # both ends inclusive
    assert ids(start=start, end=end, limit=1) == middle[:1]
    assert ids(start=start) == middle + late
    assert ids(end=start) == early + middle  # up to the end: the latest before it
    assert ids(end=start, limit=2) == middle
    assert ids(start=times[late[0]] + timedelta(microseconds=1)) == []
    got = recent_trades(market, start=start, end=start)
    assert [t.time for t in got] == [start, start]


def _state(market: Market) -> dict[str, Any]:
    return {
        "trades": list(Trade.objects.order_by("pk").values_list("pk", "seq", "price", "quantity")),
        "cursor": SettlementCursor.objects.get(market=market).last_seq,
    }


NAIVE = datetime(2026, 3, 1, 12, 0)  # noqa: DTZ001 - the naive time being refused
LATER = T0 + timedelta(hours=1)


@pytest.mark.parametrize(
    ("_case", "symbol", "kwargs", "error", "code", "field"),
    [
        ("unknown market", "NOPE-USDT", {}, MarketNotFound, "market_not_found", "market"),
        ("limit zero", "T-USDT", {"limit": 0}, InvalidLimit, "limit_invalid", "limit"),
        ("limit 1001", "T-USDT", {"limit": 1001}, InvalidLimit, "limit_invalid", "limit"),
        ("limit a string", "T-USDT", {"limit": "5"}, InvalidLimit, "limit_invalid", "limit"),
        ("limit a bool", "T-USDT", {"limit": True}, InvalidLimit, "limit_invalid", "limit"),
        ("negative id", "T-USDT", {"from_id": -1}, InvalidTradeId, "trade_id_invalid", "from_id"),
        ("id a string", "T-USDT", {"from_id": "3"}, InvalidTradeId, "trade_id_invalid", "from_id"),
        ("id a bool", "T-USDT", {"from_id": True}, InvalidTradeId, "trade_id_invalid", "from_id"),
        ("id a float", "T-USDT", {"from_id": 1.0}, InvalidTradeId, "trade_id_invalid", "from_id"),
        (
            "start after end",
            "T-USDT",
            {"start": LATER, "end": T0},
            InvalidRange,
            "range_invalid",
            "start",
        ),
        ("naive start", "T-USDT", {"start": NAIVE}, InvalidRange, "range_invalid", "start"),
        ("naive end", "T-USDT", {"end": NAIVE}, InvalidRange, "range_invalid", "end"),
        (
            "start not a time",
            "T-USDT",
            {"start": "2026-03-01"},
            InvalidRange,
            "range_invalid",
            "start",
        ),
        (
            "id with a range",
            "T-USDT",
            {"from_id": 1, "start": T0},
            InvalidRange,
            "range_invalid",
            "from_id",
        ),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    market: Market,
    trades: _Trades,
    _case: str,
    symbol: str,
    kwargs: dict[str, Any],
    error: type[Exception],
    code: str,
    field: str,
) -> None:
    trades.make("buy", "100", "0.01", count=2)
    before = _state(market)

    with pytest.raises(error) as raised:
        recent_trades(symbol, **kwargs)

    assert (raised.value.code, raised.value.field) == (code, field)  # type: ignore[attr-defined]
    assert _state(market) == before
