"""Crash recovery with real processes: SIGKILL of the loops, and Redis losing everything.

T17: the matching worker (and every other time the settlement worker) is SIGKILLed at
random moments while 2,000 orders flow in; a replacement takes over when the lease runs
out, restores the newest snapshot and replays. The result must equal a reference engine
fed the same input stream: same trades (seq, maker, taker, price, quantity), same final
order states, every accepted order processed once, no hold left behind, ledger clean.

T20: the exchange's Redis database is flushed (FLUSHDB of its own DB number: the issue's
"FLUSHALL", scoped so that other users of the server are untouched) in the middle of a run.
The loops lose their leases and stop; restarted (as the beat watchdog does), the matching
loop rebuilds the book from PostgreSQL and re-sends every unsettled command.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from decimal import Decimal

import pytest

from accounts.models import Asset, User
from markets.models import Market
from tests.conftest import fund, make_user
from tests.trading.conftest import make_market
from tests.trading.pipeline_helpers import (
    read_log,
    spawn_worker,
    start_loops,
    stop_worker,
    wait_settled,
)
from trading.engine.matching import Engine
from trading.matching import _apply_entries
from trading.models import OPEN_STATUSES, Order, OrderStatus, Trade
from trading.recovery import LoopState, load_latest_state
from trading.redis import get_redis
from trading.services.orders import place_order
from trading.streams import input_stream, lease_key
from trading.workload import random_spec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

D = Decimal
RUNS = int(os.environ.get("KILL_RUNS", "5"))
ORDERS = int(os.environ.get("KILL_ORDERS", "2000"))
USERS = 10
TICK, LOT = D("0.01"), D("0.001")
KNOBS = {
    "PIPELINE_LEASE_TTL_MS": "1500",
    "PIPELINE_SNAPSHOT_EVERY": "300",
    "PIPELINE_TRIM_INPUT": "0",
}

_FINAL = {"cancelled": OrderStatus.CANCELED, "expired": OrderStatus.EXPIRED}


def _market(assets: dict[str, Asset], symbol: str) -> Market:
    return make_market(
        symbol,
        assets["BTC"],
        assets["USDT"],
        lot_size=LOT,
        min_quantity=LOT,
        min_notional=D("0"),
        last_price=D("100"),
    )


def _traders(assets: dict[str, Asset], prefix: str) -> list[User]:
    users = [make_user(f"{prefix}{i}@example.com") for i in range(USERS)]
    for user in users:
        fund(user, assets["BTC"], "10000")
        fund(user, assets["USDT"], "10000000")
    return users


def _place_all(market: Market, users: list[User], seed: int, count: int) -> None:
    rng = random.Random(seed)
    for n in range(count):
        coid = f"{market.symbol}-{seed}-{n}"
        spec = random_spec(rng, mid=D("100"), tick=TICK, lot=LOT, coid=coid)
        place_order(user=users[rng.randrange(len(users))], market=market, spec=spec)


def _place_all_in_thread(market: Market, users: list[User], seed: int, count: int) -> None:
    from django.db import connection

    try:
        _place_all(market, users, seed, count)
    finally:
        connection.close()


def _reference(market: Market) -> tuple[list[tuple], dict[int, str]]:
    """Trades and final order states of an uninterrupted engine fed the same input stream."""
    state = LoopState(engine=Engine())
    events = _apply_entries(state, get_redis().xrange(input_stream(market.symbol)), suppress_upto=0)
    trades, final = [], {}
    for event in events:
        kind = event[0]
        if kind == "trade":
            trades.append((event[1], event[2], event[3], event[6], event[7]))
            for order_id, done in ((event[2], event[9]), (event[3], event[10])):
                final[order_id] = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        elif kind == "accepted":
            final[event[2]] = OrderStatus.NEW
        elif kind in _FINAL:
            final[event[2]] = _FINAL[kind]
        elif kind == "rejected" and event[5] == "place_order":
            final[event[2]] = OrderStatus.REJECTED
    return trades, final


def _killer(
    symbol: str,
    procs: dict[str, object],
    stop: threading.Event,
    rng: random.Random,
    recoveries: list[float],
    kills: list[str],
) -> None:
    client = get_redis()
    n = 0
    while not stop.wait(rng.uniform(0.3, 1.2)):
        roles = ["matching"] + (["settlement"] if n % 2 else [])
        n += 1
        token = client.get(lease_key("matching", symbol))
        for role in roles:
            proc = procs[role]
            proc.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
            proc.wait()  # type: ignore[attr-defined]
            read_log(proc)  # type: ignore[arg-type]
            procs[role] = spawn_worker(role, symbol, **KNOBS)
            kills.append(role)
        killed_at = time.monotonic()
        while not stop.is_set() and time.monotonic() - killed_at < 20:
            now = client.get(lease_key("matching", symbol))
            if now is not None and now != token:
                recoveries.append(time.monotonic() - killed_at)
                break
            time.sleep(0.02)


@pytest.mark.slow
def test_sigkill_of_the_loops_loses_and_duplicates_nothing(assets: dict[str, Asset]) -> None:
    users = _traders(assets, "k")
    recoveries: list[float] = []
    lost = duplicated = orphan = mismatched = 0
    kills: list[str] = []
    for run in range(RUNS):
        market = _market(assets, f"K{run}-USDT")
        procs: dict[str, object] = {
            role: spawn_worker(role, market.symbol, **KNOBS) for role in ("matching", "settlement")
        }
        stop = threading.Event()
        killer = threading.Thread(
            target=_killer, args=(market.symbol, procs, stop, random.Random(run), recoveries, kills)
        )
        killer.start()
        try:
            _place_all(market, users, seed=100 + run, count=ORDERS)
        finally:
            stop.set()
            killer.join()
        try:
            wait_settled([market.symbol], timeout=90)
        finally:
            for proc in procs.values():
                stop_worker(proc)  # type: ignore[arg-type]

        trades, final = _reference(market)
        settled = list(
            Trade.objects.filter(market=market)
            .order_by("seq")
            .values_list("seq", "maker_order_id", "taker_order_id", "price", "quantity")
        )
        as_ticks = [(s, m, t, int(p / TICK), int(q / LOT)) for s, m, t, p, q in settled]
        orders = dict(Order.objects.filter(market=market).values_list("pk", "status"))
        lost += (
            sum(1 for pk in orders if pk not in final)
            + Order.objects.filter(
                market=market, status=OrderStatus.NEW, accepted_seq__isnull=True
            ).count()
        )
        duplicated += len(as_ticks) - len(set(as_ticks))
        orphan += (
            Order.objects.filter(market=market)
            .exclude(status__in=OPEN_STATUSES)
            .exclude(hold_remaining=0)
            .count()
        )
        diffs = [
            (pk, status, final.get(pk)) for pk, status in orders.items() if final.get(pk) != status
        ]
        if diffs or as_ticks != trades:
            print(  # noqa: T201 - the scenario's figure
                "DIFF",
                diffs[:5],
                len(as_ticks),
                len(trades),
                [p for p in zip(as_ticks, trades, strict=False) if p[0] != p[1]][:3],
            )
        mismatched += (as_ticks != trades) + sum(
            1 for pk, status in orders.items() if final.get(pk) != status
        )
    mean = sum(recoveries) / max(1, len(recoveries))
    print(  # noqa: T201 - the scenario's figure
        f"kill -9: {RUNS} runs x {ORDERS} orders, {kills.count('matching')} matching + "
        f"{kills.count('settlement')} settlement kills: {lost} lost accepted orders, "
        f"{duplicated} duplicated trades, {orphan} orphan holds, {mismatched} differences "
        f"from the reference run; mean recovery {mean:.2f}s (lease TTL 1.5s)"
    )
    assert (lost, duplicated, orphan, mismatched) == (0, 0, 0, 0)
    assert kills.count("matching") >= RUNS


class _Watchdog:
    """What the beat lease_watchdog does, in-process: restart loops that ended."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.loops = start_loops([symbol])
        self.restarts = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            if any(not t.is_alive() for t in self.loops.threads):
                self.loops.join()
                self.loops = start_loops([self.symbol])
                self.restarts += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.loops.join()


