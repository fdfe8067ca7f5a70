"""Price-time matching, order types and time in force (no database)."""

from tests.trading.engine.helpers import (
    ALICE,
    BOB,
    BUY,
    FOK,
    IOC,
    SELL,
    engine_with,
    expiries,
    kinds,
    levels,
    limit,
    maker_only,
    market,
    rejection,
    trades,
)
from trading.engine import Accepted, Engine, LevelChanged, Side, Trade


def test_taker_walks_the_book_best_price_first():
    engine = engine_with(limit(1, SELL, 101, 5), limit(2, SELL, 100, 5))

    events = engine.apply(limit(3, BUY, 101, 7, account_id=BOB))

    assert trades(events) == [(2, 3, 100, 5), (1, 3, 101, 2)]
    assert engine.depth(5) == ([], [(101, 3)])


def test_fifo_within_a_level():
    engine = engine_with(limit(1, BUY, 100, 2), limit(2, BUY, 100, 2), limit(3, BUY, 100, 2))

    events = engine.apply(limit(4, SELL, 100, 5, account_id=BOB))

    assert trades(events) == [(1, 4, 100, 2), (2, 4, 100, 2), (3, 4, 100, 1)]
    assert list(engine.open_orders()) == [(3, ALICE, Side.BUY, 100, 1)]


def test_trade_at_maker_price_gives_price_improvement_to_taker():
    engine = engine_with(limit(1, SELL, 95, 3))

    events = engine.apply(limit(2, BUY, 100, 3, account_id=BOB))

    assert trades(events) == [(1, 2, 95, 3)]
    assert engine.last_price == 95


def test_every_event_gets_the_next_sequence_number():
    engine = engine_with(limit(1, SELL, 100, 1), limit(2, SELL, 101, 1))

    events = engine.apply(limit(3, BUY, 101, 3, account_id=BOB))

    assert [e.seq for e in events] == list(range(5, 5 + len(events)))
    assert engine.seq == events[-1].seq
    assert kinds(events) == [
        "Accepted",
        "Trade",
        "LevelChanged",
        "Trade",
        "LevelChanged",
        "LevelChanged",
    ]


def test_trade_event_fields():
    engine = engine_with(limit(1, SELL, 100, 4))

    events = engine.apply(limit(2, BUY, 100, 4, account_id=BOB))

    assert events[1] == Trade(
        seq=4,
        maker_order_id=1,
        taker_order_id=2,
        maker_account_id=ALICE,
        taker_account_id=BOB,
        price_ticks=100,
        qty_lots=4,
        taker_side=Side.BUY,
        maker_filled=True,
        taker_filled=True,
    )


def test_partial_maker_fill_keeps_it_first_in_line():
    engine = engine_with(limit(1, SELL, 100, 10), limit(2, SELL, 100, 10))

    engine.apply(limit(3, BUY, 100, 4, account_id=BOB))
    events = engine.apply(limit(4, BUY, 100, 7, account_id=BOB))

    assert trades(events) == [(1, 4, 100, 6), (2, 4, 100, 1)]
    assert [e.maker_filled for e in events if isinstance(e, Trade)] == [True, False]


def test_accepted_then_rest_emits_level_total():
    engine = engine_with(limit(1, BUY, 100, 3))

    events = engine.apply(limit(2, BUY, 100, 4))

    assert isinstance(events[0], Accepted)
    assert events[1] == LevelChanged(seq=4, side=Side.BUY, price_ticks=100, total_lots=7)


def test_remainder_rests_after_sweeping():
    engine = engine_with(limit(1, SELL, 100, 2))

    events = engine.apply(limit(2, BUY, 101, 5, account_id=BOB))

    assert levels(events) == [("sell", 100, 0), ("buy", 101, 3)]
    assert engine.depth(5) == ([(101, 3)], [])


def test_depth_lists_best_levels_first_and_is_cut_at_n():
    engine = engine_with(
        limit(1, BUY, 98, 1),
        limit(2, BUY, 99, 2),
        limit(3, BUY, 97, 3),
        limit(4, SELL, 102, 4),
        limit(5, SELL, 101, 5),
        limit(6, SELL, 101, 1),
    )

    assert engine.depth(2) == ([(99, 2), (98, 1)], [(101, 6), (102, 4)])
    assert engine.depth(0) == ([], [])


