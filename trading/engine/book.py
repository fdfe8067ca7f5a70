"""The order book state, resting, reduce, and read-only views (depth, open orders).

Layout, chosen for CPython speed (see bench/RESULTS.md):

* An order record is a list ``[remaining, order_id, account_id, stp_group, price, is_buy]``.
* A level is a list ``[total_lots, deque_of_records, price]`` in a dict keyed by *key*:
  ``price`` for bids and ``-price`` for asks, so both sides keep an ascending sorted key list
  whose last element is the best price (O(1) best price, O(1) removal of the best level,
  and new levels usually land near the end of the list, making the insert memmove short).
* ``orders`` maps order id -> record for O(1) cancel. A cancel zeroes the record and leaves
  it in its deque (removing from the middle of a deque is O(n)); matching skips zeroed
  records. Level totals are always exact, so an empty level is dropped at once.
"""

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterator
from typing import Any

from trading.engine.commands import OrderType, Side, TimeInForce
from trading.engine.events import (
    Cancelled,
    LevelChanged,
    RawEvent,
    Reduced,
    Rejected,
)

# Every integer must fit a signed 64-bit snapshot field.
INT_LIMIT = 1 << 63
# Below any key: a market order's "limit" key, crossing every level.
NO_LIMIT = -(1 << 64)

BUY = Side.BUY
SELL = Side.SELL
GTC = TimeInForce.GTC
IOC = TimeInForce.IOC
LIMIT = OrderType.LIMIT
MARKET = OrderType.MARKET

# A record is a mutable list of ints; typed loosely because mypy has no fixed-shape lists.
Record = list[Any]
Level = list[Any]


def bad_int(value: object, minimum: int = 1) -> bool:
    """True unless ``value`` is a plain int (not bool) in [minimum, 2**63)."""
    return type(value) is not int or not minimum <= value < INT_LIMIT


