"""Settlement against duplicated, reordered and fenced deliveries (RELIABILITY T24, T22).

Two identical markets get the same orders from two mirrored groups of users. Market X is
settled by the real loops from a clean stream; market Y's events (from the same engine)
are delivered to the settlement buffer with 30% duplicated and 10% reordered deliveries.
Every mirrored user must end with the same balances and orders, to the unit.
"""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

import pytest
from django.db.models import Sum

from accounts.models import Asset, Balance, User
from markets.models import Market
from tests.conftest import fund, make_user
from tests.trading.conftest import make_market
from tests.trading.pipeline_helpers import loops_running, wait_settled
from trading.engine.matching import Engine
from trading.matching import _apply_entries
from trading.models import Order, SettlementCursor, Trade
from trading.recovery import LoopState
from trading.redis import get_redis
from trading.services.orders import place_order
from trading.services.settlement import SequenceGap, settle_batch
from trading.settlement_loop import EntryBuffer
from trading.streams import input_stream
from trading.workload import random_spec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

D = Decimal
USERS = 12
ORDERS = 1200
SEED = 24


def _mirror_markets(assets: dict[str, Asset]) -> tuple[Market, Market]:
    rules = {
        "lot_size": D("0.001"),
        "min_quantity": D("0.001"),
        "min_notional": D("0"),
        "last_price": D("100"),
    }
    return (
        make_market("X-USDT", assets["BTC"], assets["USDT"], **rules),
        make_market("Y-USDT", assets["BTC"], assets["USDT"], **rules),
    )


def _engine_entries(market: Market) -> list[tuple[int, list]]:
    """Run the market's input stream through an in-process engine: one entry per command."""
    state = LoopState(engine=Engine())
    out = []
    for entry in get_redis().xrange(input_stream(market.symbol)):
        events = _apply_entries(state, [entry], suppress_upto=0)
        if events:
            out.append((1, events))
    return out


def _deliveries(entries: list[tuple[int, list]], rng: random.Random) -> list[tuple[bytes, dict]]:
    """Stream entries with 30% duplicated and 10% reordered deliveries."""
    import json

    stream = [
        (
            f"{i + 1}-0".encode(),
            {
                b"e": json.dumps(ev).encode(),
                b"t": str(token).encode(),
                b"a": str(ev[0][1]).encode(),
                b"z": str(ev[-1][1]).encode(),
            },
        )
        for i, (token, ev) in enumerate(entries)
    ]
    delivered = []
    for item in stream:
        delivered.append(item)
        if rng.random() < 0.30:
            delivered.insert(rng.randint(max(0, len(delivered) - 40), len(delivered)), item)
    for i in range(len(delivered) - 1):
        if rng.random() < 0.10:
            j = min(len(delivered) - 1, i + rng.randint(1, 20))
            delivered[i], delivered[j] = delivered[j], delivered[i]
    return delivered


def _outcome(market: Market, users: list[User]) -> dict:
    orders = sorted(
        Order.objects.filter(market=market).values_list(
            "client_order_id",
            "status",
            "filled_quantity",
            "filled_quote",
            "fee_paid",
            "hold_remaining",
            "accepted_seq",
        )
    )
    balances = [
        sorted(Balance.objects.filter(user=u).values_list("asset__code", "available", "locked"))
        for u in users
    ]
    trades = Trade.objects.filter(market=market).aggregate(
        n=Sum(1), q=Sum("quantity"), mf=Sum("maker_fee"), tf=Sum("taker_fee")
    )
    return {"orders": orders, "balances": balances, "trades": trades}


