"""The depth snapshot and book tickers, read from what real settlement wrote.

Orders go through place_order, the real engine and settle_batch in-process
(book_client.InProcessPipeline), so every level here is one the engine produced; the
engine's own book is the reference the rows must equal.
"""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest

from accounts.models import Asset, User
from markets.errors import MarketNotFound
from markets.marketdata.depth import Depth
from markets.marketdata.errors import InvalidLimit
from markets.models import DepthLevel, Market
from markets.selectors import book_ticker, depth
from tests.conftest import fund, make_user
from tests.markets.book_client import InProcessPipeline, depth_book, engine_levels
from tests.trading.conftest import make_market
from tests.trading.conftest import redis_db as redis_db  # the fixture, for this folder
from trading.models import OPEN_STATUSES, Order, SettlementCursor
from trading.services.orders import place_order
from trading.validation import OrderSpec
from trading.workload import random_spec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

D = Decimal
TICK, LOT = D("0.01"), D("0.001")


@pytest.fixture
def market(assets: dict[str, Asset]) -> Market:
    return make_market(
        "D-USDT",
        assets["BTC"],
        assets["USDT"],
        lot_size=LOT,
        min_quantity=LOT,
        min_notional=D("0"),
        last_price=D("100"),
    )


@pytest.fixture
def traders(assets: dict[str, Asset]) -> list[User]:
    users = [make_user(f"d{i}@example.com") for i in range(4)]
    for user in users:
        fund(user, assets["BTC"], "10000")
        fund(user, assets["USDT"], "10000000")
        fund(user, assets["IRT"], "100000000000")
    return users


def _limit(user: User, market: Market, side: str, price: str, quantity: str) -> Order:
    spec = OrderSpec(side=side, price=D(price), quantity=D(quantity))
    return place_order(user=user, market=market, spec=spec)


def _rest_book(market: Market, users: list[User]) -> InProcessPipeline:
    pipeline = InProcessPipeline(market)
    a, b = users[0], users[1]
    for user, side, price, quantity in [
        (a, "buy", "99.98", "0.5"),
        (b, "buy", "99.98", "0.25"),
        (a, "buy", "99.99", "1"),
        (b, "buy", "99.5", "0.1"),
        (a, "sell", "100.01", "0.3"),
        (b, "sell", "100.02", "0.7"),
        (a, "sell", "100.5", "0.2"),
    ]:
        _limit(user, market, side, price, quantity)
    pipeline.drain()
    return pipeline


def _cursor(market: Market) -> int:
    return SettlementCursor.objects.get(market=market).last_seq


def test_snapshot_is_the_engines_book_best_first_with_its_sequence(
    market: Market, traders: list[User]
) -> None:
    pipeline = _rest_book(market, traders)

    snapshot = depth(market)

    assert snapshot.symbol == "D-USDT"
    assert snapshot.bids == [(D("99.99"), D("1")), (D("99.98"), D("0.75")), (D("99.50"), D("0.1"))]
    assert snapshot.asks == [
        (D("100.01"), D("0.3")),
        (D("100.02"), D("0.7")),
        (D("100.5"), D("0.2")),
    ]
    assert [f"{p} {q}" for p, q in snapshot.bids] == ["99.99 1.000", "99.98 0.750", "99.50 0.100"]
    assert depth_book(snapshot) == engine_levels(pipeline.engine, market)
    market.refresh_from_db()
    assert snapshot.last_update_id == _cursor(market) == market.book_seq == pipeline.engine.seq


def test_limit_takes_the_best_levels_of_each_side(market: Market, traders: list[User]) -> None:
    _rest_book(market, traders)

    top = depth("d-usdt", 2)

    assert top.bids == [(D("99.99"), D("1")), (D("99.98"), D("0.75"))]
    assert top.asks == [(D("100.01"), D("0.3")), (D("100.02"), D("0.7"))]
    assert top.last_update_id == depth(market, 5000).last_update_id


def test_fills_lower_and_remove_levels_and_advance_the_sequence(
    market: Market, traders: list[User]
) -> None:
    pipeline = _rest_book(market, traders)
    before = depth(market).last_update_id
    # Takes all of 100.01 and 0.2 of 100.02.
    _limit(traders[2], market, "buy", "100.02", "0.5")
    pipeline.drain()

    after = depth(market)

    assert after.asks == [(D("100.02"), D("0.5")), (D("100.5"), D("0.2"))]
    assert after.last_update_id > before
    assert after.last_update_id == _cursor(market)
    assert not DepthLevel.objects.filter(market=market, price=D("100.01")).exists()


