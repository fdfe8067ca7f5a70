"""Settlement: apply matching-engine events to PostgreSQL, one durable transaction per batch.

Events arrive as the matching loop writes them (trading.matching): lists
``[type, seq, *fields]`` grouped in entries that each carry the writer's lease token.
``settle_batch`` is the only writer of fills, trades and trade money moves:

* single writer per market: the SettlementCursor row lock;
* fenced: entries whose token is below the cursor's ``fence_token`` are dropped (a deposed
  loop's output), a higher token raises the fence;
* idempotent on (market, seq): seqs <= cursor are dropped, so a redelivered or duplicated
  batch changes nothing; a gap raises SequenceGap before anything is written;
* cheap: orders are locked and read in one statement and written back in one, trades go
  in one multi-row INSERT, and balance moves are aggregated per (user, asset, bucket) into
  one journal entry (accounts.services.ledger.apply_moves) per batch.

Money rules (the shared contract): fees are charged in the quote asset on both sides and
rounded up to the quote's decimals (in the exchange's favour); a notional finer than the
quote's decimals is charged rounded up to the buyer and paid rounded down to the seller,
the difference going to the "rounding" balance so every entry balances. A buyer's fee is
capped by what is left of its hold, so ``released + filled cost + fee == hold`` always
holds to the unit. An order that ends (filled, cancelled, expired, rejected) releases its
``hold_remaining``: price improvement and leftovers go back to available.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from typing import Any

from django.db import transaction

from accounts.models import Balance, BalanceKind, Bucket, EntryKind
from accounts.services.ledger import Move, apply_moves
from markets.models import Market
from trading.models import OrderStatus, SettlementCursor, Trade
from trading.publish import Message, depth_group, publish_on_commit, trades_group, user_group
from trading.services.settlement_orders import SettledOrder, lock_orders, write_orders

ZERO = Decimal("0")
_PRECISION = 80  # price x quantity x rate of 36-digit decimals, exactly
_LEDGER = Decimal("1e-18")
Entry = tuple[int, Sequence[Sequence[Any]]]  # (lease token, events)


class SequenceGap(Exception):
    """The batch skips a sequence number; nothing was written. Re-read and retry."""

    def __init__(self, *, market_id: int, expected: int, got: int) -> None:
        super().__init__(f"market {market_id}: expected seq {expected}, got {got}")
        self.market_id, self.expected, self.got = market_id, expected, got


class SettlementError(Exception):
    """An event that cannot be settled (unknown order, hold overrun): a broken invariant."""


@dataclass(frozen=True)
class MarketRules:
    """What settlement needs of a market, read once per batch."""

    market_id: int
    symbol: str
    base_id: int
    quote_id: int
    tick: Decimal
    lot: Decimal
    unit: Decimal  # tick x lot: the notional of one lot at one tick
    quote_step: Decimal
    maker_fee: Decimal
    taker_fee: Decimal

    @classmethod
    def load(cls, market_id: int) -> MarketRules:
        m = Market.objects.select_related("base", "quote").get(pk=market_id)
        return cls(
            market_id=m.pk,
            symbol=m.symbol,
            base_id=m.base_id,
            quote_id=m.quote_id,
            tick=_trim(m.tick_size),
            lot=_trim(m.lot_size),
            unit=_trim(m.tick_size) * _trim(m.lot_size),
            quote_step=Decimal(1).scaleb(-m.quote.decimals),
            maker_fee=m.maker_fee,
            taker_fee=m.taker_fee,
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
    moves: dict[tuple[int | str, int, str], Decimal] = field(
        default_factory=lambda: defaultdict(lambda: ZERO)
    )
    trades: list[Trade] = field(default_factory=list)
    depth: dict[tuple[str, int], int] = field(default_factory=dict)
    last_price: Decimal | None = None

    def move(self, owner: int | str, asset_id: int, bucket: str, delta: Decimal) -> None:
        self.moves[(owner, asset_id, bucket)] += delta

    def release(self, order: SettledOrder) -> None:
        amount = order.hold_remaining
        if amount:
            self.move(order.user_id, order.hold_asset_id, Bucket.LOCKED, -amount)
            self.move(order.user_id, order.hold_asset_id, Bucket.AVAILABLE, amount)
            order.hold_remaining = ZERO

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


def _ceil(value: Decimal, step: Decimal) -> Decimal:
    return value.quantize(step, rounding=ROUND_CEILING)


def _floor(value: Decimal, step: Decimal) -> Decimal:
    return value.quantize(step, rounding=ROUND_FLOOR)


def _fresh_events(
    *, cursor: SettlementCursor, entries: Iterable[Entry], result: SettleResult
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
            seq = event[1]
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
    for event in events:
        kind = event[0]
        if kind == "trade":
            ids.add(event[2])
            ids.add(event[3])
        elif kind != "level_changed" and event[2]:
            ids.add(event[2])
    return ids


@transaction.atomic(durable=True)
def settle_batch(*, market_id: int, entries: Sequence[Entry]) -> SettleResult:
    """Apply the events after the market's cursor; return what was applied and dropped.

    ``entries`` are (lease token, events) in stream order. Guarantees: all or nothing; an
    event is applied at most once whatever is redelivered; a fenced entry is never
    applied. Raises SequenceGap (nothing written) when the first unseen seq is missing.
    Publishes depth, trades and per-user updates after commit.
    """
    result = SettleResult()
    cursor = SettlementCursor.objects.select_for_update(no_key=True).filter(
        market_id=market_id
    ).first() or SettlementCursor.objects.create(market_id=market_id)
    with localcontext(prec=_PRECISION):
        fence_before = cursor.fence_token
        fresh = _fresh_events(cursor=cursor, entries=entries, result=result)
        if not fresh:
            if cursor.fence_token != fence_before:
                cursor.save(update_fields=["fence_token", "updated_at"])
            result.last_seq, result.fence_token = cursor.last_seq, cursor.fence_token
            return result
        rules = MarketRules.load(market_id)
        batch = _Batch(rules=rules, orders=lock_orders(market_id, _order_ids(fresh)))
        for event in fresh:
            _apply_event(batch, event)
        prev_seq = cursor.last_seq
        cursor.last_seq = fresh[-1][1]
        _write(batch, cursor)
    result.applied, result.trades, result.last_seq = len(fresh), len(batch.trades), cursor.last_seq
    result.fence_token = cursor.fence_token
    publish_on_commit(_messages(batch, prev_seq=prev_seq, seq=cursor.last_seq))
    return result


def _apply_event(batch: _Batch, event: Sequence[Any]) -> None:
    kind = event[0]
    if kind == "level_changed":
        batch.depth[(event[2], event[3])] = event[4]
    elif kind == "trade":
        _apply_trade(batch, event)
    elif kind == "accepted":
        order = _order(batch, event[2])
        if order.accepted_seq is None:
            order.accepted_seq, order.changed = event[1], True
    elif kind == "cancelled":
        batch.end(_order(batch, event[2]), OrderStatus.CANCELED)
    elif kind == "expired":
        batch.end(_order(batch, event[2]), OrderStatus.EXPIRED, event[6])
    elif kind == "rejected":
        # Only the rejection of a placement ends an order; a rejected cancel or reduce
        # (unknown order: it was filled first) or a duplicate placement changes nothing.
        placed = batch.orders.get(event[2])
        is_placement = len(event) > 5 and event[5] == "place_order"
        if is_placement and placed and placed.accepted_seq is None and not placed.is_terminal:
            batch.end(placed, OrderStatus.REJECTED, event[4])
    elif kind == "reduced":
        _apply_reduced(batch, _order(batch, event[2]), reduced_lots=event[5])


def _order(batch: _Batch, order_id: int) -> SettledOrder:
    try:
        return batch.orders[order_id]
    except KeyError:
        raise SettlementError(f"unknown order {order_id} in market {batch.rules.symbol}") from None


def _apply_trade(batch: _Batch, event: Sequence[Any]) -> None:
    _, seq, maker_id, taker_id, _, _, price_ticks, qty_lots, taker_side, maker_done, taker_done = (
        event
    )
    rules = batch.rules
    maker, taker = _order(batch, maker_id), _order(batch, taker_id)
    buyer, seller = (taker, maker) if taker_side == "buy" else (maker, taker)
    buyer_rate, seller_rate = (
        (rules.taker_fee, rules.maker_fee)
        if taker_side == "buy"
        else (rules.maker_fee, rules.taker_fee)
    )
    price = rules.tick * price_ticks
    quantity = rules.lot * qty_lots
    notional = rules.unit * (price_ticks * qty_lots)
    step = rules.quote_step
    cost, gross = _ceil(notional, step), _floor(notional, step)
    if cost > buyer.hold_remaining or quantity > seller.hold_remaining:
        raise SettlementError(f"trade {seq} overruns a hold (orders {buyer.id}, {seller.id})")
    buyer_fee = min(_ceil(notional * buyer_rate, step), buyer.hold_remaining - cost)
    seller_fee = min(_ceil(notional * seller_rate, step), gross)
    exact = notional.quantize(_LEDGER)
    buyer.fill(quantity=quantity, quote=exact, fee=buyer_fee, hold_used=cost + buyer_fee)
    seller.fill(quantity=quantity, quote=exact, fee=seller_fee, hold_used=quantity)
    base, quote = rules.base_id, rules.quote_id
    batch.move(buyer.user_id, quote, Bucket.LOCKED, -(cost + buyer_fee))
    batch.move(buyer.user_id, base, Bucket.AVAILABLE, quantity)
    batch.move(seller.user_id, base, Bucket.LOCKED, -quantity)
    batch.move(seller.user_id, quote, Bucket.AVAILABLE, gross - seller_fee)
    batch.move(BalanceKind.FEES, quote, Bucket.AVAILABLE, buyer_fee + seller_fee)
    batch.move(BalanceKind.ROUNDING, quote, Bucket.AVAILABLE, cost - gross)
    for order, done in ((maker, maker_done), (taker, taker_done)):
        if done:
            batch.end(order, OrderStatus.FILLED)
        elif order.status == OrderStatus.NEW:
            order.status = OrderStatus.PARTIALLY_FILLED
    is_buy_taker = taker_side == "buy"
    maker_fee, taker_fee = (seller_fee, buyer_fee) if is_buy_taker else (buyer_fee, seller_fee)
    batch.trades.append(
        Trade(
            market_id=rules.market_id,
            seq=seq,
            maker_order_id=maker.id,
            taker_order_id=taker.id,
            buy_order_id=buyer.id,
            sell_order_id=seller.id,
            price=price,
            quantity=quantity,
            quote_quantity=exact,
            taker_side=taker_side,
            maker_fee=maker_fee,
            taker_fee=taker_fee,
        )
    )
    batch.last_price = price


def _apply_reduced(batch: _Batch, order: SettledOrder, *, reduced_lots: int) -> None:
    """Lower the order's quantity and release the hold the removed part no longer needs."""
    rules = batch.rules
    reduced = rules.lot * reduced_lots
    if order.quantity is not None:
        order.quantity -= reduced
    if order.side == "sell":
        release = min(reduced, order.hold_remaining)
    else:
        rate = max(rules.maker_fee, rules.taker_fee)
        remaining = (order.quantity or ZERO) - order.filled_quantity
        needed = _ceil((order.price or ZERO) * remaining * (1 + rate), rules.quote_step)
        release = max(order.hold_remaining - needed, ZERO)
    if release:
        batch.move(order.user_id, order.hold_asset_id, Bucket.LOCKED, -release)
        batch.move(order.user_id, order.hold_asset_id, Bucket.AVAILABLE, release)
        order.hold_remaining -= release
    order.changed = True


