"""The engine: command dispatch, the general matcher (STP, FOK, quote budgets), stops.

Plain LIMIT GTC/IOC and MARKET-by-lots orders without self-trade prevention take the fast
path in ``Book.place``; everything else goes through ``_execute`` here. Both emit the same
events for the same situation, which the differential tests check against a reference.

Public surface, for the loops and tests: ``apply`` / ``apply_dict`` / ``apply_raw``,
``rejection_for`` (a command refused outside the engine: undecodable, or placements
gated by the market's status), ``restore_position`` (a book rebuilt from the database
continues the settled sequence and last price), ``snapshot`` / ``restore``, ``seq``,
``pending_stops``, ``state_hash``. ``trading.engine.fast`` is the engine's private hot
path (closures over the book's containers, see its docstring): only this module and the
benchmarks call ``place`` / ``place_market`` / ``cancel`` directly, and nothing outside the
engine package touches an underscore name.
"""

from __future__ import annotations

from collections import deque
from heapq import heappop, heappush
from typing import Any

from trading.engine.book import BUY, NO_LIMIT, SELL, StopRecord, bad_int
from trading.engine.commands import (
    BadCommand,
    CancelAll,
    CancelOrder,
    Command,
    OrderType,
    PlaceOrder,
    ReduceOrder,
    StpMode,
    TimeInForce,
    command_from_dict,
)
from trading.engine.events import (
    Accepted,
    Event,
    Expired,
    LevelChanged,
    RawEvent,
    StopTriggered,
    Trade,
    decode_event,
)
from trading.engine.fast import FastBook
from trading.engine.snapshot import dump_book, load_book, state_digest
from trading.engine.validation import OrderSpec, check_place

_FAST_TIFS = frozenset({TimeInForce.GTC, TimeInForce.IOC})
_STOP_TYPES = frozenset({OrderType.STOP_LIMIT, OrderType.STOP_MARKET})
_MARKET_TYPES = frozenset({OrderType.MARKET, OrderType.STOP_MARKET})
_NO_STP = StpMode.NONE
_EXPIRE_TAKER = StpMode.EXPIRE_TAKER
_EXPIRE_MAKER = StpMode.EXPIRE_MAKER

# Stop records: [order_id, account_id, is_buy, order_type, tif, price_ticks, qty_lots,
#  quote_budget, stop_ticks, stp_mode, stp_group, accepted_seq]
STOP_QTY = 6
STOP_ACCEPTED = 11


