"""The order book state, resting, reduce, and read-only views (depth, open orders).

Layout, chosen for CPython speed and for the cyclic GC (see bench/RESULTS.md):

* A level's *key* is ``price`` for a bid and ``-price`` for an ask. One dict ``levels`` holds
  both sides (keys never collide: prices are positive), and each side keeps an ascending
  sorted key list whose last element is its best price (O(1) best price, O(1) removal of the
  best level, and new levels usually land near the end of the list, so the insert is short).
* A level is a list ``[total_lots, deque_of_records, price, side, keys_of_its_side]``, so a
  cancel needs no branch on the side.
* A resting order is a small dict of ints ``{"rem", "id", "account", "key"}`` (plus "group"
  when its STP group is not 0). A dict whose values are all atomic is created *untracked* by
  the cyclic GC and stays so when a value changes, so a book of a million orders adds
  nothing to a collection (a list is tracked for life; a tuple is tracked until a collection
  gets round to it, which churn alone never triggers: measured in bench/RESULTS.md), and it
  is mutable: a fill or a reduce updates it in place.
* ``orders`` maps order id -> record for O(1) cancel. A cancel zeroes ``rem`` and leaves the
  record in its deque (removing from the middle of a deque is O(n)); matching skips zeroed
  records. Level totals are always exact, so an empty level is dropped at once.
* The sequence number and last trade price live in closure cells shared with the fast paths
  (fast.py); ``_counters`` holds their get/set functions.
"""