def _write(batch: _Batch, cursor: SettlementCursor) -> None:
    rules = batch.rules
    moves = [
        Move(
            delta=delta,
            bucket=bucket,
            asset_id=asset_id,
            **({"system": owner} if isinstance(owner, str) else {"user_id": owner}),
        )
        for (owner, asset_id, bucket), delta in batch.moves.items()
        if delta
    ]
    if moves:
        apply_moves(
            kind=EntryKind.SETTLEMENT,
            ref=f"settle:{rules.symbol}:{cursor.last_seq}"[:64],
            moves=moves,
        )
    if batch.trades:
        Trade.objects.bulk_create(batch.trades)
    write_orders([o for o in batch.orders.values() if o.changed])
    if batch.last_price is not None:
        Market.objects.filter(pk=rules.market_id).update(last_price=batch.last_price)
    cursor.save(update_fields=["last_seq", "fence_token", "updated_at"])


def _messages(batch: _Batch, *, prev_seq: int, seq: int) -> list[Message]:
    rules = batch.rules
    bids = [
        [str(rules.tick * p), str(rules.lot * t)] for (s, p), t in batch.depth.items() if s == "buy"
    ]
    asks = [
        [str(rules.tick * p), str(rules.lot * t)]
        for (s, p), t in batch.depth.items()
        if s == "sell"
    ]
    out: list[Message] = [
        (
            depth_group(rules.symbol),
            {
                "type": "depth.diff",
                "symbol": rules.symbol,
                "prev_seq": prev_seq,
                "seq": seq,
                "bids": bids,
                "asks": asks,
            },
        )
    ]
    if batch.trades:
        out.append(
            (
                trades_group(rules.symbol),
                {
                    "type": "trade",
                    "symbol": rules.symbol,
                    "trades": [
                        {
                            "seq": t.seq,
                            "price": str(t.price),
                            "quantity": str(t.quantity),
                            "taker_side": t.taker_side,
                        }
                        for t in batch.trades
                    ],
                },
            )
        )
    by_user: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for order in batch.orders.values():
        if order.changed:
            by_user[order.user_id].append(order.as_message(rules.symbol))
    for user_id, orders in by_user.items():
        out.append((user_group(user_id), {"type": "order.update", "seq": seq, "orders": orders}))
    user_ids = {owner for owner, _, _ in batch.moves if isinstance(owner, int)}
    if user_ids:
        rows = Balance.objects.filter(
            user_id__in=user_ids, asset_id__in=(rules.base_id, rules.quote_id)
        ).values_list("user_id", "asset__code", "available", "locked")
        balances: dict[int, list[dict[str, str]]] = defaultdict(list)
        for user_id, code, available, locked in rows:
            balances[user_id].append(
                {"asset": code, "available": str(available), "locked": str(locked)}
            )
        out.extend(
            (user_group(user_id), {"type": "balance.update", "seq": seq, "balances": items})
            for user_id, items in balances.items()
        )
    return out


__all__ = ["MarketRules", "SequenceGap", "SettleResult", "SettlementError", "settle_batch"]