def test_prices_and_quantities_carry_the_markets_places(
    assets: dict[str, Asset], traders: list[User]
) -> None:
    irt = make_market(
        "USDT-IRT",
        assets["USDT"],
        assets["IRT"],
        tick_size=D("10"),
        lot_size=D("0.01"),
        min_quantity=D("1"),
        min_notional=D("100000"),
        last_price=D("60000"),
    )
    pipeline = InProcessPipeline(irt)
    _limit(traders[0], irt, "buy", "59990", "2")
    _limit(traders[1], irt, "sell", "60010", "2.5")
    pipeline.drain()

    snapshot = depth(irt)

    assert [f"{p} {q}" for p, q in snapshot.bids] == ["59990 2.00"]
    assert [f"{p} {q}" for p, q in snapshot.asks] == ["60010 2.50"]
    ticker = book_ticker(irt)
    assert (str(ticker.bid_price), str(ticker.ask_quantity)) == ("59990", "2.50")


def test_book_ticker_is_the_best_level_of_each_side(market: Market, traders: list[User]) -> None:
    _rest_book(market, traders)

    ticker = book_ticker("D-USDT")

    assert (ticker.symbol, ticker.update_id) == ("D-USDT", _cursor(market))
    assert (ticker.bid_price, ticker.bid_quantity) == (D("99.99"), D("1"))
    assert (ticker.ask_price, ticker.ask_quantity) == (D("100.01"), D("0.3"))
    assert str(ticker.bid_quantity) == "1.000"


def test_an_empty_book_has_no_levels_and_no_best_prices(market: Market) -> None:
    assert depth(market) == Depth("D-USDT", 0, [], [])
    ticker = book_ticker(market)
    assert (ticker.bid_price, ticker.bid_quantity, ticker.ask_price, ticker.ask_quantity) == (
        None,
        None,
        None,
        None,
    )


def _rows(market: Market) -> dict[str, Any]:
    market.refresh_from_db()
    levels = DepthLevel.objects.order_by("side", "price").values_list("side", "price", "quantity")
    return {"levels": list(levels), "book_seq": market.book_seq, "cursor": _cursor(market)}


@pytest.mark.parametrize(
    ("_case", "symbol", "limit", "error", "code", "field"),
    [
        ("unknown market", "NOPE-USDT", 100, MarketNotFound, "market_not_found", "market"),
        ("not a symbol", 42, 100, MarketNotFound, "market_not_found", "market"),
        ("zero", "D-USDT", 0, InvalidLimit, "limit_invalid", "limit"),
        ("above 5000", "D-USDT", 5001, InvalidLimit, "limit_invalid", "limit"),
        ("a string", "D-USDT", "10", InvalidLimit, "limit_invalid", "limit"),
        ("a bool", "D-USDT", True, InvalidLimit, "limit_invalid", "limit"),
        ("a decimal", "D-USDT", D("10"), InvalidLimit, "limit_invalid", "limit"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    market: Market,
    traders: list[User],
    _case: str,
    symbol: Any,
    limit: Any,
    error: type[Exception],
    code: str,
    field: str,
) -> None:
    _rest_book(market, traders)
    before = _rows(market)

    with pytest.raises(error) as raised:
        depth(symbol, limit)

    assert (raised.value.code, raised.value.field) == (code, field)  # type: ignore[attr-defined]
    assert _rows(market) == before


def test_book_ticker_of_an_unknown_market_is_refused(market: Market) -> None:
    with pytest.raises(MarketNotFound) as raised:
        book_ticker("NOPE-USDT")

    assert raised.value.code == "market_not_found"
    assert not DepthLevel.objects.exists()


def _resting_aggregate(market: Market) -> tuple[list[tuple[D, D]], list[tuple[D, D]]]:
    """The open orders' remaining quantity summed per (side, price), best first."""
    totals: dict[tuple[str, D], D] = defaultdict(D)
    for side, price, quantity, filled in Order.objects.filter(
        market=market, status__in=OPEN_STATUSES
    ).values_list("side", "price", "quantity", "filled_quantity"):
        totals[(side, price.quantize(TICK))] += (quantity - filled).quantize(LOT)
    bids = sorted(((p, q) for (s, p), q in totals.items() if s == "buy"), reverse=True)
    asks = sorted((p, q) for (s, p), q in totals.items() if s == "sell")
    return bids, asks


def test_rows_equal_the_resting_orders_after_a_random_run(
    market: Market, traders: list[User]
) -> None:
    pipeline = InProcessPipeline(market)
    rng = random.Random(10)
    for n in range(400):
        spec = random_spec(rng, mid=D("100"), tick=TICK, lot=LOT, coid=f"r{n}")
        place_order(user=traders[rng.randrange(len(traders))], market=market, spec=spec)
        if n % 25 == 24:
            pipeline.drain()
    pipeline.drain()

    snapshot = depth(market, 5000)

    bids, asks = _resting_aggregate(market)
    assert min(len(bids), len(asks)) >= 1
    assert len(bids) + len(asks) > 10  # a book worth comparing
    assert depth_book(snapshot) == (bids, asks) == engine_levels(pipeline.engine, market)
    assert snapshot.last_update_id == pipeline.engine.seq == _cursor(market)
    assert DepthLevel.objects.filter(market=market).count() == len(bids) + len(asks)