class Engine(FastBook):
    """One market's matching engine: commands in, events out, no I/O, no clock.

    Deterministic: the same command sequence from the same state gives the same events.
    ``apply`` never raises.
    """

    __slots__ = ()

    def apply(self, command: Command) -> list[Event]:
        """Apply one command and return the events it caused, in sequence order."""
        return [decode_event(raw) for raw in self.apply_raw(command)]

    def apply_dict(self, data: object) -> list[Event]:
        """``command_from_dict`` + ``apply``; a ``BadCommand`` becomes a rejection."""
        try:
            command = command_from_dict(data)
        except BadCommand as exc:
            return [decode_event(self._rejection(exc.order_id, exc.account_id, exc.reason))]
        return self.apply(command)

    def apply_raw(self, command: Command) -> list[RawEvent]:
        """Like ``apply`` but returns raw event tuples (see ``events``)."""
        try:
            kind = type(command)
            if kind is PlaceOrder:
                return self._place_order(command)  # type: ignore[arg-type]
            if kind is CancelOrder or kind is ReduceOrder:
                cmd: Any = command
                if type(cmd.order_id) is not int:  # the fast paths would take True for 1
                    return [self._rejection(0, cmd.account_id, "bad_order_id")]
                if type(cmd.account_id) is not int:
                    return [self._rejection(cmd.order_id, 0, "bad_account_id")]
                if kind is CancelOrder:
                    return list(self.cancel(cmd.order_id, cmd.account_id))
                return self.reduce(cmd.order_id, cmd.account_id, cmd.new_qty_lots)
            if kind is CancelAll:
                return self.cancel_all(command.account_id)
            return [self._rejection(0, 0, "bad_command")]
        except Exception:
            # Validation makes this unreachable; if a bug gets here the loop must still live.
            return [self._rejection(0, 0, "internal_error")]

    def _place_order(self, cmd: PlaceOrder) -> list[RawEvent]:
        spec = check_place(cmd)
        if isinstance(spec, str):
            return [self._rejection(cmd.order_id, cmd.account_id, spec)]
        order_id = spec.order_id
        if order_id in self._orders or order_id in self._stops:
            return [self._rejection(order_id, spec.account_id, "duplicate_order_id")]
        order_type = spec.order_type
        if spec.stp_mode is _NO_STP and spec.tif in _FAST_TIFS and not spec.quote_budget:
            if order_type is OrderType.LIMIT:
                return list(
                    self.place(
                        order_id,
                        spec.account_id,
                        spec.side is BUY,
                        spec.price_ticks,
                        spec.qty_lots,
                        spec.tif,
                        spec.stp_group,
                    )
                )
            if order_type is OrderType.MARKET:
                return list(
                    self.place_market(
                        order_id,
                        spec.account_id,
                        spec.side is BUY,
                        spec.qty_lots,
                        spec.tif,
                        spec.stp_group,
                    )
                )
        if order_type is OrderType.LIMIT_MAKER and self._would_take(spec):
            return [self._rejection(order_id, spec.account_id, "would_take")]
        seq = self._seq + 1
        ev: list[RawEvent] = [(Accepted, seq, *spec[:8], spec.stop_ticks)]
        is_buy = spec.side is BUY
        record: StopRecord = [
            order_id,
            spec.account_id,
            is_buy,
            order_type,
            spec.tif,
            spec.price_ticks,
            spec.qty_lots,
            spec.quote_budget,
            spec.stop_ticks,
            spec.stp_mode,
            spec.stp_group,
            seq,
        ]
        if order_type in _STOP_TYPES:
            seq = self._add_stop(ev, seq, record)
        else:
            seq, low, high = self._execute(ev, seq, record)
            if low:
                seq = self._fire_stops(ev, seq, low, high)
        self._seq = seq
        return ev

    def _would_take(self, spec: OrderSpec) -> bool:
        if spec.side is BUY:
            return bool(self._ask_keys) and -self._ask_keys[-1] <= spec.price_ticks
        return bool(self._bid_keys) and self._bid_keys[-1] >= spec.price_ticks

    def _execute(self, ev: list[RawEvent], seq: int, order: StopRecord) -> tuple[int, int, int]:
        """Match an order (or a triggered stop) and rest or expire what is left.

        Returns (seq, low, high): the trade price range, (0, 0) without trades. Stops it
        triggers are the caller's job, so that they run in trigger order.
        """
        order_id, account_id, is_buy, order_type, tif, price, qty, budget = order[:8]
        is_market = order_type in _MARKET_TYPES
        klim = NO_LIMIT if is_market else (-price if is_buy else price)
        if tif is TimeInForce.FOK and not self._fillable(order, klim):
            seq += 1
            ev.append((Expired, seq, order_id, account_id, qty, 0, "fok"))
            return seq, 0, 0
        seq, qty, budget, self_trade, low, high = self._sweep(ev, seq, order, klim, qty, budget)
        if qty or budget:
            if self_trade:
                reason = "stp"
            elif is_market:
                reason = "market"
            elif tif is not TimeInForce.GTC:
                reason = tif.value
            else:
                seq = self._rest(ev, seq, order_id, account_id, order[10], is_buy, price, qty)
                return seq, low, high
            seq += 1
            ev.append((Expired, seq, order_id, account_id, qty, budget, reason))
        return seq, low, high

    def _sweep(
        self, ev: list[RawEvent], seq: int, order: StopRecord, klim: int, qty: int, budget: int
    ) -> tuple[int, int, int, bool, int, int]:
        """Take liquidity up to ``klim``; returns (seq, qty, budget, self_trade, low, high)."""
        order_id, account_id, is_buy = order[0], order[1], order[2]
        stp, group = order[9], order[10]
        side = BUY if is_buy else SELL
        keys, opp = (self._ask_keys, SELL) if is_buy else (self._bid_keys, BUY)
        levels, orders = self._levels, self._orders
        low = high = last = 0
        self_trade = False
        while keys and keys[-1] >= klim and (qty or budget) and not self_trade:
            key = keys[-1]
            level = levels[key]
            queue, px = level[1], level[2]
            total = start_total = level[0]
            while total and (qty or budget):
                maker = queue[0]
                mrem = maker["rem"]
                if not mrem:  # cancelled, left behind lazily
                    queue.popleft()
                    continue
                maker_id = maker["id"]
                if stp is not _NO_STP and (
                    maker["account"] == account_id or (group and maker.get("group") == group)
                ):
                    if stp is not _EXPIRE_TAKER:
                        maker["rem"] = 0
                        queue.popleft()
                        del orders[maker_id]
                        total -= mrem
                        seq += 1
                        ev.append((Expired, seq, maker_id, maker["account"], mrem, 0, "stp"))
                    if stp is not _EXPIRE_MAKER:
                        self_trade = True
                        break
                    continue
                fill = min(mrem, budget // px) if budget else min(mrem, qty)
                if not fill:  # the budget cannot buy one more lot here, nor deeper
                    break
                if budget:
                    budget -= fill * px
                else:
                    qty -= fill
                total -= fill
                maker_done = fill == mrem
                if maker_done:
                    maker["rem"] = 0
                    queue.popleft()
                    del orders[maker_id]
                else:
                    maker["rem"] = mrem - fill
                seq += 1
                ev.append(
                    (
                        Trade,
                        seq,
                        maker_id,
                        order_id,
                        maker["account"],
                        account_id,
                        px,
                        fill,
                        side,
                        maker_done,
                        not (qty or budget),
                    )
                )
                low = px if not low or px < low else low
                high = px if px > high else high
                last = px
            if total != start_total:
                seq += 1
                ev.append((LevelChanged, seq, opp, px, total))
            if total:
                level[0] = total
                break
            keys.pop()
            del levels[key]
        if last:
            self._last_price = last
        return seq, qty, budget, self_trade, low, high

    def _fillable(self, order: StopRecord, klim: int) -> bool:
        """Whether a FOK order would fill completely, honouring its STP mode."""
        account_id, is_buy = order[1], order[2]
        need: int = order[6]
        stp, group = order[9], order[10]
        keys = self._ask_keys if is_buy else self._bid_keys
        levels = self._levels
        for key in reversed(keys):
            if key < klim:
                return False
            level = levels[key]
            if stp is _NO_STP:
                need -= level[0]
            else:
                for maker in level[1]:
                    if not maker["rem"]:
                        continue
                    if maker["account"] == account_id or (group and maker.get("group") == group):
                        if stp is _EXPIRE_MAKER:
                            continue  # it would be expired, not filled
                        return need <= 0  # the taker would be expired here
                    need -= maker["rem"]
                    if need <= 0:
                        return True
            if need <= 0:
                return True
        return False

    def _add_stop(self, ev: list[RawEvent], seq: int, record: StopRecord) -> int:
        self._stops[record[0]] = record
        stop = record[8]
        if record[2]:
            heappush(self._buy_stops, (stop, record[STOP_ACCEPTED], record[0]))
        else:
            heappush(self._sell_stops, (-stop, record[STOP_ACCEPTED], record[0]))
        last = self._last_price
        if last and (last >= stop if record[2] else last <= stop):
            seq = self._fire_stops(ev, seq, last, last)
        return seq

    def _pop_triggered(self, low: int, high: int) -> list[tuple[int, int, StopRecord]]:
        """Remove and return stops crossed by trades in [low, high], in acceptance order."""
        stops = self._stops
        out: list[tuple[int, int, StopRecord]] = []
        heap = self._buy_stops
        while heap and heap[0][0] <= high:
            _, accepted, order_id = heappop(heap)
            record = stops.get(order_id)
            if record is not None and record[STOP_ACCEPTED] == accepted:  # else cancelled
                del stops[order_id]
                out.append((accepted, high, record))
        heap = self._sell_stops
        while heap and -heap[0][0] >= low:
            _, accepted, order_id = heappop(heap)
            record = stops.get(order_id)
            if record is not None and record[STOP_ACCEPTED] == accepted:
                del stops[order_id]
                out.append((accepted, low, record))
        out.sort(key=lambda item: item[0])
        return out

    def _fire_stops(self, ev: list[RawEvent], seq: int, low: int, high: int) -> int:
        """Run every stop the trades in [low, high] trigger, and those they trigger in turn.

        Order: stops triggered by one execution run in acceptance order; stops triggered by a
        stop's own execution queue up behind the ones already triggered.
        """
        pending = deque(self._pop_triggered(low, high))
        while pending:
            _, trigger_price, record = pending.popleft()
            seq += 1
            ev.append((StopTriggered, seq, record[0], record[1], record[8], trigger_price))
            seq, low, high = self._execute(ev, seq, record)
            if low:
                pending.extend(self._pop_triggered(low, high))
        return seq

    def cancel_all(self, account_id: int) -> list[RawEvent]:
        """Cancel every resting order and pending stop of an account, by ascending order id."""
        if bad_int(account_id):
            return [self._rejection(0, account_id, "bad_account_id")]
        ids = [oid for oid, record in self._orders.items() if record["account"] == account_id]
        ids += [oid for oid, record in self._stops.items() if record[1] == account_id]
        if not ids:
            return [self._rejection(0, account_id, "unknown_account")]
        ev: list[RawEvent] = []
        for order_id in sorted(ids):
            ev += self.cancel(order_id, account_id)
        return ev

    def rejection_for(self, *, order_id: object, account_id: object, reason: str) -> RawEvent:
        """The raw rejection of a command refused before it reached the engine.

        Like any rejection it takes the next sequence number and changes nothing else, so a
        replay that refuses the same command again regenerates the same events.
        """
        return self._rejection(order_id, account_id, reason)

    def restore_position(self, *, seq: int, last_price_ticks: int | None = None) -> None:
        """Continue from ``seq`` (the next event gets seq + 1) with ``last_price_ticks`` as
        the last trade price (stops trigger against it); None keeps the current one.

        For a book rebuilt from settled state: re-placing its resting orders spends seqs the
        original run spent long ago, and the output must stay gapless after the settled seq.
        """
        if type(seq) is not int or seq < 0:
            raise ValueError(f"seq must be a non-negative int, not {seq!r}")
        if last_price_ticks is not None and (
            type(last_price_ticks) is not int or last_price_ticks < 0
        ):
            raise ValueError(
                f"last_price_ticks must be a non-negative int, not {last_price_ticks!r}"
            )
        self._seq = seq
        if last_price_ticks is not None:
            self._last_price = last_price_ticks

    def pending_stops(self) -> list[tuple[int, int, bool, int, int]]:
        """(order_id, account_id, is_buy, stop_ticks, qty_lots) of waiting stops, by acceptance."""
        records = sorted(self._stops.values(), key=lambda record: record[STOP_ACCEPTED])
        return [(r[0], r[1], r[2], r[8], r[STOP_QTY]) for r in records]

    def snapshot(self) -> bytes:
        """Serialise the whole state: version byte, canonical payload, SHA-256 checksum."""
        return dump_book(self)

    @classmethod
    def restore(cls, data: bytes) -> Engine:
        """Rebuild an engine from ``snapshot()`` bytes; raises ``SnapshotError`` if damaged."""
        return load_book(cls, data)

    def state_hash(self) -> str:
        """Hex SHA-256 of the canonical state (books, orders, stops, sequence, last price)."""
        return state_digest(self)
