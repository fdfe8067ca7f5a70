"""The per-process fan-out: one reader per channels group, shared by every local socket.

Settlement sends each settled batch to the groups `depth.<symbol>`, `trades.<symbol>` and
`user.<id>` (exchange.publish). A web process joins a group once, for as long as one of its
sockets needs it, and turns the group's messages into Binance payloads encoded once and
handed to every subscribed socket (`Subscriber.deliver`, which never blocks: each socket
has its own bounded queue, exchange.ws.app). So a slow socket costs only itself, and
settlement never waits for any socket: it only enqueues for its publisher thread.

Depth. Each market feed keeps the book (all levels, SortedDicts) with the sequence it
reflects: it joins the group first, then reads the PostgreSQL snapshot (the same one GET
/api/v3/depth returns) and applies the diffs after it. Channels may drop a message (a full
channel, a Redis blip): the feed sees a diff whose prev_seq is past its own sequence,
re-reads the snapshot and sends its clients the difference between the book it had and
the snapshot as one ordinary diff, so their U/u chain never breaks and their books stay
the engine's. Diffs are coalesced per speed: `@depth@100ms` gets one depthUpdate per
100 ms, `@depth` one per second (Binance's speeds), each holding the last quantity of
every level that changed (absolute, 0 = removed), U = the previous frame's u + 1 and u =
the book's sequence. `@depthN[@100ms]` sends the top N levels at that speed when the book
changed; `@bookTicker` is sent when the best bid or ask changes.

Trades, tickers, klines. `@trade` and `@aggTrade` (one aggregate per trade, as REST's
aggTrades) are sent as trades arrive; `@ticker`, `@miniTicker` and `@kline_<i>` are read
from the market-data selectors once a second when the market traded (and at a kline's
close), so they equal what REST answers; `!ticker@arr` / `!miniTicker@arr` send, once a
second, the markets whose ticker changed.

User data. `user.<id>` messages become executionReports (the order and its trades of the
batch read from PostgreSQL, only for users with a socket here), outboundAccountPosition
and balanceUpdate; a user's feed exists only for their own sockets, so a socket can never
receive another user's event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import orjson
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db.models import Q
from sortedcontainers import SortedDict

from exchange.api.binance.base import binance_symbol
from exchange.publish import depth_group, trades_group, user_group
from exchange.ws import frames
from exchange.ws import names as n
from markets import selectors
from markets.marketdata.common import places
from markets.marketdata.intervals import INTERVALS
from markets.models import Market
from trading.models import Order, Trade

logger = logging.getLogger(__name__)

SNAPSHOT_LEVELS = 5000  # per side: the deepest REST snapshot, and what a feed keeps in sync
TICK_SECONDS = 0.1
SLOW_EVERY = 10  # ticks: the 1000 ms depth, tickers and klines
RESYNC_ATTEMPTS = 4
MAX_BUFFERED = 1000  # diffs held while a snapshot is read
GROUP_REFRESH_SECONDS = 600.0  # channels-redis forgets a group member after a day


class Subscriber(Protocol):
    def deliver(self, name: str, data: str) -> None:
        """Queue one payload (JSON text) of stream `name`; must not block."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def encode(payload: Any) -> str:
    return orjson.dumps(payload).decode()


