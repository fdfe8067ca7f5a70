"""Settlement: apply matching-engine events to PostgreSQL, one durable transaction per batch.

Events arrive as the matching loop writes them: lists ``[kind, seq, *fields]`` (the format
is trading.streams', whose positions, derived from the engine's event dataclasses, are the
only way this module reads a field) grouped in entries that each carry the writer's lease
token.
``settle_batch`` is the only writer of fills, trades and trade money moves:

* single writer per market: the SettlementCursor row lock;
* fenced: entries whose token is below the cursor's ``fence_token`` are dropped (a deposed
  loop's output), a higher token raises the fence;
* idempotent on (market, seq): seqs <= cursor are dropped, so a redelivered or duplicated
  batch changes nothing; a gap raises SequenceGap before anything is written;
* cheap: six statements and a COMMIT per batch, whatever its size: the cursor, market
  rules and orders are locked and read in one; the trades (multi-row INSERT from unnest
  arrays), order rows, last price and cursor are written in one; balance moves are
  aggregated per (user, asset, bucket) into one journal entry
  (accounts.services.ledger.apply_moves: three); one read of balances for the messages;
  and, only in a batch where a stop triggered, one UPDATE recording its trigger seq;
  and, only in a batch that changed an order or made a trade, one INSERT of the partners'
  webhook events (trading.services.settlement_webhooks), in the same transaction.
  Event arithmetic is on integers (ticks, lots, 1e-18 units); Decimals are made only at
  the boundary (ledger moves, messages), and no model instance is built.

Size: ~490 lines, over the ~400 guide on purpose: the event handlers, the batch they fill
and its single write are one pass over one batch's state, read together when checking the
money rules below; the messages moved out (trading.services.settlement_messages).

Money rules (the shared contract): fees are charged in the quote asset on both sides, each
side at its own order's rates (fixed at accept as the lower of market and fee tier:
markets.fees), and rounded up to the quote's decimals (in the exchange's favour); a notional
finer than the quote's decimals is charged rounded up to the buyer and paid rounded down to
the seller, the difference going to the "rounding" balance so every entry balances. Fees and
rounding go to the market's own system rows (scope = the market's symbol), so no lock is
shared by all markets. A buyer's fee is capped by what is left of its hold, so ``released +
filled cost + fee == hold`` always holds to the unit. An order that ends (filled, cancelled,
expired, rejected) releases its ``hold_remaining``: price improvement and leftovers go back
to available.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction

from accounts.models import BalanceKind, Bucket, EntryKind
from accounts.services.ledger import Move, apply_moves
from exchange import clock
from exchange.publish import publish_on_commit
from trading.models import OrderStatus, SettlementCursor
from trading.services.settlement_messages import batch_messages
from trading.services.settlement_orders import (
    SettledOrder,
    TradeRows,
    from_e18,
    lock_batch_rows,
    read_balances,
    to_e18,
    write_batch,
    write_triggers,
)
from trading.services.settlement_webhooks import record_batch_webhooks
from trading.streams import (
    EXPIRED,
    KIND,
    LEVEL_CHANGED,
    ORDER_ID,
    REDUCED,
    REJECTED,
    SEQ,
    TRADE,
)

E18 = 10**18
_RATE_SCALE = 10**6  # fee rates are numeric(10, 6)
_AVAILABLE, _LOCKED = str(Bucket.AVAILABLE), str(Bucket.LOCKED)
_FEES, _ROUNDING = str(BalanceKind.FEES), str(BalanceKind.ROUNDING)
Entry = tuple[int, Sequence[Sequence[Any]]]  # (lease token, events)

# Event field positions, bound once (an unknown field name fails at import).
_LEVEL_SIDE, _LEVEL_PRICE = LEVEL_CHANGED.side, LEVEL_CHANGED.price_ticks
_LEVEL_TOTAL = LEVEL_CHANGED.total_lots
_EXPIRED_REASON = EXPIRED.reason
_REJECTED_REASON, _REJECTED_COMMAND = REJECTED.reason, REJECTED.command
_REDUCED_LOTS = REDUCED.reduced_lots
_T_MAKER, _T_TAKER = TRADE.maker_order_id, TRADE.taker_order_id
_T_PRICE, _T_QTY, _T_SIDE = TRADE.price_ticks, TRADE.qty_lots, TRADE.taker_side
_T_MAKER_DONE, _T_TAKER_DONE = TRADE.maker_filled, TRADE.taker_filled


class SequenceGap(Exception):
    """The batch skips a sequence number; nothing was written. Re-read and retry."""

    def __init__(self, *, market_id: int, expected: int, got: int) -> None:
        super().__init__(f"market {market_id}: expected seq {expected}, got {got}")
        self.market_id, self.expected, self.got = market_id, expected, got


class SettlementError(Exception):
    """An event that cannot be settled (unknown order, hold overrun): a broken invariant."""


@dataclass(frozen=True)
class MarketRules:
    """What settlement needs of a market, read once per batch (with the cursor lock).

    Amounts are integers in 1e-18 units; the rates are integers in 1e-6 units.
    """

    market_id: int
    symbol: str
    base_id: int
    quote_id: int
    tick: Decimal  # trimmed (0.01, not 0.010000000000000000): for the websocket strings
    lot: Decimal
    tick_e18: int
    lot_e18: int
    step_e18: int  # the quote asset's smallest unit
    # The market's current rates: informational; what a fill is charged is the rates stored on
    # its own order (settlement_orders.SettledOrder), fixed at accept.
    maker_fee_e6: int
    taker_fee_e6: int

    @classmethod
    def from_row(cls, market_id: int, row: Sequence[Any]) -> MarketRules:
        symbol, base_id, quote_id, tick, lot, decimals, maker_fee, taker_fee = row
        return cls(
            market_id=market_id,
            symbol=symbol,
            base_id=base_id,
            quote_id=quote_id,
            tick=_trim(tick),
            lot=_trim(lot),
            tick_e18=to_e18(tick),
            lot_e18=to_e18(lot),
            step_e18=10 ** (18 - decimals),
            maker_fee_e6=int(maker_fee.scaleb(6)),
            taker_fee_e6=int(taker_fee.scaleb(6)),
        )


@dataclass
class SettleResult:
    """What one settle_batch call did."""

    applied: int = 0
    duplicates: int = 0
    fenced: int = 0
    last_seq: int = 0
    fence_token: int = 0
    trades: int = 0


@dataclass
class _Batch:
    rules: MarketRules
    orders: dict[int, SettledOrder]
    # (owner, asset, bucket) -> delta in 1e-18 units; owner is a user id or a system kind
    moves: dict[tuple[int | str, int, str], int] = field(default_factory=lambda: defaultdict(int))
    trades: TradeRows = field(default_factory=TradeRows.empty)
    depth: dict[tuple[str, int], int] = field(default_factory=dict)
    last_price_ticks: int | None = None
    triggered: dict[int, int] = field(default_factory=dict)  # stop order id -> trigger seq

    def release(self, order: SettledOrder) -> None:
        amount = order.hold_remaining_e18
        if amount:
            moves = self.moves
            moves[(order.user_id, order.hold_asset_id, _LOCKED)] -= amount
            moves[(order.user_id, order.hold_asset_id, _AVAILABLE)] += amount
            order.hold_remaining_e18 = 0

    def end(self, order: SettledOrder, status: str, reason: str = "") -> None:
        if order.is_terminal:
            raise SettlementError(f"order {order.id} ended twice ({order.status} -> {status})")
        order.status, order.changed = status, True
        if reason:
            order.reject_reason = reason[:64]
        self.release(order)


def _trim(value: Decimal) -> Decimal:
    """18-place database decimals to their own precision (0.010000 -> 0.01, 10.00 -> 10)."""
    places = max(0, -int(value.normalize().as_tuple().exponent))
    return value.quantize(Decimal(1).scaleb(-places))


def _ceil_to(numerator: int, denominator: int, step: int) -> int:
    """numerator / denominator rounded up to a multiple of step (all positive integers)."""
    return -(-numerator // (denominator * step)) * step


def _fresh_events(
    *, cursor: _Cursor, entries: Iterable[Entry], result: SettleResult
) -> list[Sequence[Any]]:
    """The contiguous new events after the cursor; raises SequenceGap on a hole."""
    fence = cursor.fence_token
    expected = cursor.last_seq + 1
    fresh: list[Sequence[Any]] = []
    for token, events in entries:
        if token < fence:
            result.fenced += len(events)
            continue
        fence = token
        for event in events:
            seq = event[SEQ]
            if seq < expected:
                result.duplicates += 1
            elif seq == expected:
                fresh.append(event)
                expected += 1
            else:
                raise SequenceGap(market_id=cursor.market_id, expected=expected, got=seq)
    cursor.fence_token = fence
    return fresh


def _order_ids(events: Iterable[Sequence[Any]]) -> set[int]:
    ids: set[int] = set()
    add = ids.add
    at_kind, at_maker, at_taker, at_order = KIND, _T_MAKER, _T_TAKER, ORDER_ID  # locals: hot
    for event in events:
        kind = event[at_kind]
        if kind == "trade":
            add(event[at_maker])
            add(event[at_taker])
        elif kind != "level_changed" and event[at_order]:
            add(event[at_order])
    return ids


@dataclass
class _Cursor:
    market_id: int
    last_seq: int
    fence_token: int


def _lock_rows(
    market_id: int, entries: Sequence[Entry]
) -> tuple[_Cursor, MarketRules, dict[int, SettledOrder]]:
    # Every order the entries name, before the cursor says which events are fresh: locking
    # the orders of a duplicate too is harmless and saves a round trip per batch.
    order_ids = _order_ids(event for _, events in entries for event in events)
    row, orders = lock_batch_rows(market_id, order_ids)
    if row is None:  # the market's first batch
        SettlementCursor.objects.get_or_create(market_id=market_id)
        row, orders = lock_batch_rows(market_id, order_ids)
        assert row is not None  # noqa: S101 - just created, and we hold its lock
    return _Cursor(market_id, row[0], row[1]), MarketRules.from_row(market_id, row[2:]), orders


@transaction.atomic(durable=True)
def settle_batch(*, market_id: int, entries: Sequence[Entry]) -> SettleResult:
    """Apply the events after the market's cursor; return what was applied and dropped.

    ``entries`` are (lease token, events) in stream order. Guarantees: all or nothing; an
    event is applied at most once whatever is redelivered; a fenced entry is never
    applied. Raises SequenceGap (nothing written) when the first unseen seq is missing.
    Publishes depth, trades and per-user updates after commit.

    Statements: one lock (cursor, market rules, orders), one write (trades, orders, last
    price, cursor), apply_moves' three (balance lock, balance update, entry with its
    postings) and the users' balances for the messages; then COMMIT.
    """
    result = SettleResult()
    cursor, rules, orders = _lock_rows(market_id, entries)
    fence_before = cursor.fence_token
    fresh = _fresh_events(cursor=cursor, entries=entries, result=result)
    if not fresh:
        if cursor.fence_token != fence_before:
            SettlementCursor.objects.filter(market_id=market_id).update(
                fence_token=cursor.fence_token, updated_at=clock.now()
            )
        result.last_seq, result.fence_token = cursor.last_seq, cursor.fence_token
        return result
    batch = _Batch(rules=rules, orders=orders)
    apply, at_kind = _APPLY, KIND
    for event in fresh:
        handler = apply.get(event[at_kind])
        if handler is not None:
            handler(batch, event)
    prev_seq = cursor.last_seq
    cursor.last_seq = fresh[-1][SEQ]
    now = clock.now()
    balances = _write(batch, cursor, now)
    result.applied, result.trades, result.last_seq = len(fresh), len(batch.trades), cursor.last_seq
    result.fence_token = cursor.fence_token
    record_batch_webhooks(
        market_id=market_id,
        symbol=rules.symbol,
        quote_id=rules.quote_id,
        batch_seq=cursor.last_seq,
        orders=batch.orders,
        changed=[o for o in batch.orders.values() if o.changed],
        trades=batch.trades,
    )
    publish_on_commit(
        batch_messages(
            symbol=rules.symbol,
            tick=rules.tick,
            lot=rules.lot,
            tick_e18=rules.tick_e18,
            lot_e18=rules.lot_e18,
            depth=batch.depth,
            trades=batch.trades,
            orders=batch.orders.values(),
            prev_seq=prev_seq,
            seq=cursor.last_seq,
            balances=balances,
            time=now,
        )
    )
    return result


def _order(batch: _Batch, order_id: int) -> SettledOrder:
    try:
        return batch.orders[order_id]
    except KeyError:
        raise SettlementError(f"unknown order {order_id} in market {batch.rules.symbol}") from None


def _apply_level(batch: _Batch, event: Sequence[Any]) -> None:
    batch.depth[(event[_LEVEL_SIDE], event[_LEVEL_PRICE])] = event[_LEVEL_TOTAL]


def _apply_accepted(batch: _Batch, event: Sequence[Any]) -> None:
    order = _order(batch, event[ORDER_ID])
    if order.accepted_seq is None:
        order.accepted_seq, order.changed = event[SEQ], True


def _apply_cancelled(batch: _Batch, event: Sequence[Any]) -> None:
    batch.end(_order(batch, event[ORDER_ID]), OrderStatus.CANCELED)


def _apply_expired(batch: _Batch, event: Sequence[Any]) -> None:
    batch.end(_order(batch, event[ORDER_ID]), OrderStatus.EXPIRED, event[_EXPIRED_REASON])


def _apply_rejected(batch: _Batch, event: Sequence[Any]) -> None:
    # Only the rejection of a placement ends an order; a rejected cancel or reduce
    # (unknown order: it was filled first) or a duplicate placement changes nothing.
    placed = batch.orders.get(event[ORDER_ID])
    is_placement = len(event) > _REJECTED_COMMAND and event[_REJECTED_COMMAND] == "place_order"
    if is_placement and placed and placed.accepted_seq is None and not placed.is_terminal:
        batch.end(placed, OrderStatus.REJECTED, event[_REJECTED_REASON])


def _apply_reduced(batch: _Batch, event: Sequence[Any]) -> None:
    """Lower the order's quantity and release the hold the removed part no longer needs."""
    order = _order(batch, event[ORDER_ID])
    rules = batch.rules
    reduced = rules.lot_e18 * event[_REDUCED_LOTS]
    if order.quantity_e18 is not None:
        order.quantity_e18 -= reduced
    hold = order.hold_remaining_e18
    if order.side == "sell":
        release = min(reduced, hold)
    else:
        rate = max(order.maker_fee_e6, order.taker_fee_e6)  # the order's own, as its hold
        remaining = (order.quantity_e18 or 0) - order.filled_quantity_e18
        # price x remaining x (1 + rate), rounded up to the quote's unit
        needed = _ceil_to(
            (order.price_e18 or 0) * remaining * (_RATE_SCALE + rate),
            E18 * _RATE_SCALE,
            rules.step_e18,
        )
        release = max(hold - needed, 0)
    if release:
        key = (order.user_id, order.hold_asset_id)
        batch.moves[(*key, _LOCKED)] -= release
        batch.moves[(*key, _AVAILABLE)] += release
        order.hold_remaining_e18 -= release
    order.changed = True