def test_ioc_remainder_expires_and_never_rests():
    engine = engine_with(limit(1, SELL, 100, 2))

    events = engine.apply(limit(2, BUY, 100, 5, account_id=BOB, tif=IOC))

    assert trades(events) == [(1, 2, 100, 2)]
    assert expiries(events) == [(2, 3, "ioc")]
    assert engine.depth(5) == ([], [])


def test_ioc_without_cross_expires_whole():
    events = Engine().apply(limit(1, BUY, 100, 5, tif=IOC))

    assert kinds(events) == ["Accepted", "Expired"]
    assert expiries(events) == [(1, 5, "ioc")]


def test_fok_fills_completely_across_levels():
    engine = engine_with(limit(1, SELL, 100, 2), limit(2, SELL, 101, 3))

    events = engine.apply(limit(3, BUY, 101, 5, account_id=BOB, tif=FOK))

    assert trades(events) == [(1, 3, 100, 2), (2, 3, 101, 3)]
    assert expiries(events) == []


def test_fok_that_cannot_fill_changes_nothing():
    engine = engine_with(limit(1, SELL, 100, 2), limit(2, SELL, 102, 3))
    before = engine.state_hash()

    events = engine.apply(limit(3, BUY, 101, 5, account_id=BOB, tif=FOK))

    assert kinds(events) == ["Accepted", "Expired"]
    assert expiries(events) == [(3, 5, "fok")]
    assert engine.depth(5) == ([], [(100, 2), (102, 3)])
    assert engine.state_hash() != before  # only the sequence moved
    assert list(engine.open_orders()) == [
        (1, ALICE, Side.SELL, 100, 2),
        (2, ALICE, Side.SELL, 102, 3),
    ]


def test_market_by_lots_sweeps_and_expires_what_the_book_lacks():
    engine = engine_with(limit(1, SELL, 100, 2), limit(2, SELL, 105, 2))

    events = engine.apply(market(3, BUY, qty_lots=5))

    assert trades(events) == [(1, 3, 100, 2), (2, 3, 105, 2)]
    assert expiries(events) == [(3, 1, "market")]


def test_market_sell_on_empty_book_expires():
    events = Engine().apply(market(1, SELL, qty_lots=5))

    assert kinds(events) == ["Accepted", "Expired"]


def test_market_buy_by_quote_budget_spends_whole_lots_only():
    engine = engine_with(limit(1, SELL, 100, 3), limit(2, SELL, 150, 10))

    events = engine.apply(market(3, BUY, quote_budget=700))

    # 3 lots at 100 = 300, then 400 // 150 = 2 lots at 150 = 300, 100 of budget left.
    assert trades(events) == [(1, 3, 100, 3), (2, 3, 150, 2)]
    assert [
        (e.remaining_lots, e.remaining_quote, e.reason)
        for e in events
        if type(e).__name__ == "Expired"
    ] == [(0, 100, "market")]


def test_market_buy_by_quote_budget_spent_exactly_has_no_expiry():
    engine = engine_with(limit(1, SELL, 100, 3))

    events = engine.apply(market(2, BUY, quote_budget=200))

    assert trades(events) == [(1, 2, 100, 2)]
    assert [e.taker_filled for e in events if isinstance(e, Trade)] == [True]
    assert kinds(events) == ["Accepted", "Trade", "LevelChanged"]


def test_market_by_quote_for_a_sell_is_rejected():
    assert rejection(Engine().apply(market(1, SELL, quote_budget=100))) == "bad_quote_budget"


def test_limit_maker_rests_when_it_would_not_take():
    engine = engine_with(limit(1, SELL, 101, 1))

    events = engine.apply(maker_only(2, BUY, 100, 5))

    assert kinds(events) == ["Accepted", "LevelChanged"]
    assert engine.depth(1) == ([(100, 5)], [(101, 1)])


def test_limit_maker_that_would_take_is_rejected_and_changes_nothing():
    engine = engine_with(limit(1, SELL, 100, 1))
    before = list(engine.open_orders())

    events = engine.apply(maker_only(2, BUY, 100, 5))

    assert rejection(events) == "would_take"
    assert list(engine.open_orders()) == before
