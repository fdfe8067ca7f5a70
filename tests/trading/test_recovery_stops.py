"""Stop orders through settlement and a Redis flush: a triggered stop comes back as a limit.

A STOP_LIMIT whose stop triggered and whose limit then rests unfilled is, by then, a resting
limit order: settlement records the trigger (``Order.triggered_seq``) and a rebuild of the
book from PostgreSQL puts it back at its price, where it joined the level when it
triggered, never as a stop waiting to trigger again. A stop that has not triggered is
rebuilt as a pending stop.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import Asset, User
from markets.models import Market
from tests.conftest import balance_of, fund, make_user
from tests.trading.pipeline_helpers import loops_running, wait_settled
from trading.models import OPEN_STATUSES, Order, OrderStatus, Trade
from trading.recovery import load_latest_state
from trading.redis import get_redis
from trading.services.orders import place_order
from trading.streams import ready_key
from trading.validation import OrderSpec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

D = Decimal
LOT = D("0.00001")  # btc_usdt's lot and tick
TICK = D("0.01")


def limit(side: str, price: str, quantity: str) -> OrderSpec:
    return OrderSpec(side=side, price=D(price), quantity=D(quantity))


def stop_limit(stop: str, price: str, quantity: str) -> OrderSpec:
    return OrderSpec(
        side="buy",
        order_type="stop_limit",
        stop_price=D(stop),
        price=D(price),
        quantity=D(quantity),
    )


def _traders(assets: dict[str, Asset]) -> dict[str, User]:
    users = {name: make_user(f"{name}@example.com") for name in ("s", "b", "c", "d", "e", "f")}
    for name in ("s", "f"):
        fund(users[name], assets["BTC"], "1")
    for name in ("b", "c", "d", "e"):
        fund(users[name], assets["USDT"], "100000")
    return users


def _trigger_a_stop(market: Market, users: dict[str, User]) -> dict[str, Order]:
    """Stop 1 triggers on c's trade at 50100 and rests at 50050, between d's and e's bids;
    stop 2 (50500) never triggers."""
    orders = {
        "ask": place_order(user=users["s"], market=market, spec=limit("sell", "50100", "0.1")),
        "stop1": place_order(
            user=users["b"], market=market, spec=stop_limit("50100", "50050", "0.2")
        ),
        "d": place_order(user=users["d"], market=market, spec=limit("buy", "50050", "0.1")),
        "stop2": place_order(
            user=users["b"], market=market, spec=stop_limit("50500", "50500", "0.1")
        ),
        "taker": place_order(user=users["c"], market=market, spec=limit("buy", "50100", "0.1")),
        "e": place_order(user=users["e"], market=market, spec=limit("buy", "50050", "0.1")),
    }
    with loops_running([market.symbol]):
        wait_settled([market.symbol])
    for order in orders.values():
        order.refresh_from_db()
    return orders


def test_settlement_records_the_trigger_of_a_stop(
    assets: dict[str, Asset], btc_usdt: Market
) -> None:
    users = _traders(assets)

    orders = _trigger_a_stop(btc_usdt, users)

    trade = Trade.objects.get()
    assert (trade.maker_order_id, trade.taker_order_id, trade.price) == (
        orders["ask"].pk,
        orders["taker"].pk,
        D("50100"),
    )
    stop1, stop2 = orders["stop1"], orders["stop2"]
    # The taker's events: accepted, trade, the ask level gone, then the stop's trigger.
    assert stop1.triggered_seq == trade.seq + 2
    assert (stop1.status, stop1.filled_quantity) == (OrderStatus.NEW, D("0"))
    assert stop1.accepted_seq is not None
    assert stop1.accepted_seq < orders["d"].accepted_seq < stop1.triggered_seq
    assert stop2.triggered_seq is None
    assert stop2.status == OrderStatus.NEW
    assert all(
        o.triggered_seq is None for name, o in orders.items() if name not in ("stop1", "stop2")
    )


def test_redis_flush_restores_a_triggered_stop_as_a_resting_limit(
    assets: dict[str, Asset], btc_usdt: Market
) -> None:
    users = _traders(assets)
    orders = _trigger_a_stop(btc_usdt, users)
    stop1, stop2 = orders["stop1"], orders["stop2"]
    triggered_seq = stop1.triggered_seq
    client = get_redis()

    client.flushdb()  # the exchange's own Redis DB only: the streams and snapshots' marker
    with loops_running([btc_usdt.symbol]):
        # The restarted loop rebuilds the book from PostgreSQL (no ready marker) and matches
        # this order against it once, whether it reached the new stream before or after.
        seller = place_order(user=users["f"], market=btc_usdt, spec=limit("sell", "50050", "0.25"))
        wait_settled([btc_usdt.symbol])

    # Price-time priority as before the flush: d's bid, then the stop (it joined the level
    # when it triggered), then e's; a stop waiting for its trigger would not have traded.
    fills = list(
        Trade.objects.filter(taker_order=seller)
        .order_by("seq")
        .values_list("maker_order_id", "price", "quantity")
    )
    assert fills == [
        (orders["d"].pk, D("50050"), D("0.1")),
        (stop1.pk, D("50050"), D("0.15")),
    ]
    stop1.refresh_from_db()
    assert (stop1.status, stop1.filled_quantity, stop1.triggered_seq) == (
        OrderStatus.PARTIALLY_FILLED,
        D("0.15"),
        triggered_seq,
    )
    # The book the loop ended with == PostgreSQL's open orders; stop 2 still waits.
    state = load_latest_state(
        market_id=btc_usdt.pk, min_token=int(client.get(ready_key(btc_usdt.symbol)))
    )
    assert state is not None
    assert list(state.engine.open_orders()) == [
        (stop1.pk, users["b"].pk, "buy", int(D("50050") / TICK), int(D("0.05") / LOT)),
        (orders["e"].pk, users["e"].pk, "buy", int(D("50050") / TICK), int(D("0.1") / LOT)),
    ]
    assert state.engine.pending_stops() == [
        (stop2.pk, users["b"].pk, True, int(D("50500") / TICK), int(D("0.1") / LOT))
    ]
    open_in_db = set(
        Order.objects.filter(market=btc_usdt, status__in=OPEN_STATUSES).values_list("pk", flat=True)
    )
    assert open_in_db == {stop1.pk, stop2.pk, orders["e"].pk}
    # Nothing lost or duplicated: every order processed once, each trade once.
    assert not Order.objects.filter(accepted_seq__isnull=True).exists()
    seqs = list(Trade.objects.values_list("seq", flat=True))
    assert len(seqs) == len(set(seqs)) == 3
    # b paid for the 0.15 filled (7507.50 and a 0.1% maker fee) and nothing else; what is
    # locked is what its two open stops still hold.
    stop2.refresh_from_db()
    available, locked = balance_of(users["b"], assets["USDT"])
    assert available + locked == D("100000") - D("7507.50") - D("7.5075")
    assert locked == stop1.hold_remaining + stop2.hold_remaining
