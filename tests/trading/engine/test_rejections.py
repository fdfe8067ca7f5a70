"""Bad commands become Rejected events; nothing raises and nothing changes (no database)."""

import pytest

from tests.trading.engine.helpers import BUY, GTC, engine_with, limit, rejection
from trading.engine import (
    CancelOrder,
    Engine,
    OrderType,
    PlaceOrder,
    ReduceOrder,
    Rejected,
    Side,
    StpMode,
    TimeInForce,
)

L = OrderType.LIMIT


@pytest.mark.parametrize(
    ("_case", "command", "reason"),
    [
        ("zero_price", PlaceOrder(9, 1, BUY, L, GTC, price_ticks=0, qty_lots=1), "bad_price"),
        ("negative_price", PlaceOrder(9, 1, BUY, L, GTC, price_ticks=-5, qty_lots=1), "bad_price"),
        ("float_price", PlaceOrder(9, 1, BUY, L, GTC, price_ticks=1.5, qty_lots=1), "bad_price"),
        ("bool_price", PlaceOrder(9, 1, BUY, L, GTC, price_ticks=True, qty_lots=1), "bad_price"),
        ("str_qty", PlaceOrder(9, 1, BUY, L, GTC, price_ticks=5, qty_lots="1"), "bad_qty"),
        ("zero_qty", PlaceOrder(9, 1, BUY, L, GTC, price_ticks=5, qty_lots=0), "bad_qty"),
        ("huge_qty", PlaceOrder(9, 1, BUY, L, GTC, price_ticks=5, qty_lots=1 << 63), "bad_qty"),
        ("zero_order_id", PlaceOrder(0, 1, BUY, L, GTC, price_ticks=5, qty_lots=1), "bad_order_id"),
        (
            "none_account",
            PlaceOrder(9, None, BUY, L, GTC, price_ticks=5, qty_lots=1),
            "bad_account_id",
        ),
        ("bad_side", PlaceOrder(9, 1, "up", L, GTC, price_ticks=5, qty_lots=1), "bad_side"),
        (
            "unhashable_side",
            PlaceOrder(9, 1, ["buy"], L, GTC, price_ticks=5, qty_lots=1),
            "bad_side",
        ),
        (
            "bad_type",
            PlaceOrder(9, 1, BUY, "iceberg", GTC, price_ticks=5, qty_lots=1),
            "bad_order_type",
        ),
        ("bad_tif", PlaceOrder(9, 1, BUY, L, "day", price_ticks=5, qty_lots=1), "bad_tif"),
        (
            "bad_stp",
            PlaceOrder(9, 1, BUY, L, GTC, price_ticks=5, qty_lots=1, stp_mode="x"),
            "bad_stp_mode",
        ),
        (
            "negative_group",
            PlaceOrder(9, 1, BUY, L, GTC, price_ticks=5, qty_lots=1, stp_group=-1),
            "bad_stp_group",
        ),
        (
            "market_with_price",
            PlaceOrder(9, 1, BUY, OrderType.MARKET, TimeInForce.IOC, price_ticks=5, qty_lots=1),
            "bad_price",
        ),
        (
            "market_lots_and_budget",
            PlaceOrder(9, 1, BUY, OrderType.MARKET, TimeInForce.IOC, qty_lots=1, quote_budget=10),
            "bad_qty",
        ),
        (
            "fok_budget",
            PlaceOrder(9, 1, BUY, OrderType.MARKET, TimeInForce.FOK, quote_budget=10),
            "bad_tif",
        ),
        (
            "limit_with_stop",
            PlaceOrder(9, 1, BUY, L, GTC, price_ticks=5, qty_lots=1, stop_ticks=3),
            "bad_stop_price",
        ),
        (
            "stop_without_stop",
            PlaceOrder(9, 1, BUY, OrderType.STOP_LIMIT, GTC, price_ticks=5, qty_lots=1),
            "bad_stop_price",
        ),
        (
            "maker_ioc",
            PlaceOrder(
                9, 1, BUY, OrderType.LIMIT_MAKER, TimeInForce.IOC, price_ticks=5, qty_lots=1
            ),
            "bad_tif",
        ),
        (
            "duplicate_id",
            PlaceOrder(1, 1, BUY, L, GTC, price_ticks=5, qty_lots=1),
            "duplicate_order_id",
        ),
        ("cancel_bad_id", CancelOrder("1", 1), "bad_order_id"),
        ("cancel_unhashable", CancelOrder([1], 1), "bad_order_id"),
        ("reduce_float", ReduceOrder(1, 1, 2.0), "bad_qty"),
        ("not_a_command", "place 1 lot", "bad_command"),
    ],
)
def test_bad_command_is_rejected_and_changes_nothing(_case, command, reason):
    engine = engine_with(limit(1, Side.SELL, 100, 5))
    before = (engine.state_hash(), list(engine.open_orders()))

    events = engine.apply(command)

    assert rejection(events) == reason
    assert events[0].seq == 3
    assert list(engine.open_orders()) == before[1]


def test_rejection_carries_the_ids_it_can():
    events = Engine().apply(PlaceOrder(7, 8, "up", OrderType.LIMIT, GTC, 1, 1))

    assert events == [Rejected(seq=1, order_id=7, account_id=8, reason="bad_side")]


def test_plain_strings_equal_to_enum_values_are_accepted():
    events = Engine().apply(
        PlaceOrder(1, 1, "buy", "limit", "gtc", price_ticks=5, qty_lots=1, stp_mode="none")
    )

    assert events[0].side is Side.BUY


def test_fast_entry_points_reject_instead_of_raising():
    engine = Engine()

    assert engine.place(1, 1, True, 1.5, 1)[0][-1] == "bad_price"
    assert engine.place(1, 1, True, 100, None)[0][-1] == "bad_qty"
    assert engine.place(1, 1, True, 100, 1, TimeInForce.FOK)[0][-1] == "bad_tif"
    assert engine.place_market(-1, 1, True, 1)[0][-1] == "bad_order_id"
    assert engine.cancel({}, 1)[0][-1] == "bad_order_id"
    assert list(engine.open_orders()) == []


def test_stp_mode_default_is_none():
    assert PlaceOrder(1, 1, BUY, L, GTC).stp_mode is StpMode.NONE
