"""Snapshots, state hash and the dict forms of commands and events (no database)."""

import gc
import weakref

import pytest

from tests.trading.engine.helpers import (
    BOB,
    BUY,
    SELL,
    cancel,
    engine_with,
    limit,
    market,
    reduce,
    stop_limit,
    stop_market,
)
from trading.engine import (
    BadCommand,
    Engine,
    SnapshotError,
    StpMode,
    command_from_dict,
    command_to_dict,
    event_from_dict,
    event_to_dict,
)


def _busy_engine():
    engine = engine_with(
        limit(1, BUY, 99, 5),
        limit(2, BUY, 99, 3),
        limit(3, SELL, 101, 4),
        stop_limit(4, SELL, stop_ticks=98, price_ticks=97, qty_lots=2),
        stop_market(5, BUY, stop_ticks=102, quote_budget=500),
    )
    engine.apply(cancel(1))
    engine.apply(limit(6, BUY, 101, 1, account_id=BOB))
    return engine


def test_restore_gives_the_same_state_hash_and_orders():
    engine = _busy_engine()

    copy = Engine.restore(engine.snapshot())

    assert copy.state_hash() == engine.state_hash()
    assert list(copy.open_orders()) == list(engine.open_orders())
    assert copy.pending_stops() == engine.pending_stops()
    assert (copy.seq, copy.last_price) == (engine.seq, engine.last_price)


def test_restored_engine_continues_identically():
    engine = _busy_engine()
    copy = Engine.restore(engine.snapshot())
    later = [limit(7, SELL, 98, 9, account_id=BOB), market(8, BUY, qty_lots=2), cancel(2)]

    assert [copy.apply(c) for c in later] == [engine.apply(c) for c in later]
    assert copy.state_hash() == engine.state_hash()


def test_restored_engine_fast_entry_points_continue_identically():
    engine = _busy_engine()
    copy = Engine.restore(engine.snapshot())
    calls = [
        ("place", (7, BOB, False, 98, 9)),
        ("place", (8, BOB, True, 95, 4)),
        ("place_market", (9, BOB, True, 2)),
        ("cancel", (2, 1)),
        ("cancel", (8, BOB)),
    ]

    for name, args in calls:
        assert list(getattr(copy, name)(*args)) == list(getattr(engine, name)(*args))
    assert copy.state_hash() == engine.state_hash()


def test_fast_entry_points_outlive_the_engine_and_the_engine_needs_no_cyclic_gc():
    gc.disable()
    try:
        engine = _busy_engine()
        place, cancel = engine.place, engine.cancel
        probe = weakref.ref(engine)
        del engine
        # The closures keep working alone, slow paths (a rejection, a rest after a cross) too.
        assert place(7, BOB, False, 98, 9)[-1][0].__name__ == "LevelChanged"
        assert cancel(99, BOB)[0][-1] == "unknown_order"
        del place, cancel
        assert probe() is None  # no reference cycle: freed at once, even with the GC frozen
    finally:
        gc.enable()


def _tracked_objects() -> int:
    gc.collect()
    return len(gc.get_objects())


def test_resting_orders_add_no_objects_for_the_cyclic_gc_to_walk():
    # 3,000 resting orders on 6 levels, some partly filled, reduced, cancelled, then restored:
    # only the engine itself and its levels (a list and a deque each) are there to walk.
    before = _tracked_objects()
    engine = Engine()
    empty_engine = _tracked_objects() - before
    for order_id in range(1, 3001):
        is_buy = order_id % 2 == 0
        price = (100 if is_buy else 110) + order_id % 3
        engine.place(order_id, 1 + order_id % 7, is_buy, price, 5)
    engine.place_market(3001, BOB, True, 7)  # fills one ask, part of the next
    engine.apply(reduce(1001, 2, account_id=1 + 1001 % 7))  # a sell in the middle of its level
    engine.cancel(2001, 1 + 2001 % 7)
    grown = _tracked_objects() - before
    copy = Engine.restore(engine.snapshot())
    grown_with_copy = _tracked_objects() - before

    assert len(list(copy.open_orders())) == 2998
    # Per level a list and a deque, plus a few containers that are empty until the first order.
    assert grown <= empty_engine + 2 * 6 + 10
    assert grown_with_copy - grown <= empty_engine + 2 * 6 + 10


def test_state_hash_ignores_history_that_left_no_trace():
    plain = engine_with(limit(1, BUY, 99, 5), limit(3, BUY, 99, 2))
    churned = engine_with(limit(1, BUY, 99, 5), limit(2, BUY, 99, 4), limit(3, BUY, 99, 2))
    churned.apply(cancel(2))
    plain.apply(limit(9, SELL, 200, 1))
    plain.apply(cancel(9))  # same number of events: one more to match cancel(2)'s two

    assert plain.seq == churned.seq
    assert plain.state_hash() == churned.state_hash()


@pytest.mark.parametrize(
    ("_case", "damage"),
    [
        ("empty", lambda data: b""),
        ("truncated", lambda data: data[:-1]),
        ("header_only", lambda data: data[:5]),
        ("flipped_bit", lambda data: data[:20] + bytes([data[20] ^ 1]) + data[21:]),
        ("bad_version", lambda data: data[:4] + b"\x09" + data[5:]),
        ("bad_magic", lambda data: b"XXXX" + data[4:]),
        ("not_bytes", lambda data: "snapshot"),
    ],
)
def test_damaged_snapshot_is_rejected(_case, damage):
    data = _busy_engine().snapshot()

    with pytest.raises(SnapshotError):
        Engine.restore(damage(data))


def test_command_dict_round_trip_is_json_safe():
    command = limit(1, BUY, 99, 5, stp_mode=StpMode.EXPIRE_BOTH, stp_group=4)

    data = command_to_dict(command)

    assert data["type"] == "place_order"
    assert data["stp_mode"] == "expire_both"
    assert all(type(v) in (str, int) for v in data.values())
    assert command_from_dict(data) == command


@pytest.mark.parametrize(
    ("_case", "data"),
    [
        ("not_a_dict", ["place_order"]),
        ("unknown_type", {"type": "explode"}),
        ("missing_field", {"type": "cancel_order", "order_id": 1}),
        ("unknown_field", {"type": "cancel_all", "account_id": 1, "extra": 1}),
    ],
)
def test_malformed_command_dict_raises_bad_command_and_apply_dict_rejects(_case, data):
    with pytest.raises(BadCommand):
        command_from_dict(data)

    events = Engine().apply_dict(data)

    assert [(type(e).__name__, e.reason) for e in events] == [("Rejected", "bad_command")]


def test_bad_values_in_a_dict_reach_the_engine_and_are_rejected_precisely():
    data = command_to_dict(limit(1, BUY, 99, 5))
    data["side"] = "sideways"

    events = Engine().apply_dict(data)

    assert events[0].reason == "bad_side"


def test_event_dict_round_trip():
    events = _busy_engine().apply(market(10, SELL, qty_lots=4))

    assert [event_from_dict(event_to_dict(e)) for e in events] == events
    assert {event_to_dict(e)["type"] for e in events} >= {"accepted", "trade", "level_changed"}
