"""Property tests: invariants that must hold for any command stream (no database)."""

import json
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trading.engine import (
    Accepted,
    CancelAll,
    Cancelled,
    CancelOrder,
    Engine,
    Expired,
    OrderType,
    PlaceOrder,
    Reduced,
    ReduceOrder,
    Side,
    StpMode,
    TimeInForce,
    Trade,
    event_to_dict,
)

PRICED = (OrderType.LIMIT, OrderType.LIMIT_MAKER, OrderType.STOP_LIMIT)
STOPS = (OrderType.STOP_LIMIT, OrderType.STOP_MARKET)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def streams(draw):
    """Valid-looking streams with fresh order ids, so every id has one life."""
    n = draw(st.integers(1, 70))
    commands, placed = [], []
    for order_id in range(1, n + 1):
        kind = draw(st.sampled_from("pppppppcrx"))
        if kind == "p" or not placed:
            order_type = draw(st.sampled_from(list(OrderType)))
            side = draw(st.sampled_from(list(Side)))
            by_quote = order_type not in PRICED and side is Side.BUY and draw(st.booleans())
            tif = draw(st.sampled_from(list(TimeInForce)))
            if order_type is OrderType.LIMIT_MAKER or by_quote:
                tif = TimeInForce.GTC
            commands.append(
                PlaceOrder(
                    order_id,
                    draw(st.integers(1, 3)),
                    side,
                    order_type,
                    tif,
                    price_ticks=draw(st.integers(95, 105)) if order_type in PRICED else 0,
                    qty_lots=0 if by_quote else draw(st.integers(1, 9)),
                    quote_budget=draw(st.integers(90, 900)) if by_quote else 0,
                    stop_ticks=draw(st.integers(95, 105)) if order_type in STOPS else 0,
                    stp_mode=draw(st.sampled_from(list(StpMode))),
                    stp_group=draw(st.integers(0, 2)),
                )
            )
            placed.append(commands[-1])
        else:
            target = draw(st.sampled_from(placed))
            if kind == "c":
                commands.append(CancelOrder(target.order_id, target.account_id))
            elif kind == "r":
                commands.append(
                    ReduceOrder(target.order_id, target.account_id, draw(st.integers(1, 8)))
                )
            else:
                commands.append(CancelAll(target.account_id))
    return commands


def best(engine):
    bids, asks = engine.depth(1)
    return (bids[0][0] if bids else None), (asks[0][0] if asks else None)


def level_queues(engine):
    queues = defaultdict(list)
    for order_id, _, side, price, _ in engine.open_orders():
        queues[(side, price)].append(order_id)
    return queues


@SETTINGS
@given(streams())
def test_book_is_never_crossed_at_rest(commands):
    engine = Engine()
    for command in commands:
        engine.apply(command)
        bid, ask = best(engine)
        assert bid is None or ask is None or bid < ask


@SETTINGS
@given(streams())
def test_trades_are_at_the_makers_price_within_both_limits(commands):
    engine = Engine()
    limits = {
        c.order_id: (c.side, c.order_type, c.price_ticks)
        for c in commands
        if isinstance(c, PlaceOrder)
    }
    for command in commands:
        for event in engine.apply(command):
            if not isinstance(event, Trade):
                continue
            maker_side, _, maker_limit = limits[event.maker_order_id]
            taker_side, taker_type, taker_limit = limits[event.taker_order_id]
            assert maker_side is not taker_side
            if taker_type in PRICED:
                if taker_side is Side.BUY:
                    assert event.price_ticks <= taker_limit
                else:
                    assert event.price_ticks >= taker_limit
            assert event.price_ticks == maker_limit  # makers are always priced orders


@SETTINGS
@given(streams())
def test_fifo_within_a_level(commands):
    engine = Engine()
    for command in commands:
        queues = level_queues(engine)
        taken = defaultdict(list)  # level -> makers consumed, in event order
        for event in engine.apply(command):
            if isinstance(event, Trade):
                side = Side.SELL if event.taker_side is Side.BUY else Side.BUY
                key = (side, event.price_ticks)
                if not taken[key] or taken[key][-1] != event.maker_order_id:
                    taken[key].append(event.maker_order_id)
            elif isinstance(event, Expired) and event.reason == "stp":
                for key, queue in queues.items():
                    if event.order_id in queue and taken[key][-1:] != [event.order_id]:
                        taken[key].append(event.order_id)
        for key, makers in taken.items():
            # Orders that began resting during this command (triggered stops) join at the back.
            older = [m for m in makers if m in queues[key]]
            assert older == queues[key][: len(older)]


@SETTINGS
@given(streams())
def test_quantity_is_conserved(commands):
    engine = Engine()
    placed, budget, done = {}, {}, defaultdict(int)
    spent, unspent = defaultdict(int), defaultdict(int)
    for command in commands:
        for event in engine.apply(command):
            if isinstance(event, Accepted):
                if event.quote_budget:
                    budget[event.order_id] = event.quote_budget
                else:
                    placed[event.order_id] = event.qty_lots
            elif isinstance(event, Trade):
                done[event.maker_order_id] += event.qty_lots
                done[event.taker_order_id] += event.qty_lots
                spent[event.taker_order_id] += event.qty_lots * event.price_ticks
            elif isinstance(event, Cancelled | Expired):
                done[event.order_id] += event.remaining_lots
                unspent[event.order_id] += getattr(event, "remaining_quote", 0)
            elif isinstance(event, Reduced):
                done[event.order_id] += event.reduced_lots
    for order_id, _, _, _, remaining in engine.open_orders():
        done[order_id] += remaining
    waiting = {s[0] for s in engine.pending_stops()}
    for order_id, _, _, _, qty in engine.pending_stops():
        done[order_id] += qty
    assert {oid: done[oid] for oid in placed} == placed
    finished = {oid: spent[oid] + unspent[oid] for oid in budget if oid not in waiting}
    assert finished == {oid: b for oid, b in budget.items() if oid not in waiting}


def _wire(events):
    return json.dumps([event_to_dict(e) for e in events], sort_keys=True).encode()


@SETTINGS
@given(streams())
def test_same_commands_give_the_same_events_byte_for_byte(commands):
    first, second = Engine(), Engine()

    one = b"".join(_wire(first.apply(c)) for c in commands)
    two = b"".join(_wire(second.apply(c)) for c in commands)

    assert one == two
    assert first.state_hash() == second.state_hash()


@SETTINGS
@given(streams(), st.data())
def test_snapshot_restore_and_replay_equals_never_stopping(commands, data):
    cut = data.draw(st.integers(0, len(commands)))
    straight = Engine()
    straight_events = [straight.apply(c) for c in commands]

    before = Engine()
    for command in commands[:cut]:
        before.apply(command)
    resumed = Engine.restore(before.snapshot())
    resumed_events = [resumed.apply(c) for c in commands[cut:]]

    assert resumed_events == straight_events[cut:]
    assert resumed.state_hash() == straight.state_hash()
    assert resumed.snapshot() == straight.snapshot()
