"""A local order book kept by Binance's rule, and the books it is checked against.

`BookClient` is written from the rule a Binance client follows ("How to manage a local
order book correctly"), with this exchange's names: U = ``prev_seq + 1``, u = ``seq``,
lastUpdateId = ``Depth.last_update_id``:

1. subscribe to the market's depth group and buffer the diffs;
2. fetch a snapshot (``markets.selectors.depth(market, 5000)``);
3. drop buffered diffs with ``seq <= last_update_id``;
4. the first diff kept must have ``prev_seq + 1 <= last_update_id + 1 <= seq``; one with a
   later ``prev_seq`` means a diff went missing (or the snapshot is older than the diffs):
   fetch a new snapshot;
5. apply the rest in order; from then on each diff's ``prev_seq`` must be the last applied
   ``seq``, and any other value is a gap: start again at 2 (a resync, counted).

Levels are absolute totals (quantity "0" removes the level), which is why applying the
first diff over a snapshot that already holds part of it is harmless. Messages come through
the real channel layer (Redis), received on a thread with its own event loop; a second
thread follows the stream and reads snapshots through the ORM, so the test thread only
waits and compares.

`InProcessPipeline` runs the real engine and settle_batch in the test's process (the
shape tests/trading/test_cancel_race.py uses): its engine is the book every reader must
agree with. `engine_levels` turns an engine's depth into the readers' Decimal levels.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from channels.layers import get_channel_layer
from django.db import connection

from exchange.publish import depth_group
from markets.marketdata.common import quantizer
from markets.marketdata.depth import Depth, Level
from markets.models import Market
from markets.selectors import depth
from trading.engine.matching import Engine
from trading.matching import _apply_entries
from trading.recovery import LoopState
from trading.redis import get_redis
from trading.services.settlement import SettleResult, settle_batch
from trading.streams import input_stream

SNAPSHOT_LIMIT = 5000
Book = tuple[list[Level], list[Level]]  # (bids best first, asks best first)
_STOP = {"type": "client.stop"}
_SUBSCRIBE = {"type": "client.subscribe"}  # queued to the follower: start from scratch


def sorted_book(bids: dict[Decimal, Decimal], asks: dict[Decimal, Decimal]) -> Book:
    return sorted(bids.items(), reverse=True), sorted(asks.items())


def depth_book(snapshot: Depth) -> Book:
    return list(snapshot.bids), list(snapshot.asks)


def engine_levels(engine: Engine, market: Market) -> Book:
    """The engine's whole book as (price, quantity) Decimals, best first, like depth()."""
    tick, lot = market.tick_size, market.lot_size
    tick_q, lot_q = quantizer(tick), quantizer(lot)
    bids, asks = engine.depth(SNAPSHOT_LIMIT)
    return (
        [((tick * p).quantize(tick_q), (lot * q).quantize(lot_q)) for p, q in bids],
        [((tick * p).quantize(tick_q), (lot * q).quantize(lot_q)) for p, q in asks],
    )