def _apply_stop_triggered(batch: _Batch, event: Sequence[Any]) -> None:
    """Record the trigger: a rebuild of the book restores the stop as what it now is."""
    batch.triggered[_order(batch, event[ORDER_ID]).id] = event[SEQ]


def _apply_trade(batch: _Batch, event: Sequence[Any]) -> None:
    seq, maker_id, taker_id = event[SEQ], event[_T_MAKER], event[_T_TAKER]
    price_ticks, qty_lots, taker_side = event[_T_PRICE], event[_T_QTY], event[_T_SIDE]
    maker_done, taker_done = event[_T_MAKER_DONE], event[_T_TAKER_DONE]
    rules = batch.rules
    orders = batch.orders
    if maker_id not in orders or taker_id not in orders:
        _order(batch, maker_id if maker_id not in orders else taker_id)  # raises
    maker, taker = orders[maker_id], orders[taker_id]
    is_buy_taker = taker_side == "buy"
    if is_buy_taker:
        buyer, seller = taker, maker
    else:
        buyer, seller = maker, taker
    # Each side pays the rate fixed on its own order at accept (issue 11 fee tiers).
    maker_rate, taker_rate = maker.maker_fee_e6, taker.taker_fee_e6
    buyer_rate, seller_rate = (taker_rate, maker_rate) if is_buy_taker else (maker_rate, taker_rate)
    step = rules.step_e18
    quantity = rules.lot_e18 * qty_lots
    # The notional in 1e-36 units: exact, whatever the tick and lot.
    notional = rules.tick_e18 * price_ticks * rules.lot_e18 * qty_lots
    cost = _ceil_to(notional, E18, step)  # charged to the buyer, rounded up
    gross = notional // (E18 * step) * step  # paid to the seller, rounded down
    exact, rest = divmod(notional, E18)  # the trade row's quote quantity, half-even
    if rest * 2 > E18 or (rest * 2 == E18 and exact & 1):
        exact += 1
    if cost > buyer.hold_remaining_e18 or quantity > seller.hold_remaining_e18:
        raise SettlementError(f"trade {seq} overruns a hold (orders {buyer.id}, {seller.id})")
    fee_scale = E18 * _RATE_SCALE
    buyer_fee = min(
        _ceil_to(notional * buyer_rate, fee_scale, step) if buyer_rate else 0,
        buyer.hold_remaining_e18 - cost,
    )
    seller_fee = min(_ceil_to(notional * seller_rate, fee_scale, step) if seller_rate else 0, gross)
    buyer.fill(
        quantity_e18=quantity, quote_e18=exact, fee_e18=buyer_fee, hold_used_e18=cost + buyer_fee
    )
    seller.fill(quantity_e18=quantity, quote_e18=exact, fee_e18=seller_fee, hold_used_e18=quantity)
    base, quote = rules.base_id, rules.quote_id
    moves = batch.moves
    moves[(buyer.user_id, quote, _LOCKED)] -= cost + buyer_fee
    moves[(buyer.user_id, base, _AVAILABLE)] += quantity
    moves[(seller.user_id, base, _LOCKED)] -= quantity
    moves[(seller.user_id, quote, _AVAILABLE)] += gross - seller_fee
    moves[(_FEES, quote, _AVAILABLE)] += buyer_fee + seller_fee
    moves[(_ROUNDING, quote, _AVAILABLE)] += cost - gross
    for order, done in ((maker, maker_done), (taker, taker_done)):
        if done:
            batch.end(order, OrderStatus.FILLED)
        elif order.status == OrderStatus.NEW:
            order.status = OrderStatus.PARTIALLY_FILLED
    trades = batch.trades
    trades.seq.append(seq)
    trades.maker.append(maker_id)
    trades.taker.append(taker_id)
    trades.buy.append(buyer.id)
    trades.sell.append(seller.id)
    trades.price_e18.append(rules.tick_e18 * price_ticks)
    trades.quantity_e18.append(quantity)
    trades.quote_e18.append(exact)
    trades.side.append(taker_side)
    trades.maker_fee_e18.append(seller_fee if is_buy_taker else buyer_fee)
    trades.taker_fee_e18.append(buyer_fee if is_buy_taker else seller_fee)
    batch.last_price_ticks = price_ticks


