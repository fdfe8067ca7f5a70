"""The matching loop honours the market status for commands already queued.

place_order refuses new orders outside TRADING; these tests queue placements while the market
trades, change its status, and only then run the loop: the placements are rejected with the
status's code and settlement releases their holds, while cancels go through. Real loops,
real Redis, real PostgreSQL.
"""

from __future__ import annotations

import struct
import time
from decimal import Decimal

import pytest

from accounts.models import Asset, User
from markets.models import Market, MarketStatus
from markets.services import set_market_status
from tests.conftest import balance_of, fund, ledger_snapshot
from tests.trading.pipeline_helpers import loops_running, start_loops, wait_settled
from trading.engine.matching import Engine
from trading.models import EngineSnapshot, Order, OrderStatus, SettlementCursor, Trade
from trading.recovery import (
    LoopState,
    decode_state,
    encode_state,
    load_latest_state,
)
from trading.redis import get_redis
from trading.services.orders import cancel_order, place_order
from trading.streams import consumed_key, input_stream, ready_key
from trading.validation import OrderSpec

D = Decimal
LOT = D("0.00001")  # btc_usdt's lot and tick
TICK = D("0.01")


def limit(side: str, price: str, quantity: str) -> OrderSpec:
    return OrderSpec(side=side, price=D(price), quantity=D(quantity))


@pytest.fixture
def funded(alice: User, bob: User, assets: dict[str, Asset], btc_usdt: Market) -> Market:
    fund(alice, assets["BTC"], "2")
    fund(bob, assets["USDT"], "200000")
    return btc_usdt


def _settle(market: Market) -> None:
    with loops_running([market.symbol]):
        wait_settled([market.symbol])


def _queue_placements(alice: User, bob: User, market: Market) -> list[Order]:
    """Placements that would trade, rest and wait as a stop, were the market trading."""
    stop = OrderSpec(
        side="buy", order_type="stop_limit", stop_price=D("50500"), price=D("50600"),
        quantity=D("0.1"),
    )  # fmt: skip
    return [
        place_order(user=bob, market=market, spec=limit("buy", "50100", "0.4")),
        place_order(user=alice, market=market, spec=limit("sell", "50200", "0.5")),
        place_order(user=bob, market=market, spec=stop),
    ]


@pytest.mark.parametrize(
    ("_case", "status", "code"),
    [
        ("cancel only", MarketStatus.CANCEL_ONLY, "market_cancel_only"),
        ("halted", MarketStatus.HALTED, "market_halted"),
    ],
)
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db")
def test_queued_placements_are_rejected_and_cancels_go_through(
    _case: str,
    status: str,
    code: str,
    alice: User,
    bob: User,
    staff: User,
    assets: dict[str, Asset],
    funded: Market,
) -> None:
    before = ledger_snapshot()["balances"]
    resting = place_order(user=alice, market=funded, spec=limit("sell", "50000", "1"))
    _settle(funded)
    cursor_before = SettlementCursor.objects.get(market=funded).last_seq
    queued = _queue_placements(alice, bob, funded)
    if status == MarketStatus.HALTED:  # a halted market refuses new cancels: queue it first
        cancel_order(user=alice, order_id=resting.pk)
        set_market_status(market=funded, status=status, actor=staff)
    else:
        set_market_status(market=funded, status=status, actor=staff)
        cancel_order(user=alice, order_id=resting.pk)

    _settle(funded)

    for order in queued:
        order.refresh_from_db()
        assert (
            order.status,
            order.reject_reason,
            order.accepted_seq,
            order.filled_quantity,
            order.hold_remaining,
        ) == (OrderStatus.REJECTED, code, None, D("0"), D("0"))
    resting.refresh_from_db()
    assert (resting.status, resting.filled_quantity, resting.hold_remaining) == (
        OrderStatus.CANCELED,
        D("0"),
        D("0"),
    )
    # Every hold back to the unit, and nothing else moved: no trade, no fee, no price.
    assert balance_of(alice, assets["BTC"]) == (D("2"), D("0"))
    assert balance_of(bob, assets["USDT"]) == (D("200000"), D("0"))
    assert ledger_snapshot()["balances"] == before
    assert not Trade.objects.exists()
    funded.refresh_from_db()
    assert (funded.status, funded.last_price) == (status, D("50000"))
    # Three rejections, then the cancel and its level change: no other event.
    assert SettlementCursor.objects.get(market=funded).last_seq == cursor_before + 5


