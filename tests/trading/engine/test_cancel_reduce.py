"""Cancel, cancel-all and reduce (no database)."""

from tests.trading.engine.helpers import (
    ALICE,
    BOB,
    BUY,
    MALLORY,
    SELL,
    cancel,
    cancel_all,
    engine_with,
    kinds,
    limit,
    reduce,
    rejection,
    stop_market,
    trades,
)
from trading.engine import Cancelled, LevelChanged, Reduced, Side


def test_cancel_reports_remaining_lots_and_level_total():
    engine = engine_with(limit(1, BUY, 100, 5), limit(2, BUY, 100, 3))
    engine.apply(limit(3, SELL, 100, 2, account_id=BOB))

    events = engine.apply(cancel(1))

    assert events == [
        Cancelled(seq=8, order_id=1, account_id=ALICE, remaining_lots=3, remaining_quote=0),
        LevelChanged(seq=9, side=Side.BUY, price_ticks=100, total_lots=3),
    ]


def test_cancelled_order_is_skipped_by_matching():
    engine = engine_with(limit(1, BUY, 100, 5), limit(2, BUY, 100, 3), limit(3, BUY, 100, 4))
    engine.apply(cancel(2))

    events = engine.apply(limit(4, SELL, 100, 9, account_id=BOB))

    assert trades(events) == [(1, 4, 100, 5), (3, 4, 100, 4)]


def test_cancel_of_last_order_removes_the_level():
    engine = engine_with(limit(1, BUY, 100, 5), limit(2, BUY, 99, 1))

    events = engine.apply(cancel(1))

    assert events[1].total_lots == 0
    assert engine.depth(5) == ([(99, 1)], [])


def test_cancel_by_another_account_is_rejected_and_changes_nothing():
    engine = engine_with(limit(1, BUY, 100, 5))
    before = list(engine.open_orders())

    assert rejection(engine.apply(cancel(1, account_id=MALLORY))) == "wrong_account"
    assert list(engine.open_orders()) == before


def test_cancel_of_unknown_or_filled_order_is_rejected():
    engine = engine_with(limit(1, BUY, 100, 5))
    engine.apply(limit(2, SELL, 100, 5, account_id=BOB))

    assert rejection(engine.apply(cancel(1))) == "unknown_order"
    assert rejection(engine.apply(cancel(99))) == "unknown_order"


def test_cancel_all_cancels_orders_and_stops_by_order_id():
    engine = engine_with(
        limit(5, BUY, 100, 1),
        limit(2, SELL, 110, 1),
        limit(3, BUY, 90, 1, account_id=BOB),
        stop_market(4, BUY, stop_ticks=120, qty_lots=1, account_id=ALICE),
    )

    events = engine.apply(cancel_all(ALICE))

    assert [e.order_id for e in events if isinstance(e, Cancelled)] == [2, 4, 5]
    assert list(engine.open_orders()) == [(3, BOB, Side.BUY, 90, 1)]
    assert engine.pending_stops() == []


def test_cancel_all_of_an_account_without_orders_is_rejected():
    assert rejection(engine_with(limit(1, BUY, 100, 5)).apply(cancel_all(MALLORY))) == (
        "unknown_account"
    )


def test_reduce_keeps_priority():
    engine = engine_with(limit(1, BUY, 100, 5), limit(2, BUY, 100, 5))

    events = engine.apply(reduce(1, 2))
    fills = engine.apply(limit(3, SELL, 100, 3, account_id=BOB))

    assert events == [
        Reduced(seq=5, order_id=1, account_id=ALICE, remaining_lots=2, reduced_lots=3),
        LevelChanged(seq=6, side=Side.BUY, price_ticks=100, total_lots=7),
    ]
    assert trades(fills) == [(1, 3, 100, 2), (2, 3, 100, 1)]


def test_reduce_cannot_increase_or_keep_quantity():
    engine = engine_with(limit(1, BUY, 100, 5))
    before = engine.depth(5)

    assert rejection(engine.apply(reduce(1, 6))) == "qty_increase"
    assert rejection(engine.apply(reduce(1, 5))) == "qty_unchanged"
    assert rejection(engine.apply(reduce(1, 0))) == "bad_qty"
    assert rejection(engine.apply(reduce(1, 2, account_id=MALLORY))) == "wrong_account"
    assert engine.depth(5) == before


def test_reduce_a_pending_stop():
    engine = engine_with(stop_market(1, BUY, stop_ticks=120, qty_lots=5, account_id=ALICE))

    events = engine.apply(reduce(1, 2))

    assert kinds(events) == ["Reduced"]
    assert engine.pending_stops() == [(1, ALICE, True, 120, 2)]
