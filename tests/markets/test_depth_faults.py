"""The depth book a client keeps by Binance's rule stays the engine's book through faults.

Random orders (trading.workload.random_spec) flow through the real pipeline: place_order
in the test, the matching and settlement loops in real worker processes
(tests/trading/pipeline_helpers), the channels layer over Redis, and a BookClient
(book_client.py) following the market's depth group. After each fault and quiescence
three books must be identical, level by level: the client's, the engine's own (the
matching loop's state as it stores it: the workers snapshot after every batch, and the
newest snapshot must be at the settlement cursor's seq) and depth()'s rows, all at that
one seq.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest
from django.db import connection

from accounts.models import Asset, User
from exchange.publish import flush_published
from markets.models import DepthLevel, Market
from markets.selectors import depth
from tests.conftest import assert_ledger_clean, fund, make_user
from tests.markets.book_client import (
    Book,
    BookClient,
    InProcessPipeline,
    depth_book,
    engine_levels,
)
from tests.trading.conftest import _stop_accept_batcher as _stop_accept_batcher
from tests.trading.conftest import make_market
from tests.trading.conftest import redis_db as redis_db  # the fixture, for this folder
from tests.trading.pipeline_helpers import (
    ROOT,
    is_settled,
    read_log,
    spawn_worker,
    state_digest,
    stop_worker,
    wait_settled,
    worker_env,
)
from trading.lease import is_lease_live
from trading.models import SettlementCursor
from trading.recovery import load_latest_state
from trading.redis import get_redis
from trading.services.orders import place_order
from trading.services.settlement import settle_batch
from trading.streams import decode_events_entry, output_stream, ready_key
from trading.validation import OrderSpec
from trading.workload import random_spec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

D = Decimal
MID, TICK, LOT = D("100"), D("0.01"), D("0.001")
# Short leases (a killed loop's successor takes over within 1.5 s) and a snapshot after
# every batch, so the engine's book at quiescence is in PostgreSQL.
KNOBS: dict[str, Any] = {"PIPELINE_LEASE_TTL_MS": "1500", "PIPELINE_SNAPSHOT_EVERY": "1"}
ROLES = ("matching", "settlement")


class _Exchange:
    """One market, its loops in worker processes, four traders and a following client."""

    def __init__(self, assets: dict[str, Asset], symbol: str, *, seed: int) -> None:
        self.market = make_market(
            symbol,
            assets["BTC"],
            assets["USDT"],
            lot_size=LOT,
            min_quantity=LOT,
            min_notional=D("0"),
            last_price=MID,
        )
        self.users: list[User] = []
        for i in range(4):
            user = make_user(f"{symbol.lower()}{i}@example.com")
            fund(user, assets["BTC"], "10000")
            fund(user, assets["USDT"], "10000000")
            self.users.append(user)
        self.rng = random.Random(seed)
        self.placed = 0
        self.procs: dict[str, subprocess.Popen[bytes]] = {
            role: spawn_worker(role, symbol, **KNOBS) for role in ROLES
        }
        self.wait_owned(ROLES)
        self.client = BookClient(symbol).start()

    @property
    def symbol(self) -> str:
        return self.market.symbol

    def place(self, count: int) -> None:
        for _ in range(count):
            spec = random_spec(
                self.rng, mid=MID, tick=TICK, lot=LOT, coid=f"{self.symbol}-{self.placed}"
            )
            user = self.users[self.rng.randrange(len(self.users))]
            place_order(user=user, market=self.market, spec=spec)
            self.placed += 1

    def wait_owned(self, roles: tuple[str, ...], timeout: float = 30) -> None:
        """Until a live loop holds each role's lease (a fault before that hits nothing)."""
        deadline = time.monotonic() + timeout
        while not all(is_lease_live(role=role, symbol=self.symbol) for role in roles):
            assert time.monotonic() < deadline, f"{self.symbol}: loops never took their leases"
            time.sleep(0.05)

    def place_in_background(self, count: int) -> threading.Thread:
        """Place ``count`` orders from another thread; `placed` counts them as they go."""

        def run() -> None:
            try:
                self.place(count)
            finally:
                connection.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def wait_placed(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.placed < count:
            assert time.monotonic() < deadline, f"only {self.placed} orders placed"
            time.sleep(0.01)

    def kill(self, role: str) -> None:
        proc = self.procs[role]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        read_log(proc)

    def cursor(self) -> int:
        return SettlementCursor.objects.get(market=self.market).last_seq

    def engine_book(self, seq: int, timeout: float = 20) -> Book:
        """The matching loop's book, from its newest snapshot once that is at ``seq``."""
        client: Any = get_redis()  # Any: redis-py's reply types
        deadline = time.monotonic() + timeout
        while True:
            generation = int(client.get(ready_key(self.symbol)) or 0)
            state = load_latest_state(market_id=self.market.pk, min_token=generation)
            if state is not None and state.engine.seq == seq:
                return engine_levels(state.engine, self.market)
            if time.monotonic() > deadline:
                found = None if state is None else state.engine.seq
                raise AssertionError(f"no snapshot at seq {seq} (newest at {found})")
            time.sleep(0.05)

    def assert_books_agree(self) -> Book:
        """Quiesce, then client == engine == depth(), at the settlement cursor's seq."""
        wait_settled([self.symbol], timeout=60)
        seq = self.cursor()
        client_book = self.client.wait_for(seq)
        snapshot = depth(self.market, 5000)
        assert snapshot.last_update_id == seq
        assert client_book == self.engine_book(seq) == depth_book(snapshot)
        assert sum(map(len, client_book)) > 5  # a book worth comparing
        return client_book

    def close(self) -> None:
        self.client.close()
        for proc in self.procs.values():
            stop_worker(proc)


@pytest.mark.slow
def test_a_killed_matching_loop_is_invisible_to_the_book(assets: dict[str, Asset]) -> None:
    """(a) SIGKILL of the matching process mid-run; a new one restores its snapshot and
    replays. It regenerates the same events with the same seqs and settlement drops those it
    had, so no diff is lost: the client follows without a single resync."""
    exchange = _Exchange(assets, "DA-USDT", seed=1)
    try:
        placer = exchange.place_in_background(200)
        exchange.wait_placed(60)
        settled_before = exchange.cursor()
        exchange.kill("matching")  # while orders flow in
        exchange.procs["matching"] = spawn_worker("matching", exchange.symbol, **KNOBS)
        placer.join()
        exchange.assert_books_agree()
        assert 0 < settled_before < exchange.cursor()
        assert (exchange.client.resyncs, exchange.client.snapshots) == (0, 1)
    finally:
        exchange.close()
    assert_ledger_clean()


# Run with ``python -c``: a settlement worker that SIGKILLs itself in the publish step of
# its n-th batch with level changes. exchange.publish.publish_now runs from on_commit, so the
# batch (and the cursor) is committed and its diff is never sent.
_DYING_SETTLEMENT = """
import os, signal, sys
import django
django.setup()
import exchange.publish
from tests.trading.pipeline_helpers import _main
original, seen = exchange.publish.publish_now, [0]
def publish_or_die(messages):
    diff = next(m for _, m in messages if m["type"] == "depth.diff")
    if diff["bids"] or diff["asks"]:
        seen[0] += 1
        if seen[0] == {nth}:
            print("LOST", diff["prev_seq"], diff["seq"], flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    original(messages)
exchange.publish.publish_now = publish_or_die
sys.exit(_main(["settlement", {symbol!r}, "60"]))
"""


def _spawn_dying_settlement(symbol: str, nth: int) -> subprocess.Popen[bytes]:
    log = tempfile.NamedTemporaryFile(prefix="dying-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(  # noqa: S603 - our own fixed program
        [sys.executable, "-c", _DYING_SETTLEMENT.format(nth=nth, symbol=symbol)],
        cwd=ROOT,
        env=worker_env(**KNOBS),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    proc.log_path = log.name  # type: ignore[attr-defined]
    log.close()
    return proc


@pytest.mark.slow
def test_a_settlement_killed_between_commit_and_publish_is_a_gap_the_client_heals(
    assets: dict[str, Asset],
) -> None:
    """(b) The settlement process SIGKILLs itself after its 3rd batch with level changes
    committed (cursor advanced, depth rows written) and before its diff is sent.

    Why a real kill rather than dropping a message in the client: the fault is the
    process's, and what follows it is too: the successor claims the unacknowledged entry,
    settle_batch drops it as already settled (so nothing re-sends that diff), and the next
    diff's prev_seq is the lost diff's seq. The kill is placed by count, not by time, so
    every run loses exactly one diff that changed the book.
    """
    exchange = _Exchange(assets, "DB-USDT", seed=2)
    stop_worker(exchange.procs["settlement"])
    exchange.procs["settlement"] = _spawn_dying_settlement(exchange.symbol, nth=3)
    try:
        dying = exchange.procs["settlement"]
        deadline = time.monotonic() + 60
        while dying.poll() is None:  # chunks settle as batches of their own, until the kill
            assert time.monotonic() < deadline, "the settlement worker never died"
            exchange.place(10)
            while dying.poll() is None and not is_settled(exchange.symbol):
                time.sleep(0.05)
        assert dying.returncode == -signal.SIGKILL
        lost = [line.split() for line in read_log(dying).splitlines() if line.startswith("LOST")]
        assert len(lost) == 1
        lost_seq = int(lost[0][2])
        exchange.procs["settlement"] = spawn_worker("settlement", exchange.symbol, **KNOBS)
        exchange.place(60)
        exchange.assert_books_agree()
        seen = {int(diff["seq"]) for diff in exchange.client.diffs}
        assert lost_seq not in seen  # the committed batch's diff never reached the client
        assert exchange.client.resyncs == 1
    finally:
        exchange.close()
    assert_ledger_clean()


def _rows(market: Market) -> dict[str, Any]:
    market.refresh_from_db()
    levels = DepthLevel.objects.filter(market=market).order_by("side", "price")
    return {
        **state_digest([market.symbol]),
        "levels": list(levels.values_list("side", "price", "quantity")),
        "book_seq": market.book_seq,
        "cursor": SettlementCursor.objects.get(market=market).last_seq,
    }


@pytest.mark.slow
def test_a_redelivered_batch_changes_no_row_and_sends_no_diff(assets: dict[str, Asset]) -> None:
    """(c) Every entry still in the output stream, already settled, is settled again."""
    exchange = _Exchange(assets, "DC-USDT", seed=3)
    try:
        exchange.place(100)
        exchange.assert_books_agree()
        before, received = _rows(exchange.market), len(exchange.client.diffs)
        redis: Any = get_redis()  # Any: redis-py's reply types
        raw = redis.xrange(output_stream(exchange.symbol))
        entries = [(e.token, e.events) for e in map(decode_events_entry, [f for _, f in raw]) if e]
        assert entries

        result = settle_batch(market_id=exchange.market.pk, entries=entries)

        assert result.applied == 0
        assert result.duplicates == sum(len(events) for _, events in entries)
        assert flush_published()
        assert _rows(exchange.market) == before
        # The next orders' diffs continue from where the client was: nothing came between.
        exchange.place(20)
        exchange.assert_books_agree()
        after = exchange.client.diffs[received:]
        assert int(after[0]["prev_seq"]) == before["cursor"]
        assert all(a["seq"] == b["prev_seq"] for a, b in pairwise(after))
        assert exchange.client.resyncs == 0
    finally:
        exchange.close()
    assert_ledger_clean()


def test_a_diff_lost_in_transport_is_a_gap_the_client_resyncs_over(
    assets: dict[str, Asset],
) -> None:
    """(b, fast) The same gap as a settlement killed before publishing, made in the
    client's transport instead: the diff that rests the only ask is lost, and no later diff
    touches that level, so only a resync from the snapshot can show it."""
    exchange_market = make_market(
        "DT-USDT", assets["BTC"], assets["USDT"], lot_size=LOT, min_notional=D("0"), last_price=MID
    )
    trader = make_user("dt@example.com")
    fund(trader, assets["BTC"], "10")
    fund(trader, assets["USDT"], "100000")
    pipeline = InProcessPipeline(exchange_market)
    client = BookClient("DT-USDT", drop=lambda diff: bool(diff["asks"])).start()
    try:
        for side, price in (("buy", "99"), ("sell", "101"), ("buy", "98")):
            spec = OrderSpec(side=side, price=D(price), quantity=D("0.5"))
            place_order(user=trader, market=exchange_market, spec=spec)
            pipeline.drain()  # one batch, one diff each
        book = client.wait_for(SettlementCursor.objects.get(market=exchange_market).last_seq)
    finally:
        client.close()

    assert [d["asks"] for d in client.dropped] == [[["101.00", "0.500"]]]
    assert book[1] == [(D("101.00"), D("0.5"))]
    assert book == engine_levels(pipeline.engine, exchange_market) == depth_book(depth("DT-USDT"))
    assert client.resyncs == 1


class _Watchdog:
    """What beat's lease watchdog does: start a loop process again once it has ended."""

    def __init__(self, exchange: _Exchange) -> None:
        self.exchange = exchange
        self.restarted: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        procs = self.exchange.procs
        while not self.stop.wait(0.2):
            for role in ROLES:
                if procs[role].poll() is not None:
                    read_log(procs[role])
                    procs[role] = spawn_worker(role, self.exchange.symbol, **KNOBS)
                    self.restarted.append(role)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


@pytest.mark.slow
def test_a_redis_flush_mid_run_is_healed_by_a_resubscription(assets: dict[str, Asset]) -> None:
    """(d) FLUSHDB of the exchange's Redis db while orders flow: the loops lose their
    leases and end, the watchdog starts them again, matching rebuilds from PostgreSQL with
    seqs going on from the settlement cursor. The flush also dropped the client's group
    membership, so it subscribes again and starts over from a snapshot."""
    exchange = _Exchange(assets, "DD-USDT", seed=4)
    watchdog = _Watchdog(exchange)
    try:
        placer = exchange.place_in_background(200)
        exchange.wait_placed(60)
        settled_before = exchange.cursor()
        get_redis().flushdb()  # the exchange's own Redis db only (redis_db refuses db 0)
        exchange.client.resubscribe()
        placer.join()
        exchange.assert_books_agree()
        assert 0 < settled_before < exchange.cursor()
        assert "matching" in watchdog.restarted  # it lost its streams and its lease
        assert exchange.client.subscriptions == 2
        assert exchange.client.snapshots >= 2
    finally:
        watchdog.close()
        exchange.close()
    assert_ledger_clean()