def _match_without_settling(market: Market) -> None:
    """Run the matching loop alone until it consumed the input stream, then stop it."""
    client = get_redis()
    loops = start_loops([market.symbol], settlement=False)
    try:
        tail = client.xrevrange(input_stream(market.symbol), count=1)[0][0]
        deadline = time.monotonic() + 30
        while client.get(consumed_key(market.symbol)) != tail:
            assert time.monotonic() < deadline, "the matching loop did not consume the stream"
            time.sleep(0.02)
    finally:
        loops.join()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db")
def test_replay_decides_placements_as_the_original_run_did(
    alice: User, bob: User, staff: User, assets: dict[str, Asset], funded: Market
) -> None:
    resting = place_order(user=alice, market=funded, spec=limit("sell", "50000", "1"))
    _settle(funded)
    settled_seq = SettlementCursor.objects.get(market=funded).last_seq
    rejected = place_order(user=bob, market=funded, spec=limit("buy", "50100", "0.4"))
    set_market_status(market=funded, status=MarketStatus.CANCEL_ONLY, actor=staff)
    _match_without_settling(funded)  # writes the rejection; settles nothing
    # Keep only the snapshot taken when the gate closed, before the rejection: a successor
    # restores it and replays the placement after the market has resumed trading.
    gated = [
        s.pk
        for s in EngineSnapshot.objects.filter(market=funded, seq=settled_seq).order_by("pk")
        if decode_state(bytes(s.data), input_offset=s.input_offset).gate == "market_cancel_only"
    ]
    assert len(gated) == 1
    EngineSnapshot.objects.filter(market=funded, pk__gt=gated[0]).delete()
    set_market_status(market=funded, status=MarketStatus.TRADING, actor=staff)

    with loops_running([funded.symbol]):
        wait_settled([funded.symbol])
        accepted = place_order(user=bob, market=funded, spec=limit("buy", "50100", "0.4"))
        wait_settled([funded.symbol])

    rejected.refresh_from_db()
    assert (rejected.status, rejected.reject_reason, rejected.hold_remaining) == (
        OrderStatus.REJECTED,
        "market_cancel_only",
        D("0"),
    )
    accepted.refresh_from_db()
    assert (accepted.status, accepted.filled_quantity) == (OrderStatus.FILLED, D("0.4"))
    trade = Trade.objects.get()
    assert (trade.maker_order_id, trade.taker_order_id) == (resting.pk, accepted.pk)
    # The engine agrees with PostgreSQL: the replay did not fill the rejected order.
    state = load_latest_state(
        market_id=funded.pk, min_token=int(get_redis().get(ready_key(funded.symbol)))
    )
    assert state is not None
    assert state.gate == ""
    assert list(state.engine.open_orders()) == [
        (resting.pk, alice.pk, "sell", int(D("50000") / TICK), int(D("0.6") / LOT))
    ]


def test_snapshots_keep_the_gate_and_read_ungated_ones() -> None:
    engine = Engine()
    engine.apply_dict(
        {
            "type": "place_order", "order_id": 1, "account_id": 7, "side": "sell",
            "order_type": "limit", "tif": "gtc", "price_ticks": 100, "qty_lots": 5,
        }
    )  # fmt: skip
    state = LoopState(engine=engine, applied={11: None, 12: None}, gate="market_halted")

    restored = decode_state(encode_state(state), input_offset="5-0")

    assert (restored.gate, list(restored.applied), restored.input_offset) == (
        "market_halted",
        [11, 12],
        "5-0",
    )
    assert restored.engine.state_hash() == engine.state_hash()
    # A blob written before the gate existed: the same layout without it, replayed ungated.
    engine_bytes = engine.snapshot()
    cids = struct.pack("<2q", 11, 12)
    old = b"LOOP1" + struct.pack("<QI", len(engine_bytes), 2) + engine_bytes + cids
    ungated = decode_state(old, input_offset="5-0")
    assert (ungated.gate, list(ungated.applied)) == ("", [11, 12])
    assert ungated.engine.state_hash() == engine.state_hash()