from bisect import insort
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from trading.engine.commands import OrderType, Side, TimeInForce
from trading.engine.events import (
    Accepted,
    Cancelled,
    Expired,
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

# Field positions of a level (see the module docstring).
TOTAL, QUEUE, PRICE, SIDE, KEYS = range(5)
Record = dict[str, int]
# Typed loosely: mypy has no fixed-shape lists.
Level = list[Any]
# A pending stop is a mutable list (see matching.py).
StopRecord = list[Any]
# get seq, set seq, get last price, set last price
Counters = tuple[Callable[[], int], Callable[[int], None], Callable[[], int], Callable[[int], None]]


def bad_int(value: object, minimum: int = 1) -> bool:
    """True unless ``value`` is a plain int (not bool) in [minimum, 2**63)."""
    return type(value) is not int or not minimum <= value < INT_LIMIT


def plain_counters() -> Counters:
    """Sequence number and last trade price cells for a book without fast paths."""
    seq = last_price = 0

    def get_seq() -> int:
        return seq

    def set_seq(value: int) -> None:
        nonlocal seq
        seq = value

    def get_last_price() -> int:
        return last_price

    def set_last_price(value: int) -> None:
        nonlocal last_price
        last_price = value

    return get_seq, set_seq, get_last_price, set_last_price


def new_level(
    levels: dict[int, Level], keys: list[int], key: int, record: Record, side: Side
) -> None:
    """Open the level of ``key`` with ``record`` as its only order."""
    levels[key] = [record["rem"], deque((record,)), key if key > 0 else -key, side, keys]
    insort(keys, key)


class Book:
    """Order book state plus the fast entry points; ``Engine`` adds everything else."""

    __slots__ = (
        "__weakref__",
        "_ask_keys",
        "_bid_keys",
        "_buy_stops",
        "_counters",
        "_levels",
        "_orders",
        "_sell_stops",
        "_stops",
    )

    def __init__(self) -> None:
        self._levels: dict[int, Level] = {}
        self._bid_keys: list[int] = []
        self._ask_keys: list[int] = []
        self._orders: dict[int, Record] = {}
        # Pending stops: order id -> record, plus one heap per side (see matching.py).
        self._stops: dict[int, StopRecord] = {}
        self._buy_stops: list[tuple[int, int, int]] = []
        self._sell_stops: list[tuple[int, int, int]] = []
        self._counters: Counters = plain_counters()

    @property
    def _seq(self) -> int:
        return self._counters[0]()

    @_seq.setter
    def _seq(self, value: int) -> None:
        self._counters[1](value)

    @property
    def _last_price(self) -> int:
        return self._counters[2]()

    @_last_price.setter
    def _last_price(self, value: int) -> None:
        self._counters[3](value)

    @property
    def seq(self) -> int:
        """Sequence number of the last emitted event (0 before the first)."""
        return self._counters[0]()

    @property
    def last_price(self) -> int:
        """Price of the last trade in ticks, 0 if there was none."""
        return self._counters[2]()

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
        key = price_ticks if is_buy else -price_ticks
        record = {"rem": qty, "id": order_id, "account": account_id, "key": key}
        if stp_group:
            record["group"] = stp_group
        self._orders[order_id] = record
        level = self._levels.get(key)
        if level is None:
            keys = self._bid_keys if is_buy else self._ask_keys
            new_level(self._levels, keys, key, record, BUY if is_buy else SELL)
            total = qty
        else:
            level[QUEUE].append(record)
            total = level[TOTAL] = level[TOTAL] + qty
        seq += 1
        ev.append((LevelChanged, seq, BUY if is_buy else SELL, price_ticks, total))
        return seq

    def _unfilled_ioc(
        self, order_id: int, account_id: int, side: Side, price_ticks: int, qty_lots: int
    ) -> list[RawEvent]:
        """Accept and expire an IOC limit order that does not cross."""
        seq = self._seq + 1
        self._seq = seq + 1
        return [
            (Accepted, seq, order_id, account_id, side, LIMIT, IOC, price_ticks, qty_lots, 0, 0),
            (Expired, seq + 1, order_id, account_id, qty_lots, 0, "ioc"),
        ]

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
        seq = self._seq + 1
        self._seq = seq
        return (
            Rejected,
            seq,
            order_id if type(order_id) is int else 0,
            account_id if type(account_id) is int else 0,
            reason,
        )

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
        seq = self._seq + 1
        self._seq = seq
        return [(Cancelled, seq, stop[0], stop[1], stop[6], stop[7])]

    def reduce(self, order_id: int, account_id: int, new_qty_lots: int) -> list[RawEvent]:
        """Lower the open quantity of a resting order or pending stop, keeping priority."""
        record = self._orders.get(order_id) if type(order_id) is int else None
        if record is None or record["account"] != account_id or bad_int(new_qty_lots):
            return self._reduce_other(order_id, account_id, new_qty_lots, record)
        rem = record["rem"]
        if new_qty_lots >= rem:
            reason = "qty_unchanged" if new_qty_lots == rem else "qty_increase"
            return [self._rejection(order_id, account_id, reason)]
        record["rem"] = new_qty_lots
        level = self._levels[record["key"]]
        level[TOTAL] -= rem - new_qty_lots  # stays > 0: the order itself still rests
        seq = self._seq + 1
        self._seq = seq + 1
        return [
            (Reduced, seq, order_id, account_id, new_qty_lots, rem - new_qty_lots),
            (LevelChanged, seq + 1, level[SIDE], level[PRICE], level[TOTAL]),
        ]

    def _reduce_other(
        self,
        order_id: object,
        account_id: object,
        new_qty_lots: object,
        record: Record | None,
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
            seq = self._seq + 1
            self._seq = seq
            return [(Reduced, seq, stop[0], stop[1], new_qty_lots, rem - new_qty_lots)]
        if record is not None and record["account"] == account_id:
            return [self._rejection(order_id, account_id, "bad_qty")]
        return self._cancel_stop(order_id, account_id, record)

    def depth(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Top ``n`` levels per side as (price_ticks, total_lots), best first."""
        if n <= 0:
            return [], []
        levels = self._levels
        return (
            [(levels[key][PRICE], levels[key][TOTAL]) for key in reversed(self._bid_keys[-n:])],
            [(levels[key][PRICE], levels[key][TOTAL]) for key in reversed(self._ask_keys[-n:])],
        )

    def open_orders(self) -> Iterator[tuple[int, int, Side, int, int]]:
        """Yield (order_id, account_id, side, price_ticks, remaining_lots) in priority order.

        Bids first, best price first and FIFO within a level, then asks the same way.
        """
        for record in self.resting_records():
            key = record["key"]
            side, price = (BUY, key) if key > 0 else (SELL, -key)
            yield record["id"], record["account"], side, price, record["rem"]

    def resting_records(self) -> Iterator[Record]:
        """Yield the record of every resting order, in ``open_orders`` order."""
        levels = self._levels
        for keys in (self._bid_keys, self._ask_keys):
            for key in reversed(keys):
                for record in levels[key][QUEUE]:
                    if record["rem"]:
                        yield record
