"""The hot paths: plain LIMIT (GTC/IOC) and MARKET-by-lots placement, and cancel.

These run for the vast majority of commands, so they are written for CPython speed: locals
instead of attribute lookups, the no-cross rest inlined, events as raw tuples returned in
one list. ``Engine.apply`` validates a command and then calls the same methods, so the
benchmark and production run one code path.
"""

from bisect import bisect_left, insort
from collections import deque

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
from trading.engine.commands import TimeInForce
from trading.engine.events import Accepted, Cancelled, Expired, LevelChanged, RawEvent, Trade


class FastBook(Book):
    """``Book`` plus the fast entry points; see the module docstring."""

    __slots__ = ()

    def place(
        self,
        order_id: int,
        account_id: int,
        is_buy: bool,
        price_ticks: int,
        qty_lots: int,
        tif: TimeInForce = GTC,
        stp_group: int = 0,
    ) -> list[RawEvent]:
        """Place a LIMIT order (GTC or IOC) without self-trade prevention; return raw events.

        Invalid arguments give a ``Rejected`` event, never an exception. Like Python, this
        entry point treats a bool as the int it is; ``apply`` is stricter.
        """
        orders = self._orders
        try:
            # One OR finds any negative, oversized or non-integer argument (TypeError).
            bits = order_id | account_id | price_ticks | qty_lots | stp_group
        except TypeError:
            bits = -1
        if (
            not 0 <= bits < INT_LIMIT
            or not (order_id and account_id and price_ticks and qty_lots)
            or (tif is not GTC and tif is not IOC)
            or order_id in orders
            or order_id in self._stops
        ):
            return self._reject_place(order_id, account_id, price_ticks, qty_lots, tif, stp_group)
        if is_buy:
            keys = self._ask_keys
            if keys and -keys[-1] <= price_ticks:
                return self._cross(
                    order_id, account_id, True, price_ticks, qty_lots, tif, stp_group
                )
            levels = self._bids
            key = price_ticks
            side = BUY
        else:
            keys = self._bid_keys
            if keys and keys[-1] >= price_ticks:
                return self._cross(
                    order_id, account_id, False, price_ticks, qty_lots, tif, stp_group
                )
            levels = self._asks
            key = -price_ticks
            side = SELL
        seq = self._seq + 1
        if tif is IOC:
            self._seq = seq + 1
            return [
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
            ]
        # The most common outcome of all: no cross, rest at the back of the level.
        record = [qty_lots, order_id, account_id, stp_group, price_ticks, is_buy]
        orders[order_id] = record
        level = levels.get(key)
        if level is None:
            levels[key] = [qty_lots, deque((record,)), price_ticks]
            insort(self._bid_keys if is_buy else self._ask_keys, key)
            total = qty_lots
        else:
            level[1].append(record)
            total = level[0] = level[0] + qty_lots
        self._seq = seq + 1
        return [
            (Accepted, seq, order_id, account_id, side, LIMIT, tif, price_ticks, qty_lots, 0, 0),
            (LevelChanged, seq + 1, side, price_ticks, total),
        ]

    def place_market(
        self,
        order_id: int,
        account_id: int,
        is_buy: bool,
        qty_lots: int,
        tif: TimeInForce = IOC,
        stp_group: int = 0,
    ) -> list[RawEvent]:
        """Place a MARKET order by lots without self-trade prevention; return raw events.

        A market order never rests: what the book cannot fill expires (reason ``market``).
        """
        try:
            bits = order_id | account_id | qty_lots | stp_group
        except TypeError:
            bits = -1
        if (
            not 0 <= bits < INT_LIMIT
            or not (order_id and account_id and qty_lots)
            or (tif is not GTC and tif is not IOC)
            or order_id in self._orders
            or order_id in self._stops
        ):
            return self._reject_place(order_id, account_id, 1, qty_lots, tif, stp_group)
        return self._cross(order_id, account_id, is_buy, 0, qty_lots, tif, stp_group)

    def _cross(
        self,
        order_id: int,
        account_id: int,
        is_buy: bool,
        price_ticks: int,
        qty_lots: int,
        tif: TimeInForce,
        stp_group: int,
    ) -> list[RawEvent]:
        """Match a validated order (price 0 = market), then rest or expire the remainder."""
        orders = self._orders
        seq = self._seq + 1
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
            keys = self._ask_keys
            levels = self._asks
            klim = -price_ticks if price_ticks else NO_LIMIT
            opp = SELL
        else:
            keys = self._bid_keys
            levels = self._bids
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
            self._last_price = px
        if qty:
            if not price_ticks or tif is IOC:
                seq += 1
                append(
                    (Expired, seq, order_id, account_id, qty, 0, "ioc" if price_ticks else "market")
                )
            else:
                seq = self._rest(ev, seq, order_id, account_id, stp_group, is_buy, price_ticks, qty)
        if first and self._stops:
            # A buy sweeps up from ``first`` to ``px``, a sell sweeps down.
            if is_buy:
                seq = self._fire_stops(ev, seq, first, px)
            else:
                seq = self._fire_stops(ev, seq, px, first)
        self._seq = seq
        return ev

    def cancel(self, order_id: int, account_id: int) -> list[RawEvent]:
        """Cancel a resting order or a pending stop in O(1); return raw events."""
        try:
            record = self._orders[order_id]
        except (KeyError, TypeError):  # unknown, or not even hashable
            return self._cancel_stop(order_id, account_id, None)
        if record[2] != account_id:
            return self._cancel_stop(order_id, account_id, record)
        del self._orders[order_id]
        rem = record[0]
        record[0] = 0  # the record may stay in its deque; matching skips it
        price = record[4]
        if record[5]:
            levels = self._bids
            key = price
            side = BUY
        else:
            levels = self._asks
            key = -price
            side = SELL
        level = levels[key]
        total = level[0] - rem
        if total:
            level[0] = total
            queue = level[1]
            # Drop a dead record at either end now, so churn at the ends never builds up.
            if queue[-1] is record:
                queue.pop()
            elif queue[0] is record:
                queue.popleft()
        else:
            del levels[key]
            keys = self._bid_keys if record[5] else self._ask_keys
            if keys[-1] == key:
                keys.pop()
            else:
                del keys[bisect_left(keys, key)]
        seq = self._seq + 1
        self._seq = seq + 1
        return [
            (Cancelled, seq, order_id, account_id, rem, 0),
            (LevelChanged, seq + 1, side, price, total),
        ]