class _Reader:
    """One channels group read into `handle`, in order, until stopped."""

    def __init__(self, group: str, handle: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self.group = group
        self.handle = handle
        self.channel = ""
        self.joined = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        layer = get_channel_layer()
        self.channel = await layer.new_channel()
        await layer.group_add(self.group, self.channel)
        self.joined.set()
        try:
            while True:
                message = await layer.receive(self.channel)
                try:
                    await self.handle(message)
                except Exception:
                    logger.exception("websocket feed of %s failed on a message", self.group)
                await asyncio.sleep(0)  # let the sockets' writers drain between messages
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(layer.group_discard(self.group, self.channel))

    async def refresh(self) -> None:
        if self.channel:
            await get_channel_layer().group_add(self.group, self.channel)

    def stop(self) -> None:
        self.task.cancel()


@dataclass
class _Pending:
    """Levels changed since the last frame of one speed: (side, price) -> quantity."""

    levels: dict[tuple[str, Decimal], Decimal] = field(default_factory=dict)
    emitted: int = 0  # the last frame's u (or the snapshot's sequence)
    partial_dirty: bool = False


class MarketFeed:
    """One market's book, trades and statistics for this process's sockets."""

    def __init__(self, hub: Hub, market: Market) -> None:
        self.hub = hub
        self.market = market
        self.symbol = binance_symbol(market)
        self.price_places = places(market.tick_size)
        self.qty_places = places(market.lot_size)
        self.bids: SortedDict = SortedDict()  # Decimal price -> Decimal quantity
        self.asks: SortedDict = SortedDict()
        self.seq: int | None = None  # None until the first snapshot is in
        self.syncing = True
        self.buffer: list[dict[str, Any]] = []
        self.pending = {100: _Pending(), 1000: _Pending()}
        self.best: tuple[Any, Any] = (None, None)
        self.ticker_dirty = True
        self.kline_dirty: set[str] = set()
        self.kline_open: dict[str, datetime] = {}
        self.resyncs = 0
        self.readers = [
            _Reader(depth_group(market.symbol), self._on_depth),
            _Reader(trades_group(market.symbol), self._on_trades),
        ]
        self.task = asyncio.get_running_loop().create_task(self._start())

    def key(self, kind: str, **extra: Any) -> str:
        return self.hub.key_of(n.StreamName("", kind, self.symbol, **extra))

    # ------------------------------------------------------------------ depth

    async def _start(self) -> None:
        for reader in self.readers:
            await reader.joined.wait()  # in the group before the snapshot: no diff missed
        while True:
            try:
                await self._resync(first=True)
                break
            except Exception:  # PostgreSQL away: the feed waits, its buffer is bounded
                logger.exception("websocket feed of %s cannot read its snapshot", self.symbol)
                await asyncio.sleep(1.0)
        tick = 0
        while True:
            await asyncio.sleep(TICK_SECONDS)
            tick += 1
            try:
                self._flush(100)
                if tick % SLOW_EVERY == 0:
                    self._flush(1000)
                    await self._statistics()
            except Exception:
                logger.exception("websocket feed of %s failed on a tick", self.symbol)

    async def _snapshot(self) -> Any:
        return await database_sync_to_async(selectors.depth)(self.market, SNAPSHOT_LEVELS)

    async def _resync(self, *, first: bool = False) -> None:
        """Read the snapshot, send the difference to it as a diff, then the buffered diffs.

        A buffered diff still past the snapshot (lost again while reading) reads again, a few
        times; what is then still ahead is dropped: the next diff finds the gap and resyncs.
        """
        self.syncing = True
        try:
            for attempt in range(RESYNC_ATTEMPTS):
                snapshot = await self._snapshot()
                bids, asks = SortedDict(snapshot.bids), SortedDict(snapshot.asks)
                if not first:
                    for side, old, new in (("buy", self.bids, bids), ("sell", self.asks, asks)):
                        for price in old.keys() - new.keys():
                            self._changed(side, price, Decimal(0))
                        for price, quantity in new.items():
                            if old.get(price) != quantity:
                                self._changed(side, price, quantity)
                self.bids, self.asks = bids, asks
                self.seq = snapshot.last_update_id
                if first:
                    for pending in self.pending.values():
                        pending.emitted = self.seq
                    first = False
                buffered, self.buffer = self.buffer, []
                ahead = [m for m in buffered if m["seq"] > self.seq]
                while ahead and ahead[0]["prev_seq"] <= self.seq:
                    self._apply(ahead.pop(0))
                if not ahead:
                    break
                self.resyncs += 1
                if attempt + 1 < RESYNC_ATTEMPTS:
                    self.buffer = ahead + self.buffer
                    await asyncio.sleep(0.05 * (attempt + 1))
        finally:
            self.syncing = self.seq is None  # a failed read: the next gap reads again
        self._book_ticker()

    async def _on_depth(self, message: dict[str, Any]) -> None:
        if self.syncing:
            self.buffer.append(message)
            if len(self.buffer) > MAX_BUFFERED:  # the oldest go: a later snapshot covers them
                del self.buffer[: len(self.buffer) - MAX_BUFFERED]
            return
        assert self.seq is not None  # noqa: S101 - set by the first resync
        if message["seq"] <= self.seq:
            return  # already in the snapshot
        if message["prev_seq"] > self.seq:  # a diff was lost on the way: resync
            self.resyncs += 1
            self.buffer.append(message)
            await self._resync()
            return
        self._apply(message)
        self._book_ticker()

    def _changed(self, side: str, price: Decimal, quantity: Decimal) -> None:
        for pending in self.pending.values():
            pending.levels[(side, price)] = quantity
            pending.partial_dirty = True

    def _apply(self, message: dict[str, Any]) -> None:
        for side, book, levels in (
            ("buy", self.bids, message["bids"]),
            ("sell", self.asks, message["asks"]),
        ):
            for price_text, quantity_text in levels:
                price, quantity = Decimal(price_text), Decimal(quantity_text)
                if quantity:
                    book[price] = quantity
                else:
                    book.pop(price, None)
                self._changed(side, price, quantity)
        self.seq = message["seq"]

    def _levels(self, items: Iterable[tuple[Decimal, Decimal]]) -> list[list[str]]:
        price_q, qty_q = Decimal(1).scaleb(-self.price_places), Decimal(1).scaleb(-self.qty_places)
        return [[frames.s(p.quantize(price_q)), frames.s(q.quantize(qty_q))] for p, q in items]

    def _pair(self, level: tuple[Decimal, Decimal]) -> tuple[str, str]:
        price, quantity = self._levels([level])[0]
        return price, quantity

    def _flush(self, speed: int) -> None:
        pending = self.pending[speed]
        if self.seq is None or self.syncing:
            return
        stamp = now_ms()
        diff_key = self.key(n.DEPTH, speed_ms=speed)
        if pending.levels and self.seq > pending.emitted:
            if self.hub.has(diff_key):
                bids = sorted(
                    ((p, q) for (s, p), q in pending.levels.items() if s == "buy"), reverse=True
                )
                asks = sorted((p, q) for (s, p), q in pending.levels.items() if s == "sell")
                payload = frames.depth_update(
                    symbol=self.symbol,
                    event_ms=stamp,
                    first=pending.emitted + 1,
                    last=self.seq,
                    bids=self._levels(bids),
                    asks=self._levels(asks),
                )
                self.hub.publish(diff_key, encode(payload))
            pending.levels.clear()
            pending.emitted = self.seq
        if pending.partial_dirty:
            pending.partial_dirty = False
            for levels in n.PARTIAL_LEVELS:
                key = self.key(n.PARTIAL, speed_ms=speed, levels=levels)
                if self.hub.has(key):
                    top_bids = self.bids.items()[-levels:][::-1]
                    top_asks = self.asks.items()[:levels]
                    payload = frames.partial_depth(
                        last=self.seq, bids=self._levels(top_bids), asks=self._levels(top_asks)
                    )
                    self.hub.publish(key, encode(payload))

    def _book_ticker(self) -> None:
        best = (
            self.bids.peekitem(-1) if self.bids else None,
            self.asks.peekitem(0) if self.asks else None,
        )
        if best == self.best or self.seq is None:
            return
        self.best = best
        key = self.key(n.BOOK_TICKER)
        if self.hub.has(key):
            bid, ask = (None if x is None else self._pair(x) for x in best)
            payload = frames.book_ticker(symbol=self.symbol, last=self.seq, bid=bid, ask=ask)
            self.hub.publish(key, encode(payload))

    # ------------------------------------------------------------------ trades

    async def _on_trades(self, message: dict[str, Any]) -> None:
        self.ticker_dirty = True
        self.kline_dirty.update(INTERVALS)
        trade_key, agg_key = self.key(n.TRADE), self.key(n.AGG_TRADE)
        want_trade, want_agg = self.hub.has(trade_key), self.hub.has(agg_key)
        if not (want_trade or want_agg):
            return
        stamp = now_ms()
        for entry in message["trades"]:
            trade = {
                "seq": entry["seq"],
                "price": frames.s(Decimal(entry["price"])),
                "quantity": frames.s(Decimal(entry["quantity"])),
                "taker_side": entry["taker_side"],
                "time": message.get("time", stamp),
            }
            if want_trade:
                self.hub.publish(
                    trade_key, encode(frames.trade(symbol=self.symbol, event_ms=stamp, trade=trade))
                )
            if want_agg:
                self.hub.publish(
                    agg_key,
                    encode(frames.agg_trade(symbol=self.symbol, event_ms=stamp, trade=trade)),
                )

    # ------------------------------------------------------------------ statistics

    async def _statistics(self) -> None:
        ticker_key, mini_key = self.key(n.TICKER), self.key(n.MINI_TICKER)
        if self.ticker_dirty and (self.hub.has(ticker_key) or self.hub.has(mini_key)):
            self.ticker_dirty = False
            t = await database_sync_to_async(selectors.ticker)(self.market)
            stamp = now_ms()
            if self.hub.has(ticker_key):
                payload = frames.ticker(
                    symbol=self.symbol,
                    event_ms=stamp,
                    t=t,
                    price_places=self.price_places,
                    qty_places=self.qty_places,
                )
                self.hub.publish(ticker_key, encode(payload))
            if self.hub.has(mini_key):
                self.hub.publish(
                    mini_key, encode(frames.mini_ticker(symbol=self.symbol, event_ms=stamp, t=t))
                )
        now = datetime.now(UTC)
        for interval, spec in INTERVALS.items():
            key = self.key(n.KLINE, interval=interval)
            if not self.hub.has(key):
                self.kline_open.pop(interval, None)
                continue
            opened = self.kline_open.get(interval)
            closing = opened is not None and spec.floor(now) > opened
            if interval not in self.kline_dirty and opened is not None and not closing:
                continue
            self.kline_dirty.discard(interval)
            await self._kline(key, interval, opened)

    async def _kline(self, key: str, interval: str, opened: datetime | None) -> None:
        klines = await database_sync_to_async(selectors.candles)(self.market, interval, limit=2)
        stamp = now_ms()
        if not klines:
            return
        newest = klines[-1]
        now = datetime.now(UTC)
        for k in klines:
            if opened is not None and k.open_time == opened and newest.open_time > opened:
                self.hub.publish(
                    key,
                    encode(
                        frames.kline(
                            symbol=self.symbol, event_ms=stamp, interval=interval, k=k, closed=True
                        )
                    ),
                )
        closed = newest.close_time < now
        self.hub.publish(
            key,
            encode(
                frames.kline(
                    symbol=self.symbol, event_ms=stamp, interval=interval, k=newest, closed=closed
                )
            ),
        )
        self.kline_open[interval] = newest.open_time

    def stop(self) -> None:
        self.task.cancel()
        for reader in self.readers:
            reader.stop()


class UserFeed:
    """One user's order and balance events for their own sockets in this process."""

    def __init__(self, hub: Hub, user_id: int) -> None:
        self.hub = hub
        self.user_id = user_id
        self.key = f"{n.USER}:{user_id}"
        self.reader = _Reader(user_group(user_id), self._on_message)

    async def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        stamp = now_ms()
        if kind == "order.update":
            for payload in await database_sync_to_async(_execution_reports)(
                self.user_id, message, stamp
            ):
                self.hub.publish(self.key, encode(payload))
        elif kind == "balance.update":
            payload = frames.account_position(event_ms=stamp, balances=message["balances"])
            self.hub.publish(self.key, encode(payload))
        elif kind == "balance.change":
            payload = frames.balance_update(
                event_ms=stamp,
                asset=message["asset"],
                delta=message["delta"],
                time_ms=message["time"],
            )
            self.hub.publish(self.key, encode(payload))

    def stop(self) -> None:
        self.reader.stop()


def _execution_reports(user_id: int, message: dict[str, Any], stamp: int) -> list[dict[str, Any]]:
    """The batch's executionReports of the user's orders in one order.update message."""
    ids = [entry["id"] for entry in message["orders"]]
    orders = {
        o.pk: o
        for o in Order.objects.select_related("market__base", "market__quote").filter(
            pk__in=ids, user_id=user_id
        )
    }
    if not orders:
        return []
    market_ids = {o.market_id for o in orders.values()}
    trades = list(
        Trade.objects.filter(
            market_id__in=market_ids, seq__gt=message["prev_seq"], seq__lte=message["seq"]
        ).filter(Q(buy_order_id__in=ids) | Q(sell_order_id__in=ids))
    )
    out: list[dict[str, Any]] = []
    for order_id in ids:
        order = orders.get(order_id)
        if order is None:
            continue
        fills = [t for t in trades if order_id in (t.buy_order_id, t.sell_order_id)]
        out += frames.execution_reports(
            order=order, fills=fills, prev_seq=message["prev_seq"], event_ms=stamp
        )
    return out


class _AllTickers:
    """`!ticker@arr` and `!miniTicker@arr`: the tickers that changed, once a second."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.seen: dict[str, tuple[Any, ...]] = {}
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self._once()
            except Exception:
                logger.exception("all-market tickers failed")
            await asyncio.sleep(1.0)

    async def _once(self) -> None:
        full_key, mini_key = (
            self.hub.key_of(n.parse("!ticker@arr")),
            self.hub.key_of(n.parse("!miniticker@arr")),
        )
        rows = await database_sync_to_async(_all_tickers)()
        stamp = now_ms()
        full, mini = [], []
        for market, t in rows:
            mark = (t.last_trade_id, t.trade_count, t.open, t.bid_price, t.ask_price)
            symbol = binance_symbol(market)
            if self.seen.get(symbol) == mark:
                continue
            self.seen[symbol] = mark
            full.append(
                frames.ticker(
                    symbol=symbol,
                    event_ms=stamp,
                    t=t,
                    price_places=places(market.tick_size),
                    qty_places=places(market.lot_size),
                )
            )
            mini.append(frames.mini_ticker(symbol=symbol, event_ms=stamp, t=t))
        if full and self.hub.has(full_key):
            self.hub.publish(full_key, encode(full))
        if mini and self.hub.has(mini_key):
            self.hub.publish(mini_key, encode(mini))

    def stop(self) -> None:
        self.task.cancel()


def _all_tickers() -> list[tuple[Market, Any]]:
    markets = {m.symbol: m for m in Market.objects.select_related("base", "quote")}
    return [(markets[t.symbol], t) for t in selectors.tickers() if t.symbol in markets]


class Hub:
    """This process's subscriptions: stream key -> sockets, and the feeds behind them."""

    def __init__(self) -> None:
        self.subscribers: dict[str, dict[Subscriber, str]] = {}  # key -> {socket: name}
        self.markets: dict[str, MarketFeed] = {}
        self.market_refs: dict[str, int] = {}
        self.users: dict[int, UserFeed] = {}
        self.all_tickers: _AllTickers | None = None
        self.published = 0
        self._housekeeping = asyncio.get_running_loop().create_task(self._refresh_groups())

    @staticmethod
    def key_of(stream: n.StreamName) -> str:
        """What identifies a stream whatever its spelling (one key per market and kind)."""
        if stream.kind == n.USER:
            raise ValueError("user streams are keyed by user id")
        return f"{stream.kind}:{stream.symbol}:{stream.speed_ms}:{stream.levels}:{stream.interval}"

    def has(self, key: str) -> bool:
        return bool(self.subscribers.get(key))

    def publish(self, key: str, data: str) -> None:
        for socket, name in list(self.subscribers.get(key, {}).items()):
            socket.deliver(name, data)
            self.published += 1

    def subscribe(
        self,
        socket: Subscriber,
        stream: n.StreamName,
        *,
        market: Market | None = None,
        user_id: int | None = None,
    ) -> None:
        if stream.kind == n.USER:
            assert user_id is not None  # noqa: S101
            key = f"{n.USER}:{user_id}"
            if user_id not in self.users:
                self.users[user_id] = UserFeed(self, user_id)
        else:
            key = self.key_of(stream)
            if stream.per_market:
                assert market is not None  # noqa: S101
                if stream.symbol not in self.markets:
                    self.markets[stream.symbol] = MarketFeed(self, market)
                self.market_refs[stream.symbol] = self.market_refs.get(stream.symbol, 0) + 1
                if stream.kind == n.KLINE:
                    self.markets[stream.symbol].kline_dirty.add(stream.interval)
                if stream.kind in (n.TICKER, n.MINI_TICKER):
                    self.markets[stream.symbol].ticker_dirty = True
            elif self.all_tickers is None:
                self.all_tickers = _AllTickers(self)
        self.subscribers.setdefault(key, {})[socket] = stream.name

    def unsubscribe(
        self, socket: Subscriber, stream: n.StreamName, *, user_id: int | None = None
    ) -> None:
        key = f"{n.USER}:{user_id}" if stream.kind == n.USER else self.key_of(stream)
        members = self.subscribers.get(key)
        if members is None or members.pop(socket, None) is None:
            return
        if not members:
            del self.subscribers[key]
        if stream.kind == n.USER:
            if not self.has(key) and user_id in self.users:
                self.users.pop(user_id).stop()
        elif stream.per_market:
            left = self.market_refs[stream.symbol] - 1
            if left:
                self.market_refs[stream.symbol] = left
            else:
                del self.market_refs[stream.symbol]
                self.markets.pop(stream.symbol).stop()
        elif self.all_tickers is not None and not (
            self.has(self.key_of(n.parse("!ticker@arr")))
            or self.has(self.key_of(n.parse("!miniticker@arr")))
        ):
            self.all_tickers.stop()
            self.all_tickers = None

    async def _refresh_groups(self) -> None:
        while True:
            await asyncio.sleep(GROUP_REFRESH_SECONDS)
            readers = [r for feed in self.markets.values() for r in feed.readers]
            readers += [feed.reader for feed in self.users.values()]
            for reader in readers:
                with contextlib.suppress(Exception):
                    await reader.refresh()


_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


def get_hub() -> Hub:
    """The hub of the running event loop (one per server process)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub()
    return hub
