"""The matching loop and settlement end to end: real services, real Redis, real PostgreSQL."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from accounts.models import Asset, Balance, BalanceKind, User
from exchange.publish import flush_published
from markets.models import Market
from tests.conftest import balance_of, fund
from tests.trading.pipeline_helpers import loops_running, wait_settled
from trading.lease import Lease
from trading.matching import run_matching_loop
from trading.models import Order, OrderStatus, OutboxEntry, SettlementCursor, Trade
from trading.services.orders import cancel_order, place_order
from trading.services.outbox import publish_outbox
from trading.validation import OrderSpec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

D = Decimal


def limit(side: str, price: str, quantity: str, coid: str | None = None) -> OrderSpec:
    return OrderSpec(side=side, price=D(price), quantity=D(quantity), client_order_id=coid)


@pytest.fixture
def funded(alice: User, bob: User, assets: dict[str, Asset], btc_usdt: Market) -> Market:
    fund(alice, assets["BTC"], "2")
    fund(bob, assets["USDT"], "200000")
    return btc_usdt


def test_limit_orders_match_and_settle_exactly(
    alice: User, bob: User, assets: dict[str, Asset], funded: Market
) -> None:
    sell = place_order(user=alice, market=funded, spec=limit("sell", "50000", "1"))
    buy = place_order(user=bob, market=funded, spec=limit("buy", "50100", "0.4"))

    with loops_running([funded.symbol]):
        wait_settled([funded.symbol])

    trade = Trade.objects.get()
    assert (trade.seq, trade.price, trade.quantity, trade.quote_quantity) == (
        4,
        D("50000"),
        D("0.4"),
        D("20000"),
    )
    assert (trade.maker_order_id, trade.taker_order_id, trade.taker_side) == (
        sell.pk,
        buy.pk,
        "buy",
    )
    assert (trade.maker_fee, trade.taker_fee) == (D("20"), D("40"))
    sell.refresh_from_db()
    buy.refresh_from_db()
    assert (sell.status, sell.filled_quantity, sell.hold_remaining) == (
        OrderStatus.PARTIALLY_FILLED,
        D("0.4"),
        D("0.6"),
    )
    # bob held 0.4 x 50100 x 1.002 = 20080.08; paid 20000 + 40 fee; the rest came back.
    assert (buy.status, buy.filled_quantity, buy.fee_paid, buy.hold_remaining) == (
        OrderStatus.FILLED,
        D("0.4"),
        D("40"),
        D("0"),
    )
    assert buy.hold_amount == D("20080.080000")
    assert balance_of(bob, assets["USDT"]) == (D("179960"), D("0"))
    assert balance_of(bob, assets["BTC"]) == (D("0.4"), D("0"))
    assert balance_of(alice, assets["BTC"]) == (D("1"), D("0.6"))
    assert balance_of(alice, assets["USDT"]) == (D("19980"), D("0"))
    fees = Balance.objects.get(kind=BalanceKind.FEES, asset=assets["USDT"])
    assert fees.available == D("60")
    funded.refresh_from_db()
    assert funded.last_price == D("50000")
    assert SettlementCursor.objects.get(market=funded).last_seq == 5


def test_resent_commands_are_applied_once(
    alice: User, bob: User, assets: dict[str, Asset], funded: Market
) -> None:
    place_order(user=alice, market=funded, spec=limit("sell", "50000", "1"))
    place_order(user=bob, market=funded, spec=limit("buy", "50000", "0.5"))
    entries = list(OutboxEntry.objects.select_related("market"))
    for _ in range(3):  # the sweeper racing the after-commit publish, three times over
        publish_outbox(entries=entries)

    with loops_running([funded.symbol]):
        wait_settled([funded.symbol])

    assert Trade.objects.count() == 1
    assert balance_of(bob, assets["BTC"]) == (D("0.5"), D("0"))
    print("re-sent commands x3: 1 trade, 0 double fills")  # noqa: T201


def test_cancel_releases_the_whole_hold(
    alice: User, assets: dict[str, Asset], funded: Market
) -> None:
    order = place_order(user=alice, market=funded, spec=limit("sell", "51000", "0.7"))
    with loops_running([funded.symbol]):
        wait_settled([funded.symbol])
        cancel_order(user=alice, order_id=order.pk)
        wait_settled([funded.symbol])

    order.refresh_from_db()
    assert (order.status, order.hold_remaining) == (OrderStatus.CANCELED, D("0"))
    assert balance_of(alice, assets["BTC"]) == (D("2"), D("0"))


def test_rejected_order_releases_its_hold(
    bob: User, assets: dict[str, Asset], funded: Market
) -> None:
    # A post-only order that would take is refused by the engine, not by place_order.
    place_order(user=bob, market=funded, spec=limit("buy", "50000", "0.1"))
    order = place_order(
        user=bob,
        market=funded,
        spec=OrderSpec(side="buy", order_type="limit_maker", price=D("50000"), quantity=D("0.1")),
    )
    alice = User.objects.create_user(email="maker@example.com", password="x" * 12)
    fund(alice, assets["BTC"], "1")
    maker = place_order(
        user=alice,
        market=funded,
        spec=OrderSpec(side="sell", order_type="limit_maker", price=D("50000"), quantity=D("0.1")),
    )

    with loops_running([funded.symbol]):
        wait_settled([funded.symbol])

    maker.refresh_from_db()
    assert (maker.status, maker.reject_reason, maker.hold_remaining) == (
        OrderStatus.REJECTED,
        "would_take",
        D("0"),
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.NEW
    assert order.accepted_seq is not None
    assert balance_of(alice, assets["BTC"]) == (D("1"), D("0"))


def test_a_loop_does_not_start_while_another_owns_the_market(funded: Market) -> None:
    owner = Lease(role="matching", symbol=funded.symbol)
    assert owner.acquire()
    try:
        result = run_matching_loop(funded.symbol, max_seconds=1)
    finally:
        owner.release()
    assert (result.owned, result.commands, result.events_written) == (False, 0, 0)


def test_settled_updates_reach_channels_groups(alice: User, bob: User, funded: Market) -> None:
    layer = get_channel_layer()
    channels = {}
    for group in (f"depth.{funded.symbol}", f"trades.{funded.symbol}", f"user.{bob.pk}"):
        channels[group] = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(group, channels[group])
    place_order(user=alice, market=funded, spec=limit("sell", "50000", "1"))
    place_order(user=bob, market=funded, spec=limit("buy", "50000", "0.25"))

    with loops_running([funded.symbol]):
        wait_settled([funded.symbol])
    assert flush_published()

    def drain(group: str) -> list[dict]:
        found = []
        while True:
            try:
                found.append(async_to_sync(_receive)(layer, channels[group]))
            except TimeoutError:
                return found

    trades = [t for m in drain(f"trades.{funded.symbol}") for t in m["trades"]]
    assert trades == [{"seq": 4, "price": "50000.00", "quantity": "0.25000", "taker_side": "buy"}]
    depth = drain(f"depth.{funded.symbol}")
    assert depth
    assert depth[0]["type"] == "depth.diff"
    assert all(a["seq"] == b["prev_seq"] for a, b in itertools.pairwise(depth))
    assert depth[-1]["seq"] == SettlementCursor.objects.get(market=funded).last_seq
    mine = drain(f"user.{bob.pk}")
    types = {m["type"] for m in mine}
    assert types == {"order.update", "balance.update"}
    last_order = [o for m in mine if m["type"] == "order.update" for o in m["orders"]][-1]
    assert last_order["status"] == "filled"
    assert Order.objects.filter(user=bob).get().status == "filled"


async def _receive(layer, channel: str) -> dict:  # type: ignore[no-untyped-def]
    import asyncio

    try:
        return await asyncio.wait_for(layer.receive(channel), timeout=0.5)
    except TimeoutError as exc:
        raise TimeoutError from exc
