"""The hot paths: plain LIMIT (GTC/IOC) and MARKET-by-lots placement, and cancel.

These run for the vast majority of commands, so they are written for CPython speed. They
are closures, built once per book by ``_fast_paths`` and stored in instance slots, so
``book.place(...)`` is a plain function call (no bound method, no ``self`` attribute
traffic): the book's containers are closure cells and the sequence number and last price
live in the shared two-int list ``book._ctr``. For the rare slow paths the closures hold a
*twin* of the book (same class, the very same containers, no closures of its own), never
the book itself: so there is no reference cycle, a dropped book is freed by reference
counting even after ``gc.freeze()``, and a closure taken from a book keeps working alone.

Each call returns the full list of raw events it caused (``events``): a tuple of event
tuples for the common outcomes, a list when the order matched. ``Engine.apply`` validates a
command and then calls the same closures, so the benchmark and production run one code path.
"""

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from trading.engine.book import (
    BUY,
    GTC,
    INT_LIMIT,
    IOC,
    LIMIT,
    MARKET,
    NO_LIMIT,
    SELL,
    Book,
)
from trading.engine.events import Accepted, Cancelled, Expired, LevelChanged, RawEvent, Trade

Events = Sequence[RawEvent]
PlaceFn = Callable[..., Events]
CancelFn = Callable[[Any, Any], Events]


class FastBook(Book):
    """``Book`` plus the fast entry points; see the module docstring.

    ``place(order_id, account_id, is_buy, price_ticks, qty_lots, tif=GTC, stp_group=0)``:
    a LIMIT order (GTC or IOC) without self-trade prevention.
    ``place_market(order_id, account_id, is_buy, qty_lots, tif=IOC, stp_group=0)``: a MARKET
    order by lots without self-trade prevention; what the book cannot fill expires.
    ``cancel(order_id, account_id)``: cancel a resting order or a pending stop in O(1).

    Invalid arguments give a ``Rejected`` event, never an exception. Like Python, these entry
    points treat a bool as the int it is; ``apply`` is stricter.
    """

    __slots__ = ("cancel", "place", "place_market")

    place: PlaceFn
    place_market: PlaceFn
    cancel: CancelFn

    def __init__(self) -> None:
        super().__init__()
        self.place, self.place_market, self.cancel = _fast_paths(self)


def _twin(book: Book) -> Book:
    """Another instance of ``book``'s class sharing all of its state, without fast paths."""
    twin: Book = object.__new__(type(book))
    for name in Book.__slots__:
        if name != "__weakref__":
            setattr(twin, name, getattr(book, name))
    return twin