class InProcessPipeline:
    """The engine and settlement driven in-process, straight from the real input stream."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self.state = LoopState(engine=Engine())
        self.offset = "0-0"

    @property
    def engine(self) -> Engine:
        return self.state.engine

    def drain(self) -> SettleResult | None:
        """Match every command published since the last drain and settle it as one batch."""
        client: Any = get_redis()  # Any: redis-py types stream replies as a union
        entries = client.xrange(input_stream(self.market.symbol), min=f"({self.offset}")
        if not entries:
            return None
        self.offset = entries[-1][0].decode()
        events = _apply_entries(self.state, entries, suppress_upto=0)
        if not events:
            return None
        return settle_batch(market_id=self.market.pk, entries=[(1, events)])


class BookClient:
    """Follows one market's depth diffs by Binance's rule (module docstring).

    ``subscriptions`` counts (re)subscriptions, ``snapshots`` every snapshot read,
    ``resyncs`` those forced by a gap (a diff whose prev_seq was not the last applied seq);
    ``diffs`` is every diff received, in arrival order. ``drop`` makes the transport lose
    the diffs it picks (``dropped``), as a full channel or a dead publisher would.
    """

    def __init__(
        self, symbol: str, *, drop: Callable[[dict[str, Any]], bool] | None = None
    ) -> None:
        self.symbol = symbol
        self._drop = drop  # a lossy transport: diffs it returns True for never arrive
        self.dropped: list[dict[str, Any]] = []
        self.group = depth_group(symbol)
        self.subscriptions = self.snapshots = self.resyncs = 0
        self.diffs: list[dict[str, Any]] = []
        self.errors: list[BaseException] = []
        self._inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}
        self._last: int | None = None  # None: not in sync
        self._fresh_snapshot = False  # the next diff is the first after a snapshot
        self._loop = asyncio.new_event_loop()
        self._layer: Any = get_channel_layer()  # Any: channels' layers are untyped
        self._channel = ""
        self._subscribed = threading.Event()
        self._receiver = threading.Thread(target=self._receive_forever, daemon=True)
        self._follower = threading.Thread(target=self._follow_forever, daemon=True)

    # ------------------------------------------------------------ the test's side

    def start(self) -> BookClient:
        self._receiver.start()
        if not self._subscribed.wait(10):
            raise RuntimeError(f"could not subscribe to {self.group}")
        self._follower.start()
        return self

    def resubscribe(self) -> None:
        """Join the group again and start over (what a client does on a new connection).

        A Redis flush drops every group membership: from then on nothing reaches the old
        subscription, and no diff would ever reveal the gap.
        """
        future = asyncio.run_coroutine_threadsafe(self._subscribe(), self._loop)
        future.result(10)
        self._inbox.put(_SUBSCRIBE)

    def close(self) -> None:
        if self._channel and self._receiver.is_alive():
            asyncio.run_coroutine_threadsafe(
                self._layer.send(self._channel, _STOP), self._loop
            ).result(10)
        self._inbox.put(_STOP)
        self._receiver.join(10)
        self._follower.join(10)

    @property
    def last_seq(self) -> int | None:
        with self._lock:
            return self._last

    def book(self) -> Book:
        with self._lock:
            return sorted_book(self._bids, self._asks)

    def wait_for(self, seq: int, timeout: float = 20) -> Book:
        """The book once it reflects exactly ``seq``; AssertionError if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.errors:
                raise AssertionError(f"the client failed: {self.errors[0]!r}")
            with self._lock:
                if self._last == seq:
                    return sorted_book(self._bids, self._asks)
            time.sleep(0.02)
        raise AssertionError(f"client at seq {self.last_seq}, expected {seq}")

    # ------------------------------------------------------------ receiving (event loop)

    async def _subscribe(self) -> None:
        if not self._channel:
            self._channel = await self._layer.new_channel()
        await self._layer.group_add(self.group, self._channel)
        self.subscriptions += 1

    async def _receive(self) -> None:
        await self._subscribe()
        self._subscribed.set()
        while True:
            message = await self._layer.receive(self._channel)
            if message.get("type") == _STOP["type"]:
                return
            if message.get("type") != "depth.diff":
                continue
            if self._drop is not None and self._drop(message):
                self.dropped.append(message)
            else:
                self._inbox.put(message)

    def _receive_forever(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._receive())
        except BaseException as exc:  # surfaced by wait_for
            self.errors.append(exc)
        finally:
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(self._layer.close_pools())

    # ------------------------------------------------------------ following (thread)

    def _follow_forever(self) -> None:
        try:
            self._sync()
            while True:
                message = self._inbox.get()
                if message is _STOP:
                    return
                if message is _SUBSCRIBE:
                    self._sync()
                    continue
                self.diffs.append(message)
                self._on_diff(message)
        except BaseException as exc:  # surfaced by wait_for
            self.errors.append(exc)
        finally:
            connection.close()

    def _on_diff(self, diff: dict[str, Any]) -> None:
        if not self._in_order(diff):
            self.resyncs += 1
            self._sync(pending=[diff])
            return
        if int(diff["seq"]) > self._current():
            self._apply(diff)

    def _current(self) -> int:
        last = self._last
        assert last is not None  # the follower is in sync between diffs
        return last

    def _in_order(self, diff: dict[str, Any]) -> bool:
        """Whether the diff may be applied now (or dropped as already applied)."""
        prev_seq, seq, last = int(diff["prev_seq"]), int(diff["seq"]), self._current()
        if seq <= last:
            return True  # already in the book (step 3)
        if self._fresh_snapshot:
            return prev_seq <= last  # step 4: prev_seq + 1 <= last_update_id + 1 <= seq
        return prev_seq == last  # step 5

    def _sync(self, pending: list[dict[str, Any]] | None = None) -> None:
        """Steps 2-4: a snapshot, then the buffered diffs (those that waited in the inbox
        while it was read included) on top of it; again from a new snapshot on a gap."""
        buffered = list(pending or [])
        while True:
            snapshot = depth(self.symbol, SNAPSHOT_LIMIT)
            self.snapshots += 1
            buffered.extend(self._drain_inbox())
            kept = [d for d in buffered if int(d["seq"]) > snapshot.last_update_id]
            if kept and int(kept[0]["prev_seq"]) > snapshot.last_update_id:
                buffered = kept  # the snapshot is older than the diffs: read a newer one
                continue
            with self._lock:
                self._bids = dict(snapshot.bids)
                self._asks = dict(snapshot.asks)
                self._last = snapshot.last_update_id
                self._fresh_snapshot = True
            broken = next((i for i, d in enumerate(kept) if not self._apply_if_in_order(d)), None)
            if broken is None:
                return
            self.resyncs += 1
            buffered = kept[broken:]

    def _apply_if_in_order(self, diff: dict[str, Any]) -> bool:
        if not self._in_order(diff):
            return False
        if int(diff["seq"]) > self._current():
            self._apply(diff)
        return True

    def _drain_inbox(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            try:
                message = self._inbox.get_nowait()
            except queue.Empty:
                return out
            if message is _STOP or message is _SUBSCRIBE:
                self._inbox.put(message)  # handled by the follow loop, after this sync
                return out
            self.diffs.append(message)
            out.append(message)

    def _apply(self, diff: dict[str, Any]) -> None:
        with self._lock:
            for side, levels in ((self._bids, diff["bids"]), (self._asks, diff["asks"])):
                for price, quantity in levels:
                    amount = Decimal(quantity)
                    if amount == 0:
                        side.pop(Decimal(price), None)
                    else:
                        side[Decimal(price)] = amount
            self._last = int(diff["seq"])
            self._fresh_snapshot = False
