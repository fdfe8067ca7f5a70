"""Cancel racing a fill, 1,000 seeded runs through the real services, engine and settlement.

Each run: alice rests a sell, bob sends a buy that may fill it in part or whole, and cancels
of both orders land before, between or after, in a seeded order. Every order must end in
exactly one terminal state, and per order: released hold + filled cost + fee == original
hold, to the unit, measured from balances and trade rows (not from the order row itself).
"""

from __future__ import annotations

import contextlib
import random
from decimal import ROUND_CEILING, Decimal

import pytest

from accounts.models import Asset, User
from markets.models import Market
from tests.conftest import balance_of, fund
from trading.engine.matching import Engine
from trading.errors import OrderNotOpen
from trading.matching import _apply_entries
from trading.models import TERMINAL_STATUSES, Order, OrderStatus, Trade
from trading.recovery import LoopState
from trading.redis import get_redis
from trading.services.orders import cancel_order, place_order
from trading.services.settlement import settle_batch
from trading.streams import input_stream
from trading.validation import OrderSpec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

D = Decimal
RUNS = int(__import__("os").environ.get("CANCEL_RACE_RUNS", "1000"))
CENT = D("0.000001")  # USDT's unit


class _Pipeline:
    """The engine and settlement driven in-process, straight from the real input stream."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self.state = LoopState(engine=Engine())
        self.offset = "0-0"

    def drain(self) -> None:
        entries = get_redis().xrange(input_stream(self.market.symbol), min=f"({self.offset}")
        if not entries:
            return
        self.offset = entries[-1][0].decode()
        events = _apply_entries(self.state, entries, suppress_upto=0)
        if events:
            settle_batch(market_id=self.market.pk, entries=[(1, events)])


def _cost_and_fee(order: Order) -> tuple[Decimal, Decimal]:
    cost = fee = D("0")
    for trade in Trade.objects.filter(buy_order=order):
        cost += trade.quote_quantity.quantize(CENT, rounding=ROUND_CEILING)
        fee += trade.taker_fee if trade.taker_order_id == order.pk else trade.maker_fee
    return cost, fee


def test_cancel_racing_fills_ends_each_order_once_and_balances_to_the_unit(
    alice: User, bob: User, assets: dict[str, Asset], btc_usdt: Market
) -> None:
    fund(alice, assets["BTC"], "100")
    fund(bob, assets["USDT"], "10000000")
    pipeline = _Pipeline(btc_usdt)
    rng = random.Random(4)
    outcomes: dict[str, int] = {}
    for run in range(RUNS):
        usdt_before = balance_of(bob, assets["USDT"])[0]
        btc_before = balance_of(alice, assets["BTC"])[0]
        sell = place_order(
            user=alice,
            market=btc_usdt,
            spec=OrderSpec(
                side="sell",
                price=D("50000") + rng.randint(-50, 50) * D("0.01"),
                quantity=D("0.00001") * rng.randint(100, 400),
                client_order_id=f"s{run}",
            ),
        )
        if rng.random() < 0.5:
            pipeline.drain()  # the maker is resting before the taker arrives
        steps = ["buy", "cancel_sell", "cancel_buy"]
        rng.shuffle(steps)
        buy = None
        for step in steps:
            if step == "buy":
                buy = place_order(
                    user=bob,
                    market=btc_usdt,
                    spec=OrderSpec(
                        side="buy",
                        price=D("50000") + rng.randint(-60, 60) * D("0.01"),
                        quantity=D("0.00001") * rng.randint(50, 500),
                        client_order_id=f"b{run}",
                    ),
                )
            elif step == "cancel_sell" or buy is not None:
                target, owner = (sell, alice) if step == "cancel_sell" else (buy, bob)
                # OrderNotOpen: settled as filled already, the cancel lost the race cleanly.
                with contextlib.suppress(OrderNotOpen):
                    cancel_order(user=owner, order_id=target.pk)
            if rng.random() < 0.4:
                pipeline.drain()
        pipeline.drain()
        assert buy is not None
        if Order.objects.get(pk=buy.pk).is_open:  # the cancel came before the buy existed
            cancel_order(user=bob, order_id=buy.pk)
        if Order.objects.get(pk=sell.pk).is_open:
            cancel_order(user=alice, order_id=sell.pk)
        pipeline.drain()

        sell.refresh_from_db()
        buy.refresh_from_db()
        for order in (sell, buy):
            assert order.status in TERMINAL_STATUSES, (run, order.pk, order.status)
            assert order.hold_remaining == 0
            outcomes[order.status] = outcomes.get(order.status, 0) + 1
        # Buyer: released = what came back to available; cost and fee from the trade rows.
        released = balance_of(bob, assets["USDT"])[0] - (usdt_before - buy.hold_amount)
        cost, fee = _cost_and_fee(buy)
        assert released + cost + fee == buy.hold_amount, run
        assert fee == buy.fee_paid
        # Seller: the base hold is either sold or released.
        sold = sum((t.quantity for t in Trade.objects.filter(sell_order=sell)), D("0"))
        released_base = balance_of(alice, assets["BTC"])[0] - (btc_before - sell.hold_amount)
        assert released_base + sold == sell.hold_amount, run
        assert balance_of(bob, assets["USDT"])[1] == 0
        assert balance_of(alice, assets["BTC"])[1] == 0

    statuses = Order.objects.values_list("status", flat=True)
    assert all(status in TERMINAL_STATUSES for status in statuses)
    print(  # noqa: T201 - the scenario's figure
        f"cancel race: {RUNS} runs, {2 * RUNS} orders, each exactly one terminal state "
        f"({dict(sorted(outcomes.items()))}); released + cost + fee == hold in "
        f"{RUNS}/{RUNS}, 0 unit off"
    )
    assert outcomes.get(OrderStatus.FILLED, 0) > 0
    assert outcomes.get(OrderStatus.CANCELED, 0) > 0