def _fast_paths(book: Book) -> tuple[PlaceFn, PlaceFn, CancelFn]:
    twin = _twin(book)
    ctr = book._ctr
    orders = book._orders
    stops = book._stops
    bids, asks = book._bids, book._asks
    bid_keys, ask_keys = book._bid_keys, book._ask_keys

    def slow() -> Any:
        return twin

    def cross(
        order_id: int,
        account_id: int,
        is_buy: bool,
        price_ticks: int,
        qty_lots: int,
        tif: object,
        stp_group: int,
    ) -> list[RawEvent]:
        """Match a validated order (price 0 = market), then rest or expire the remainder."""
        seq = ctr[0] + 1
        side = BUY if is_buy else SELL
        ev: list[RawEvent] = [
            (
                Accepted,
                seq,
                order_id,
                account_id,
                side,
                LIMIT if price_ticks else MARKET,
                tif,
                price_ticks,
                qty_lots,
                0,
                0,
            )
        ]
        append = ev.append
        if is_buy:
            keys = ask_keys
            levels = asks
            klim = -price_ticks if price_ticks else NO_LIMIT
            opp = SELL
        else:
            keys = bid_keys
            levels = bids
            klim = price_ticks if price_ticks else NO_LIMIT
            opp = BUY
        qty = qty_lots
        first = px = 0
        if keys and keys[-1] >= klim:
            first = levels[keys[-1]][2]
            while True:
                key = keys[-1]
                level = levels[key]
                total = level[0]
                queue = level[1]
                px = level[2]
                while True:
                    maker = queue[0]
                    mrem = maker[0]
                    if not mrem:  # cancelled, left behind lazily
                        queue.popleft()
                        continue
                    seq += 1
                    if mrem < qty:
                        qty -= mrem
                        total -= mrem
                        queue.popleft()
                        del orders[maker[1]]
                        append(
                            (
                                Trade,
                                seq,
                                maker[1],
                                order_id,
                                maker[2],
                                account_id,
                                px,
                                mrem,
                                side,
                                True,
                                False,
                            )
                        )
                        if not total:
                            break
                    else:
                        if mrem == qty:
                            queue.popleft()
                            del orders[maker[1]]
                        else:
                            maker[0] = mrem - qty
                        total -= qty
                        append(
                            (
                                Trade,
                                seq,
                                maker[1],
                                order_id,
                                maker[2],
                                account_id,
                                px,
                                qty,
                                side,
                                mrem == qty,
                                True,
                            )
                        )
                        qty = 0
                        break
                seq += 1
                if total:
                    level[0] = total
                    append((LevelChanged, seq, opp, px, total))
                    break
                keys.pop()
                del levels[key]
                append((LevelChanged, seq, opp, px, 0))
                if not qty or not keys or keys[-1] < klim:
                    break
            ctr[1] = px
        if qty:
            if not price_ticks or tif is IOC:
                seq += 1
                append(
                    (Expired, seq, order_id, account_id, qty, 0, "ioc" if price_ticks else "market")
                )
            else:
                seq = slow()._rest(
                    ev, seq, order_id, account_id, stp_group, is_buy, price_ticks, qty
                )
        if first and stops:
            # A buy sweeps up from ``first`` to ``px``, a sell sweeps down.
            if is_buy:
                seq = slow()._fire_stops(ev, seq, first, px)
            else:
                seq = slow()._fire_stops(ev, seq, px, first)
        ctr[0] = seq
        return ev

    def place(
        order_id: int,
        account_id: int,
        is_buy: bool,
        price_ticks: int,
        qty_lots: int,
        tif: object = GTC,
        stp_group: int = 0,
    ) -> Events:
        try:
            # One OR finds any negative, oversized or non-integer argument (TypeError).
            bits = order_id | account_id | price_ticks | qty_lots | stp_group
        except TypeError:
            bits = -1
        if (
            not 0 < bits < INT_LIMIT
            or not (order_id and account_id and price_ticks and qty_lots)
            or (tif is not GTC and tif is not IOC)
            or order_id in orders
            or (stops and order_id in stops)
        ):
            return slow()._reject_place(  # type: ignore[no-any-return]
                order_id, account_id, price_ticks, qty_lots, tif, stp_group
            )
        if is_buy:
            if ask_keys and -ask_keys[-1] <= price_ticks:
                return cross(order_id, account_id, True, price_ticks, qty_lots, tif, stp_group)
            level = bids.get(price_ticks)
            side = BUY
        else:
            if bid_keys and bid_keys[-1] >= price_ticks:
                return cross(order_id, account_id, False, price_ticks, qty_lots, tif, stp_group)
            level = asks.get(-price_ticks)
            side = SELL
        seq = ctr[0] + 1
        if tif is IOC:
            ctr[0] = seq + 1
            return (
                (
                    Accepted,
                    seq,
                    order_id,
                    account_id,
                    side,
                    LIMIT,
                    tif,
                    price_ticks,
                    qty_lots,
                    0,
                    0,
                ),
                (Expired, seq + 1, order_id, account_id, qty_lots, 0, "ioc"),
            )
        # The most common outcome of all: no cross, rest at the back of the level.
        record = [qty_lots, order_id, account_id, stp_group, price_ticks, is_buy]
        orders[order_id] = record
        if level is None:
            if is_buy:
                bids[price_ticks] = [qty_lots, deque((record,)), price_ticks]
                insort(bid_keys, price_ticks)
            else:
                asks[-price_ticks] = [qty_lots, deque((record,)), price_ticks]
                insort(ask_keys, -price_ticks)
            total = qty_lots
        else:
            level[1].append(record)
            total = level[0] = level[0] + qty_lots
        ctr[0] = seq + 1
        return (
            (Accepted, seq, order_id, account_id, side, LIMIT, tif, price_ticks, qty_lots, 0, 0),
            (LevelChanged, seq + 1, side, price_ticks, total),
        )

    def place_market(
        order_id: int,
        account_id: int,
        is_buy: bool,
        qty_lots: int,
        tif: object = IOC,
        stp_group: int = 0,
    ) -> Events:
        try:
            bits = order_id | account_id | qty_lots | stp_group
        except TypeError:
            bits = -1
        if (
            not 0 < bits < INT_LIMIT
            or not (order_id and account_id and qty_lots)
            or (tif is not GTC and tif is not IOC)
            or order_id in orders
            or (stops and order_id in stops)
        ):
            return slow()._reject_place(  # type: ignore[no-any-return]
                order_id, account_id, 1, qty_lots, tif, stp_group
            )
        return cross(order_id, account_id, is_buy, 0, qty_lots, tif, stp_group)

    def cancel(order_id: Any, account_id: Any) -> Events:
        try:
            record = orders[order_id]
        except (KeyError, TypeError):  # unknown, or not even hashable
            return slow()._cancel_stop(order_id, account_id, None)  # type: ignore[no-any-return]
        if record[2] != account_id:
            return slow()._cancel_stop(order_id, account_id, record)  # type: ignore[no-any-return]
        del orders[order_id]
        rem = record[0]
        record[0] = 0  # the record may stay in its deque; matching skips it
        price = record[4]
        if record[5]:
            level = bids[price]
            side = BUY
        else:
            level = asks[-price]
            side = SELL
        total = level[0] - rem
        if total:
            level[0] = total
            queue = level[1]
            # Drop a dead record at either end now, so churn at the ends never builds up.
            if queue[-1] is record:
                queue.pop()
            elif queue[0] is record:
                queue.popleft()
        elif record[5]:
            del bids[price]
            if bid_keys[-1] == price:
                bid_keys.pop()
            else:
                del bid_keys[bisect_left(bid_keys, price)]
        else:
            del asks[-price]
            if ask_keys[-1] == -price:
                ask_keys.pop()
            else:
                del ask_keys[bisect_left(ask_keys, -price)]
        seq = ctr[0] + 1
        ctr[0] = seq + 1
        return (
            (Cancelled, seq, order_id, account_id, rem, 0),
            (LevelChanged, seq + 1, side, price, total),
        )

    return place, place_market, cancel
