"""Stop orders and self-trade prevention (no database)."""

import pytest

from tests.trading.engine.helpers import (
    ALICE,
    BOB,
    BUY,
    FOK,
    SELL,
    cancel,
    engine_with,
    expiries,
    kinds,
    limit,
    market,
    stop_limit,
    stop_market,
    trades,
)
from trading.engine import Engine, StopTriggered, StpMode


def triggered(events):
    return [
        (e.order_id, e.stop_ticks, e.trigger_price_ticks)
        for e in events
        if isinstance(e, StopTriggered)
    ]


def test_buy_stop_waits_until_last_price_reaches_it():
    engine = engine_with(limit(1, SELL, 100, 1), limit(2, SELL, 105, 5))
    placed = engine.apply(stop_market(3, BUY, stop_ticks=101, qty_lots=2))
    first = engine.apply(limit(4, BUY, 100, 1, account_id=BOB))  # trades at 100 < 101

    events = engine.apply(limit(5, SELL, 101, 1))
    events += engine.apply(limit(6, BUY, 101, 1, account_id=BOB))  # trades at 101

    assert kinds(placed) == ["Accepted"]
    assert triggered(first) == []
    assert triggered(events) == [(3, 101, 101)]
    assert trades(events) == [(5, 6, 101, 1), (2, 3, 105, 2)]


def test_sell_stop_triggers_when_price_falls_to_it():
    engine = engine_with(limit(1, BUY, 100, 1), limit(2, BUY, 90, 5))
    engine.apply(stop_limit(3, SELL, stop_ticks=100, price_ticks=95, qty_lots=2))

    events = engine.apply(market(4, SELL, qty_lots=1, account_id=MALLORY_ACCOUNT))

    assert triggered(events) == [(3, 100, 100)]
    # The triggered stop limit at 95 finds only the bid at 90 below its limit: it rests.
    assert engine.depth(5) == ([(90, 5)], [(95, 2)])


MALLORY_ACCOUNT = 3


def test_stop_already_crossed_on_arrival_triggers_at_once():
    engine = engine_with(limit(1, SELL, 100, 1), limit(2, SELL, 110, 3))
    engine.apply(limit(3, BUY, 100, 1, account_id=BOB))

    events = engine.apply(stop_market(4, BUY, stop_ticks=99, qty_lots=1))

    assert kinds(events)[:2] == ["Accepted", "StopTriggered"]
    assert trades(events) == [(2, 4, 110, 1)]


def test_no_trade_yet_means_no_sell_stop_triggers():
    events = Engine().apply(stop_market(1, SELL, stop_ticks=50, qty_lots=1))

    assert kinds(events) == ["Accepted"]


def test_triggered_stops_run_in_acceptance_order_and_cascade_after():
    engine = engine_with(
        limit(1, SELL, 100, 1),
        limit(2, SELL, 101, 1),
        limit(3, SELL, 102, 1),
        limit(4, SELL, 103, 1),
    )
    engine.apply(stop_market(10, BUY, stop_ticks=100, qty_lots=1))  # accepted first
    engine.apply(stop_market(11, BUY, stop_ticks=102, qty_lots=1))  # needs 10's trade
    engine.apply(stop_market(12, BUY, stop_ticks=100, qty_lots=1))

    events = engine.apply(limit(20, BUY, 100, 1, account_id=MALLORY_ACCOUNT))

    assert [t[0] for t in triggered(events)] == [10, 12, 11]
    assert trades(events) == [(1, 20, 100, 1), (2, 10, 101, 1), (3, 12, 102, 1), (4, 11, 103, 1)]


def test_cancelled_stop_never_triggers():
    engine = engine_with(limit(1, SELL, 100, 2))
    engine.apply(stop_market(2, BUY, stop_ticks=100, qty_lots=1, account_id=ALICE))

    cancelled = engine.apply(cancel(2))
    events = engine.apply(limit(3, BUY, 100, 1, account_id=BOB))

    assert kinds(cancelled) == ["Cancelled"]
    assert triggered(events) == []


def test_stop_market_by_quote_budget():
    engine = engine_with(limit(1, SELL, 100, 1), limit(2, SELL, 100, 5))
    engine.apply(stop_market(3, BUY, stop_ticks=100, quote_budget=250))

    events = engine.apply(limit(4, BUY, 100, 1, account_id=MALLORY_ACCOUNT))

    assert trades(events) == [(1, 4, 100, 1), (2, 3, 100, 2)]
    assert [(e.remaining_quote, e.reason) for e in events if type(e).__name__ == "Expired"] == [
        (50, "market")
    ]


def _self_trade_book():
    # Alice's own ask at 100 sits between Bob's asks.
    return engine_with(
        limit(1, SELL, 99, 1, account_id=BOB),
        limit(2, SELL, 100, 2, account_id=ALICE),
        limit(3, SELL, 100, 2, account_id=BOB),
    )


def test_stp_none_lets_an_account_trade_with_itself():
    events = _self_trade_book().apply(limit(4, BUY, 100, 5, account_id=ALICE))

    assert trades(events) == [(1, 4, 99, 1), (2, 4, 100, 2), (3, 4, 100, 2)]


def test_stp_expire_taker_stops_at_the_own_order():
    engine = _self_trade_book()

    events = engine.apply(limit(4, BUY, 100, 5, stp_mode=StpMode.EXPIRE_TAKER))

    assert trades(events) == [(1, 4, 99, 1)]
    assert expiries(events) == [(4, 4, "stp")]
    assert engine.depth(5) == ([], [(100, 4)])


def test_stp_expire_maker_removes_own_orders_and_keeps_matching():
    engine = _self_trade_book()

    events = engine.apply(limit(4, BUY, 100, 5, stp_mode=StpMode.EXPIRE_MAKER))

    assert trades(events) == [(1, 4, 99, 1), (3, 4, 100, 2)]
    assert expiries(events) == [(2, 2, "stp")]
    assert engine.depth(5) == ([(100, 2)], [])


def test_stp_expire_both():
    engine = _self_trade_book()

    events = engine.apply(limit(4, BUY, 100, 5, stp_mode=StpMode.EXPIRE_BOTH))

    assert trades(events) == [(1, 4, 99, 1)]
    assert expiries(events) == [(2, 2, "stp"), (4, 4, "stp")]
    assert engine.depth(5) == ([], [(100, 2)])


def test_stp_group_links_different_accounts():
    engine = engine_with(limit(1, SELL, 100, 2, account_id=BOB, stp_group=7))

    events = engine.apply(limit(2, BUY, 100, 2, stp_mode=StpMode.EXPIRE_TAKER, stp_group=7))

    assert trades(events) == []
    assert expiries(events) == [(2, 2, "stp")]


@pytest.mark.parametrize(
    ("_case", "mode", "fills"),
    [
        ("maker_mode_skips_own_order", StpMode.EXPIRE_MAKER, True),
        ("taker_mode_is_blocked", StpMode.EXPIRE_TAKER, False),
    ],
)
def test_fok_counts_only_liquidity_stp_lets_it_take(_case, mode, fills):
    engine = _self_trade_book()

    events = engine.apply(limit(4, BUY, 100, 3, stp_mode=mode, tif=FOK))

    if fills:
        assert trades(events) == [(1, 4, 99, 1), (3, 4, 100, 2)]
    else:
        assert expiries(events) == [(4, 3, "fok")]
        assert engine.depth(5) == ([], [(99, 1), (100, 4)])