_APPLY = {
    "level_changed": _apply_level,
    "trade": _apply_trade,
    "accepted": _apply_accepted,
    "cancelled": _apply_cancelled,
    "expired": _apply_expired,
    "rejected": _apply_rejected,
    "reduced": _apply_reduced,
    "stop_triggered": _apply_stop_triggered,
}


def _write(
    batch: _Batch, cursor: _Cursor, now: datetime
) -> list[tuple[int, str, Decimal, Decimal]]:
    """Write the batch at `now` (its trades' time); return the touched users' balances."""
    rules = batch.rules
    last_price = None if batch.last_price_ticks is None else rules.tick * batch.last_price_ticks
    tick, lot = rules.tick_e18, rules.lot_e18
    write_batch(
        market_id=rules.market_id,
        now=now,
        trades=batch.trades,
        orders=[o for o in batch.orders.values() if o.changed],
        last_price=last_price,
        last_seq=cursor.last_seq,
        fence_token=cursor.fence_token,
        depth={(side, tick * price): lot * total for (side, price), total in batch.depth.items()},
    )
    if batch.triggered:  # rare: its own statement keeps the batch write's shape
        write_triggers(market_id=rules.market_id, triggered=batch.triggered)
    moves = [
        Move(
            delta=from_e18(delta),
            bucket=bucket,
            asset_id=asset_id,
            # The market's own fee and rounding rows: settlement of one market never
            # waits on another's locks (a stopped settlement process froze them all).
            **(
                {"system": owner, "scope": rules.symbol}
                if isinstance(owner, str)
                else {"user_id": owner}
            ),
        )
        for (owner, asset_id, bucket), delta in batch.moves.items()
        if delta
    ]
    if not moves:
        return []
    # Last: the balance rows are shared with other markets (see settlement_orders._WRITE).
    apply_moves(
        kind=EntryKind.SETTLEMENT,
        ref=f"settle:{rules.symbol}:{cursor.last_seq}"[:64],
        moves=moves,
    )
    return read_balances(
        user_ids={owner for owner, _, _ in batch.moves if isinstance(owner, int)},
        asset_ids=(rules.base_id, rules.quote_id),
    )


__all__ = ["MarketRules", "SequenceGap", "SettleResult", "SettlementError", "settle_batch"]
