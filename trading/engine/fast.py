"""The hot paths: plain LIMIT (GTC/IOC) and MARKET-by-lots placement, and cancel.

These run for the vast majority of commands, so they are written for CPython speed. They
are closures, built once per book by ``_fast_paths`` and stored in instance slots, so
``book.place(...)`` is a plain function call (no bound method, no ``self`` attribute
traffic): the book's containers are closure cells, and so are the sequence number and the
last trade price (the book reads and writes those two through ``book._counters``). For the
rare slow paths the closures hold a *twin* of the book (same class, the very same
containers, no closures of its own), never the book itself: so there is no reference cycle,
a dropped book is freed by reference counting even after ``gc.freeze()``, and a closure
taken from a book keeps working alone.

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
    IOC,
    LIMIT,
    MARKET,
    NO_LIMIT,
    SELL,
    Book,
    Record,
)
from trading.engine.events import Accepted, Cancelled, Expired, LevelChanged, RawEvent, Trade

Events = Sequence[RawEvent]
PlaceFn = Callable[..., Events]
CancelFn = Callable[[Any, Any], Events]
TakeFn = Callable[[int, int, int, int, object, int, int, object], list[RawEvent]]


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
    orders = book._orders
    pop_order = orders.pop
    stops = book._stops
    levels = book._levels
    bid_keys, ask_keys = book._bid_keys, book._ask_keys
    seq = book._seq
    last_price = book._last_price

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

    # Before the twin is made, so that it shares these cells too.
    book._counters = (get_seq, set_seq, get_last_price, set_last_price)
    twin = _twin(book)

    def slow() -> Any:
        return twin

    def make_take(keys: list[int], side: object, opp: object, is_buy: bool) -> TakeFn:
        """The matcher for takers on one side: one source, one closure per side, so that
        the side's containers and constants are cells rather than branches."""

        def take(
            order_id: int,
            account_id: int,
            price_ticks: int,
            qty_lots: int,
            tif: object,
            stp_group: int,
            klim: int,
            order_type: object,
        ) -> list[RawEvent]:
            """Match a validated order up to level key ``klim``, then rest or expire the rest."""
            nonlocal seq, last_price
            s = seq + 1
            ev: list[RawEvent] = [
                (
                    Accepted,
                    s,
                    order_id,
                    account_id,
                    side,
                    order_type,
                    tif,
                    price_ticks,
                    qty_lots,
                    0,
                    0,
                )
            ]
            if not keys:  # only a market order gets here with an empty book side
                seq = s + 1
                ev.append((Expired, seq, order_id, account_id, qty_lots, 0, "market"))
                return ev
            append = ev.append
            qty = qty_lots
            key = keys[-1]
            level = levels[key]
            first = level[2]
            while True:
                total = level[0]
                queue = level[1]
                px = level[2]
                while True:
                    maker = queue[0]
                    mrem = maker["rem"]
                    if not mrem:  # cancelled, left behind lazily
                        queue.popleft()
                        continue
                    s += 1
                    maker_id = maker["id"]
                    if mrem < qty:
                        qty -= mrem
                        total -= mrem
                        queue.popleft()
                        del orders[maker_id]
                        append(
                            (
                                Trade,
                                s,
                                maker_id,
                                order_id,
                                maker["account"],
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
                            del orders[maker_id]
                        else:
                            maker["rem"] = mrem - qty
                        total -= qty
                        append(
                            (
                                Trade,
                                s,
                                maker_id,
                                order_id,
                                maker["account"],
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
                s += 1
                if total:
                    level[0] = total
                    append((LevelChanged, s, opp, px, total))
                    break
                keys.pop()
                del levels[key]
                append((LevelChanged, s, opp, px, 0))
                if not qty or not keys:
                    break
                key = keys[-1]
                if key < klim:
                    break
                level = levels[key]
            last_price = px
            if qty:
                if order_type is MARKET or tif is IOC:
                    s += 1
                    reason = "market" if order_type is MARKET else "ioc"
                    append((Expired, s, order_id, account_id, qty, 0, reason))
                else:
                    s = slow()._rest(
                        ev, s, order_id, account_id, stp_group, is_buy, price_ticks, qty
                    )
            if stops:
                # A buy sweeps up from ``first`` to ``px``, a sell sweeps down.
                if is_buy:
                    s = slow()._fire_stops(ev, s, first, px)
                else:
                    s = slow()._fire_stops(ev, s, px, first)
            seq = s
            return ev

        return take

    take_buy = make_take(ask_keys, BUY, SELL, True)
    take_sell = make_take(bid_keys, SELL, BUY, False)

    def place(
        order_id: int,
        account_id: int,
        is_buy: bool,
        price_ticks: int,
        qty_lots: int,
        tif: object = GTC,
        stp_group: int = 0,
    ) -> Events:
        nonlocal seq
        try:
            # One OR and a shift find any negative, oversized or non-integer (TypeError)
            # argument. Small values first: an OR below 257 allocates no new int.
            bad = (account_id | qty_lots | stp_group | order_id | price_ticks) >> 63
        except TypeError:
            bad = 1
        if (
            bad
            or not (order_id and account_id and price_ticks and qty_lots)
            or order_id in orders
            or (stops and order_id in stops)
        ):
            return slow()._reject_place(  # type: ignore[no-any-return]
                order_id, account_id, price_ticks, qty_lots, tif, stp_group
            )
        if tif is not GTC:
            return place_ioc(order_id, account_id, is_buy, price_ticks, qty_lots, tif, stp_group)
        # The most common outcome of all: no cross, rest at the back of the level. Written out
        # per side, with the side's constants, because this is the hottest path. Crossing goes
        # to ``take_*``: inlined here, its many locals would slow every call (frame set-up
        # and tear-down cost grows with the number of local variables and cells).
        if is_buy:
            if ask_keys and -ask_keys[-1] <= price_ticks:
                return take_buy(
                    order_id, account_id, price_ticks, qty_lots, tif, stp_group, -price_ticks, LIMIT
                )
            record = {"rem": qty_lots, "id": order_id, "account": account_id, "key": price_ticks}
            if stp_group:
                record["group"] = stp_group
            orders[order_id] = record
            level = levels.get(price_ticks)
            if level is None:
                levels[price_ticks] = [qty_lots, deque((record,)), price_ticks, BUY, bid_keys]
                insort(bid_keys, price_ticks)
                total = qty_lots
            else:
                level[1].append(record)
                total = level[0] = level[0] + qty_lots
            seq += 2
            return (
                (
                    Accepted,
                    seq - 1,
                    order_id,
                    account_id,
                    BUY,
                    LIMIT,
                    tif,
                    price_ticks,
                    qty_lots,
                    0,
                    0,
                ),
                (LevelChanged, seq, BUY, price_ticks, total),
            )
        if bid_keys and bid_keys[-1] >= price_ticks:
            return take_sell(
                order_id, account_id, price_ticks, qty_lots, tif, stp_group, price_ticks, LIMIT
            )
        key = -price_ticks
        record = {"rem": qty_lots, "id": order_id, "account": account_id, "key": key}
        if stp_group:
            record["group"] = stp_group
        orders[order_id] = record
        level = levels.get(key)
        if level is None:
            levels[key] = [qty_lots, deque((record,)), price_ticks, SELL, ask_keys]
            insort(ask_keys, key)
            total = qty_lots
        else:
            level[1].append(record)
            total = level[0] = level[0] + qty_lots
        seq += 2
        return (
            (
                Accepted,
                seq - 1,
                order_id,
                account_id,
                SELL,
                LIMIT,
                tif,
                price_ticks,
                qty_lots,
                0,
                0,
            ),
            (LevelChanged, seq, SELL, price_ticks, total),
        )

    def place_ioc(
        order_id: int,
        account_id: int,
        is_buy: bool,
        price_ticks: int,
        qty_lots: int,
        tif: object,
        stp_group: int,
    ) -> Events:
        """``place`` for a valid order of any TIF but GTC."""
        if tif is not IOC:
            return slow()._reject_place(  # type: ignore[no-any-return]
                order_id, account_id, price_ticks, qty_lots, tif, stp_group
            )
        if is_buy:
            if ask_keys and -ask_keys[-1] <= price_ticks:
                return take_buy(
                    order_id, account_id, price_ticks, qty_lots, tif, stp_group, -price_ticks, LIMIT
                )
            side = BUY
        else:
            if bid_keys and bid_keys[-1] >= price_ticks:
                return take_sell(
                    order_id, account_id, price_ticks, qty_lots, tif, stp_group, price_ticks, LIMIT
                )
            side = SELL
        return slow()._unfilled_ioc(  # type: ignore[no-any-return]
            order_id, account_id, side, price_ticks, qty_lots
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
            bad = (account_id | qty_lots | stp_group | order_id) >> 63
        except TypeError:
            bad = 1
        if (
            bad
            or not (order_id and account_id and qty_lots)
            or (tif is not GTC and tif is not IOC)
            or order_id in orders
            or (stops and order_id in stops)
        ):
            return slow()._reject_place(  # type: ignore[no-any-return]
                order_id, account_id, 1, qty_lots, tif, stp_group
            )
        if is_buy:
            return take_buy(order_id, account_id, 0, qty_lots, tif, stp_group, NO_LIMIT, MARKET)
        return take_sell(order_id, account_id, 0, qty_lots, tif, stp_group, NO_LIMIT, MARKET)

    def cancel(order_id: Any, account_id: Any) -> Events:
        nonlocal seq
        try:
            record: Record = pop_order(order_id)
        except (KeyError, TypeError):  # unknown, or not even hashable
            return slow()._cancel_stop(order_id, account_id, None)  # type: ignore[no-any-return]
        if record["account"] != account_id:
            orders[record["id"]] = record  # put back as it was (order_id may be True for 1)
            return slow()._cancel_stop(order_id, account_id, record)  # type: ignore[no-any-return]
        rem = record["rem"]
        key = record["key"]
        level = levels[key]
        total = level[0] - rem
        seq += 2
        if total:
            level[0] = total
            queue = level[1]
            # At either end it goes now, so churn at the ends never builds up; in the middle
            # it stays, zeroed, and matching skips it.
            if queue[-1] is record:
                queue.pop()
            elif queue[0] is record:
                queue.popleft()
            else:
                record["rem"] = 0
        else:
            del levels[key]
            keys = level[4]
            if keys[-1] == key:
                keys.pop()
            else:
                del keys[bisect_left(keys, key)]
        return (
            (Cancelled, seq - 1, order_id, account_id, rem, 0),
            (LevelChanged, seq, level[3], level[2], total),
        )

    return place, place_market, cancel