def test_redis_flush_mid_run_loses_and_duplicates_no_order(assets: dict[str, Asset]) -> None:
    market = _market(assets, "F-USDT")
    users = _traders(assets, "f")
    watchdog = _Watchdog(market.symbol)
    client = get_redis()
    placer = threading.Thread(target=_place_all_in_thread, args=(market, users, 7, ORDERS // 2))
    try:
        placer.start()
        while Order.objects.filter(market=market).count() < ORDERS // 5:
            time.sleep(0.01)
        client.flushdb()  # the exchange's own Redis DB only (see module docstring)
        flushed_at = time.monotonic()
        placer.join()
        wait_settled([market.symbol], timeout=90)
        recovered = time.monotonic() - flushed_at
    finally:
        watchdog.close()

    orders = Order.objects.filter(market=market)
    unprocessed = orders.filter(status=OrderStatus.NEW, accepted_seq__isnull=True).count()
    seqs = list(Trade.objects.filter(market=market).values_list("seq", flat=True))
    # The book the loop ended with (its final snapshot) == the open orders in PostgreSQL.
    state = load_latest_state(
        market_id=market.pk, min_token=int(client.get(f"market:{market.symbol}:ready"))
    )
    assert state is not None
    book = sorted((oid, lots) for oid, _, _, _, lots in state.engine.open_orders())
    db_book = sorted(
        (o.pk, int((o.quantity - o.filled_quantity) / LOT))
        for o in orders.filter(status__in=OPEN_STATUSES)
    )
    print(  # noqa: T201 - the scenario's figure
        f"redis flush mid-run: {orders.count()} orders, {unprocessed} lost, "
        f"{len(seqs) - len(set(seqs))} duplicated trades, book == PostgreSQL: "
        f"{book == db_book}, {watchdog.restarts} loop restarts, settled "
        f"{recovered:.1f}s after the flush"
    )
    assert unprocessed == 0
    assert len(seqs) == len(set(seqs))
    assert book == db_book
    assert watchdog.restarts >= 1
