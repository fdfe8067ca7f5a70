"""Regressions of the fault campaign (issue #8, defects 1-3), each at its exact moment.

* an output entry delivered to a consumer that then died or was deposed is settled by the
  owner while it runs, not only when an owner starts;
* after a Redis flush the engine applies commands in acceptance (outbox) order: a cancel
  published after the flush, or while the book is being rebuilt, never overtakes its
  placement;
* a settlement transaction that stops half-way (a paused process) holds no lock another
  market's settlement needs, and the loops' sessions end such a transaction by themselves.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import redis
from django.db import OperationalError, connection, transaction
from django.test import override_settings

import trading.matching
import trading.services.settlement
from accounts.models import Asset, User
from markets.models import Market
from tests.conftest import balance_of, fund, make_user
from tests.trading.conftest import make_market
from tests.trading.pipeline_helpers import loops_running, wait_settled
from trading.dbsession import end_loop_session_limits, use_loop_session_limits
from trading.matching import run_matching_loop
from trading.models import Order, OrderStatus, SettlementCursor, Trade
from trading.services.orders import cancel_order, place_order
from trading.services.settlement import settle_batch
from trading.settlement_loop import GROUP, run_settlement_loop
from trading.streams import output_stream
from trading.validation import OrderSpec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

D = Decimal


def limit(side: str, price: str, quantity: str) -> OrderSpec:
    return OrderSpec(side=side, price=D(price), quantity=D(quantity))


def _market(assets: dict[str, Asset], symbol: str) -> Market:
    return make_market(
        symbol,
        assets["BTC"],
        assets["USDT"],
        lot_size=D("0.001"),
        min_quantity=D("0.001"),
        min_notional=D("0"),
        last_price=D("100"),
    )


def _traders(assets: dict[str, Asset], prefix: str, count: int = 2) -> list[User]:
    users = [make_user(f"{prefix}{i}@example.com") for i in range(count)]
    for user in users:
        fund(user, assets["BTC"], "100")
        fund(user, assets["USDT"], "100000")
    return users


def _match_only(symbol: str) -> None:
    result = run_matching_loop(symbol, idle_exit_seconds=0.5, max_seconds=20)
    assert result.owned


# ------------------------------------------------------------------ stranded output entries


def test_an_entry_taken_by_a_dead_consumer_is_settled_while_the_owner_runs(
    assets: dict[str, Asset], redis_db: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trading.matching, "BATCH_SIZE", 2)  # an output entry per two commands
    market = _market(assets, "ST-USDT")
    alice, bob = _traders(assets, "st")
    for k in range(6):
        place_order(user=alice, market=market, spec=limit("sell", "100", "1"))
        place_order(user=bob, market=market, spec=limit("buy", "100", str(k % 2 + 1)))
    _match_only(market.symbol)
    entries = redis_db.xrange(output_stream(market.symbol))
    assert len(entries) >= 2
    # Replay the matching loop's output into a fresh stream while the owner runs, the
    # first entry straight into another consumer's hands (MULTI: the owner, blocked in
    # XREADGROUP, is served only after the transaction), as a consumer that read it and
    # then died or was deposed leaves it.
    redis_db.delete(output_stream(market.symbol))
    redis_db.xgroup_create(output_stream(market.symbol), GROUP, id="0", mkstream=True)
    owner = threading.Thread(
        target=run_settlement_loop,
        args=(market.symbol,),
        kwargs={"idle_exit_seconds": 3, "max_seconds": 20},
    )
    owner.start()
    time.sleep(0.5)  # the owner is up (and claimed what was pending then: nothing)
    pipe = redis_db.pipeline(transaction=True)
    pipe.xadd(output_stream(market.symbol), entries[0][1])
    pipe.xreadgroup(GROUP, "dead-consumer", {output_stream(market.symbol): ">"}, count=1)
    assert pipe.execute()[1], "the other consumer did not get the entry"
    for _, fields in entries[1:]:
        redis_db.xadd(output_stream(market.symbol), fields)
    owner.join(30)

    last = int(entries[-1][1][b"z"])
    assert SettlementCursor.objects.get(market=market).last_seq == last
    assert Trade.objects.filter(market=market).count() == 6
    assert redis_db.xpending(output_stream(market.symbol), GROUP)["pending"] == 0


def test_entries_another_consumer_settled_leave_no_hole_for_good(
    assets: dict[str, Asset], redis_db: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After a flush the deposed owner may read and settle a few entries of the new stream
    # before it notices; the new owner, which read the cursor before that, must move on.
    monkeypatch.setattr(trading.matching, "BATCH_SIZE", 2)
    market = _market(assets, "SO-USDT")
    alice, bob = _traders(assets, "so")
    for k in range(6):
        place_order(user=alice, market=market, spec=limit("sell", "100", "1"))
        place_order(user=bob, market=market, spec=limit("buy", "100", str(k % 2 + 1)))
    _match_only(market.symbol)
    entries = redis_db.xrange(output_stream(market.symbol))
    redis_db.delete(output_stream(market.symbol))
    redis_db.xgroup_create(output_stream(market.symbol), GROUP, id="0", mkstream=True)
    owner = threading.Thread(
        target=run_settlement_loop,
        args=(market.symbol,),
        kwargs={"idle_exit_seconds": 3, "max_seconds": 20},
    )
    owner.start()
    time.sleep(0.5)  # the owner has read the cursor (0)
    pipe = redis_db.pipeline(transaction=True)
    for _, fields in entries[:2]:
        pipe.xadd(output_stream(market.symbol), fields)
    pipe.xreadgroup(GROUP, "deposed", {output_stream(market.symbol): ">"}, count=2)
    taken = pipe.execute()[-1][0][1]
    settle_batch(
        market_id=market.pk,
        entries=[(int(f[b"t"]), json.loads(f[b"e"])) for _, f in taken],
    )
    redis_db.xack(output_stream(market.symbol), GROUP, *[entry_id for entry_id, _ in taken])
    for _, fields in entries[2:]:
        redis_db.xadd(output_stream(market.symbol), fields)
    owner.join(30)

    assert SettlementCursor.objects.get(market=market).last_seq == int(entries[-1][1][b"z"])
    assert Trade.objects.filter(market=market).count() == 6


# ------------------------------------------------------------------ order after a flush


def _cancel_survives_a_flush(
    assets: dict[str, Asset],
    redis_db: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    *,
    symbol: str,
    settle_first: bool,
    cancel_during_rebuild: bool,
) -> None:
    market = _market(assets, symbol)
    alice, bob = _traders(assets, symbol[:2].lower())
    if settle_first:  # the cursor is past 0: the rebuild starts reading at the stream's tail
        place_order(user=alice, market=market, spec=limit("sell", "100", "1"))
        place_order(user=bob, market=market, spec=limit("buy", "100", "1"))
        with loops_running([market.symbol]):
            wait_settled([market.symbol])
    # Accepted and published, but the flush loses it before any loop applies it.
    resting = place_order(user=alice, market=market, spec=limit("sell", "101", "2"))
    redis_db.flushdb()
    if cancel_during_rebuild:
        # Published after the rebuild read the stream's tail and PostgreSQL, before it
        # re-applies the unsettled rows.
        real = trading.matching.rebuild_from_database

        def rebuild_then_cancel(**kwargs: Any) -> Any:
            state = real(**kwargs)
            cancel_order(user=alice, order_id=resting.pk)
            return state

        monkeypatch.setattr(trading.matching, "rebuild_from_database", rebuild_then_cancel)
    else:
        cancel_order(user=alice, order_id=resting.pk)

    with loops_running([market.symbol]):
        # The flushed streams look caught up until the loop has rebuilt: wait for the
        # rebuild's first settled batch, then for everything.
        deadline = time.monotonic() + 30
        while not Order.objects.filter(pk=resting.pk, accepted_seq__isnull=False).exists():
            assert time.monotonic() < deadline, "the placement was never applied"
            time.sleep(0.05)
        wait_settled([market.symbol])

    resting.refresh_from_db()
    assert resting.status == OrderStatus.CANCELED
    assert resting.hold_remaining == 0
    assert balance_of(alice, assets["BTC"])[1] == 0  # nothing locked for a cancelled order


@pytest.mark.parametrize(
    ("_case", "settle_first", "cancel_during_rebuild"),
    [
        ("nothing settled, cancel after the flush", False, False),
        ("settled before, cancel after the flush", True, False),
        ("settled before, cancel during the rebuild", True, True),
    ],
)
def test_a_cancel_never_overtakes_its_placement_after_a_flush(
    _case: str,
    settle_first: bool,
    cancel_during_rebuild: bool,
    assets: dict[str, Asset],
    redis_db: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    symbol = {False: "FA-USDT", True: "FB-USDT" if not cancel_during_rebuild else "FC-USDT"}
    _cancel_survives_a_flush(
        assets,
        redis_db,
        monkeypatch,
        symbol=symbol[settle_first],
        settle_first=settle_first,
        cancel_during_rebuild=cancel_during_rebuild,
    )


# ------------------------------------------------------------------ a paused settlement


def _blocking_in(thread_name: str, gate: threading.Event, entered: threading.Event) -> Callable:
    real = trading.services.settlement.read_balances

    def read_balances(**kwargs: Any) -> Any:
        # After apply_moves, before COMMIT: every lock of the batch is held here.
        if threading.current_thread().name == thread_name:
            entered.set()
            gate.wait(30)
        return real(**kwargs)

    return read_balances


def test_a_stopped_settlement_of_one_market_never_blocks_another(
    assets: dict[str, Asset], monkeypatch: pytest.MonkeyPatch
) -> None:
    stuck, free = _market(assets, "PA-USDT"), _market(assets, "PB-USDT")
    for market, prefix in ((stuck, "pa"), (free, "pb")):
        seller, buyer = _traders(assets, prefix)
        place_order(user=seller, market=market, spec=limit("sell", "100", "1"))
        place_order(user=buyer, market=market, spec=limit("buy", "100", "1"))
        _match_only(market.symbol)
    gate, entered = threading.Event(), threading.Event()
    monkeypatch.setattr(
        trading.services.settlement, "read_balances", _blocking_in("stuck", gate, entered)
    )

    def settle(symbol: str) -> None:
        try:
            run_settlement_loop(symbol, idle_exit_seconds=0.5, max_seconds=20)
        finally:
            connection.close()

    stuck_thread = threading.Thread(target=settle, args=(stuck.symbol,), name="stuck")
    stuck_thread.start()
    try:
        assert entered.wait(10), "the stuck market's batch never reached its commit"
        started = time.monotonic()
        free_thread = threading.Thread(target=settle, args=(free.symbol,), name="free")
        free_thread.start()
        while time.monotonic() - started < 10 and not Trade.objects.filter(market=free).exists():
            time.sleep(0.02)
        waited = time.monotonic() - started
        settled_meanwhile = Trade.objects.filter(market=free).exists()
    finally:
        gate.set()
        stuck_thread.join(30)
    free_thread.join(30)

    print(f"other market settled {waited:.2f}s into the stopped batch")  # noqa: T201
    assert settled_meanwhile
    assert Trade.objects.filter(market=stuck).count() == 1  # and the stuck one finished later


@override_settings(LOOP_DB_IDLE_IN_TRANSACTION_MS=500, LOOP_DB_LOCK_TIMEOUT_MS=4000)
def test_a_loop_session_stopped_in_a_transaction_gives_its_locks_up(
    assets: dict[str, Asset],
) -> None:
    market = _market(assets, "PS-USDT")
    SettlementCursor.objects.create(market=market)
    locked, outcome = threading.Event(), {}

    def stopped_owner() -> None:
        use_loop_session_limits()
        try:
            with transaction.atomic():
                SettlementCursor.objects.select_for_update().get(market=market)
                locked.set()
                time.sleep(2)  # "SIGSTOP": the session sits idle in its transaction
                SettlementCursor.objects.filter(market=market).update(last_seq=99)
        except OperationalError as exc:
            outcome["error"] = str(exc)
        finally:
            end_loop_session_limits()
            connection.close()

    owner = threading.Thread(target=stopped_owner)
    owner.start()
    assert locked.wait(10)
    started = time.monotonic()
    with transaction.atomic():  # a successor: waits for the lock, gets it once the session ends
        SettlementCursor.objects.select_for_update().get(market=market)
        waited = time.monotonic() - started
    owner.join(10)

    assert waited < 1.9  # released by the idle limit, before the owner would have woken
    assert "error" in outcome  # its session is gone: the stopped owner writes nothing more
    assert SettlementCursor.objects.get(market=market).last_seq == 0