class Book:
    """Order book state plus the fast entry points; ``Engine`` adds everything else."""

    __slots__ = (
        "__weakref__",
        "_ask_keys",
        "_asks",
        "_bid_keys",
        "_bids",
        "_buy_stops",
        "_ctr",
        "_orders",
        "_sell_stops",
        "_stops",
    )

    def __init__(self) -> None:
        self._bids: dict[int, Level] = {}
        self._asks: dict[int, Level] = {}
        self._bid_keys: list[int] = []
        self._ask_keys: list[int] = []
        self._orders: dict[int, Record] = {}
        # Pending stops: order id -> record, plus one heap per side (see matching.py).
        self._stops: dict[int, Record] = {}
        self._buy_stops: list[tuple[int, int, int]] = []
        self._sell_stops: list[tuple[int, int, int]] = []
        # [last emitted seq, last trade price (0 = no trade yet, so no stop can trigger)]: one
        # list shared with the fast paths' closures (see fast.py), which hold no ``self``.
        self._ctr = [0, 0]

    @property
    def _seq(self) -> int:
        return self._ctr[0]

    @_seq.setter
    def _seq(self, value: int) -> None:
        self._ctr[0] = value

    @property
    def _last_price(self) -> int:
        return self._ctr[1]

    @_last_price.setter
    def _last_price(self, value: int) -> None:
        self._ctr[1] = value

    @property
    def seq(self) -> int:
        """Sequence number of the last emitted event (0 before the first)."""
        return self._ctr[0]

    @property
    def last_price(self) -> int:
        """Price of the last trade in ticks, 0 if there was none."""
        return self._ctr[1]

    def _fire_stops(self, ev: list[RawEvent], seq: int, low: int, high: int) -> int:
        """Run stops triggered by trades in [low, high]; return the new seq (Engine overrides)."""
        return seq

    def _rest(
        self,
        ev: list[RawEvent],
        seq: int,
        order_id: int,
        account_id: int,
        stp_group: int,
        is_buy: bool,
        price_ticks: int,
        qty: int,
    ) -> int:
        """Append a new record at the back of its level and emit the level change."""
        record = [qty, order_id, account_id, stp_group, price_ticks, is_buy]
        self._orders[order_id] = record
        if is_buy:
            levels = self._bids
            key = price_ticks
        else:
            levels = self._asks
            key = -price_ticks
        level = levels.get(key)
        if level is None:
            levels[key] = [qty, deque((record,)), price_ticks]
            insort(self._bid_keys if is_buy else self._ask_keys, key)
            total = qty
        else:
            level[1].append(record)
            total = level[0] = level[0] + qty
        seq += 1
        ev.append((LevelChanged, seq, BUY if is_buy else SELL, price_ticks, total))
        return seq

    def _reject_place(
        self,
        order_id: object,
        account_id: object,
        price_ticks: object,
        qty_lots: object,
        tif: object,
        stp_group: object,
    ) -> list[RawEvent]:
        """Find the first failing check of ``place`` and emit its rejection."""
        if bad_int(order_id):
            reason = "bad_order_id"
        elif bad_int(account_id):
            reason = "bad_account_id"
        elif bad_int(qty_lots):
            reason = "bad_qty"
        elif type(price_ticks) is not int or not 0 <= price_ticks < INT_LIMIT:
            reason = "bad_price"
        elif tif is not GTC and tif is not IOC:
            reason = "bad_tif"
        elif bad_int(stp_group, 0):
            reason = "bad_stp_group"
        elif order_id in self._orders or order_id in self._stops:
            reason = "duplicate_order_id"
        else:
            reason = "bad_price"  # a limit without a price, or a market with one
        return [self._rejection(order_id, account_id, reason)]

    def _rejection(self, order_id: object, account_id: object, reason: str) -> RawEvent:
        self._seq += 1
        return (
            Rejected,
            self._seq,
            order_id if type(order_id) is int else 0,
            account_id if type(account_id) is int else 0,
            reason,
        )

    def _take_from_level(self, record: Record, lots: int) -> int:
        """Remove ``lots`` from the record's level total; drop the level if it empties."""
        price = record[4]
        if record[5]:
            levels = self._bids
            keys = self._bid_keys
            key = price
        else:
            levels = self._asks
            keys = self._ask_keys
            key = -price
        level = levels[key]
        total: int = level[0] - lots
        if total:
            level[0] = total
            if not record[0]:
                queue = level[1]
                # Drop a dead record at either end now, so churn near the ends never builds up.
                if queue[-1] is record:
                    queue.pop()
                elif queue[0] is record:
                    queue.popleft()
        else:
            del levels[key]
            if keys[-1] == key:
                keys.pop()
            else:
                del keys[bisect_left(keys, key)]
        return total

    def _cancel_stop(
        self, order_id: object, account_id: object, record: Record | None
    ) -> list[RawEvent]:
        stop = self._stops.get(order_id) if type(order_id) is int else None
        if stop is None or stop[1] != account_id:
            if bad_int(order_id):
                reason = "bad_order_id"
            elif bad_int(account_id):
                reason = "bad_account_id"
            elif record is None and stop is None:
                reason = "unknown_order"
            else:
                reason = "wrong_account"
            return [self._rejection(order_id, account_id, reason)]
        del self._stops[stop[0]]  # its heap entry is skipped lazily
        self._seq += 1
        return [(Cancelled, self._seq, stop[0], stop[1], stop[6], stop[7])]

    def reduce(self, order_id: int, account_id: int, new_qty_lots: int) -> list[RawEvent]:
        """Lower the open quantity of a resting order or pending stop, keeping priority."""
        record = self._orders.get(order_id) if type(order_id) is int else None
        if record is None or record[2] != account_id or bad_int(new_qty_lots):
            return self._reduce_other(order_id, account_id, new_qty_lots, record)
        rem = record[0]
        if new_qty_lots >= rem:
            reason = "qty_unchanged" if new_qty_lots == rem else "qty_increase"
            return [self._rejection(order_id, account_id, reason)]
        record[0] = new_qty_lots
        total = self._take_from_level(record, rem - new_qty_lots)
        seq = self._seq + 1
        self._seq = seq + 1
        return [
            (Reduced, seq, order_id, account_id, new_qty_lots, rem - new_qty_lots),
            (LevelChanged, seq + 1, BUY if record[5] else SELL, record[4], total),
        ]

    def _reduce_other(
        self, order_id: object, account_id: object, new_qty_lots: object, record: Record | None
    ) -> list[RawEvent]:
        stop = self._stops.get(order_id) if type(order_id) is int else None
        if record is None and stop is not None and stop[1] == account_id:
            if bad_int(new_qty_lots):
                return [self._rejection(order_id, account_id, "bad_qty")]
            rem = stop[6]
            if not rem:  # a market buy by quote amount has no lot quantity to reduce
                return [self._rejection(order_id, account_id, "not_reducible")]
            if new_qty_lots >= rem:
                reason = "qty_unchanged" if new_qty_lots == rem else "qty_increase"
                return [self._rejection(order_id, account_id, reason)]
            stop[6] = new_qty_lots
            self._seq += 1
            return [(Reduced, self._seq, stop[0], stop[1], new_qty_lots, rem - new_qty_lots)]
        if record is not None and record[2] == account_id:
            return [self._rejection(order_id, account_id, "bad_qty")]
        return self._cancel_stop(order_id, account_id, record)

    def depth(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Top ``n`` levels per side as (price_ticks, total_lots), best first."""
        if n <= 0:
            return [], []
        bids, asks = self._bids, self._asks
        return (
            [(bids[key][2], bids[key][0]) for key in reversed(self._bid_keys[-n:])],
            [(asks[key][2], asks[key][0]) for key in reversed(self._ask_keys[-n:])],
        )

    def open_orders(self) -> Iterator[tuple[int, int, Side, int, int]]:
        """Yield (order_id, account_id, side, price_ticks, remaining_lots) in priority order.

        Bids first, best price first and FIFO within a level, then asks the same way.
        """
        for keys, levels, side in (
            (self._bid_keys, self._bids, BUY),
            (self._ask_keys, self._asks, SELL),
        ):
            for key in reversed(keys):
                for record in levels[key][1]:
                    if record[0]:
                        yield record[1], record[2], side, record[4], record[0]

    def resting_records(self) -> Iterator[Record]:
        """Yield the live records (see module docstring) in ``open_orders`` order."""
        for keys, levels in ((self._bid_keys, self._bids), (self._ask_keys, self._asks)):
            for key in reversed(keys):
                for record in levels[key][1]:
                    if record[0]:
                        yield record