def test_duplicated_and_reordered_deliveries_settle_exactly_once(assets: dict[str, Asset]) -> None:
    x, y = _mirror_markets(assets)
    users_x = [make_user(f"x{i}@example.com") for i in range(USERS)]
    users_y = [make_user(f"y{i}@example.com") for i in range(USERS)]
    for user in users_x + users_y:
        fund(user, assets["BTC"], "1000")
        fund(user, assets["USDT"], "100000000")
    rng = random.Random(SEED)
    for n in range(ORDERS):
        who = rng.randrange(USERS)
        spec = random_spec(rng, mid=D("100"), tick=D("0.01"), lot=D("0.001"), coid=f"o{n}")
        place_order(user=users_x[who], market=x, spec=spec)
        place_order(user=users_y[who], market=y, spec=spec)

    with loops_running([x.symbol]):
        wait_settled([x.symbol], timeout=120)

    entries = _engine_entries(y)
    deliveries = _deliveries(entries, rng)
    buffer = EntryBuffer(last_seq=0)
    applied = duplicates = calls = 0
    position = 0
    while position < len(deliveries):
        size = rng.randint(1, 12)
        buffer.add(deliveries[position : position + size])
        position += size
        ids, ready = buffer.ready()
        if not ids:
            continue
        result = settle_batch(market_id=y.pk, entries=ready)
        buffer.settled(ids, result.last_seq)
        applied, duplicates, calls = (
            applied + result.applied,
            duplicates + result.duplicates,
            calls + 1,
        )
    # And a whole redelivery of everything, straight to settle_batch: nothing changes.
    again = settle_batch(market_id=y.pk, entries=entries)

    total_events = sum(len(ev) for _, ev in entries)
    dup_share = 1 - len({d[0] for d in deliveries}) / len(deliveries)
    print(  # noqa: T201
        f"settlement: {len(deliveries)} deliveries ({dup_share:.0%} duplicates, reordered), "
        f"{total_events} events applied once, {duplicates + again.duplicates} duplicates "
        f"dropped, 0 double fills, 0 double postings, {calls} batches"
    )
    assert applied == total_events
    assert again.applied == 0
    assert buffer.entries == {}
    assert SettlementCursor.objects.get(market=y).last_seq == entries[-1][1][-1][1]
    assert _outcome(y, users_y) == _outcome(x, users_x)
    assert Trade.objects.filter(market=y).count() == sum(
        1 for _, ev in entries for e in ev if e[0] == "trade"
    )
    assert (
        max(
            Counter(Trade.objects.filter(market=y).values_list("seq", flat=True)).values(),
            default=1,
        )
        == 1
    )


def test_gap_writes_nothing(alice: User, assets: dict[str, Asset], btc_usdt: Market) -> None:
    fund(alice, assets["BTC"], "1")
    order = place_order(
        user=alice,
        market=btc_usdt,
        spec=random_spec(
            random.Random(1),
            mid=D("50000"),
            tick=D("0.01"),
            lot=D("0.00001"),
            coid="g1",
            side="sell",
            min_lots=200,
        ),
    )
    entries = _engine_entries(btc_usdt)
    SettlementCursor.objects.get_or_create(market=btc_usdt)
    late = [(token, [e for e in ev if e[1] > 1]) for token, ev in entries]

    with pytest.raises(SequenceGap):
        settle_batch(market_id=btc_usdt.pk, entries=late)

    assert SettlementCursor.objects.get(market=btc_usdt).last_seq == 0
    order.refresh_from_db()
    assert order.accepted_seq is None
    settle_batch(market_id=btc_usdt.pk, entries=entries)  # the hole filled: settles


def test_fenced_entries_are_never_applied(
    alice: User, bob: User, assets: dict[str, Asset], btc_usdt: Market
) -> None:
    fund(alice, assets["BTC"], "1")
    fund(bob, assets["USDT"], "100000")
    rng = random.Random(2)
    sell = place_order(
        user=alice,
        market=btc_usdt,
        spec=random_spec(
            rng,
            mid=D("50000"),
            tick=D("0.01"),
            lot=D("0.00001"),
            coid="s",
            side="sell",
            kind="limit",
            min_lots=200,
        ),
    )
    entries = _engine_entries(btc_usdt)
    SettlementCursor.objects.get_or_create(market=btc_usdt)
    settle_batch(market_id=btc_usdt.pk, entries=[(7, entries[0][1])])  # owner with token 7
    seq = SettlementCursor.objects.get(market=btc_usdt).last_seq
    # A deposed owner (token 6) reports a fill of the resting order.
    forged = [
        ["trade", seq + 1, sell.pk, sell.pk, alice.pk, bob.pk, 5_000_000, 10, "buy", False, False]
    ]

    result = settle_batch(market_id=btc_usdt.pk, entries=[(6, forged)])

    assert (result.applied, result.fenced) == (0, 1)
    assert Trade.objects.count() == 0
    cursor = SettlementCursor.objects.get(market=btc_usdt)
    assert (cursor.last_seq, cursor.fence_token) == (seq, 7)
    print("fenced entries: 1 from token 6 after token 7, 0 settled")  # noqa: T201
