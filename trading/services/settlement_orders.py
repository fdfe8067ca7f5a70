"""The rows of a settlement batch: cursor and orders locked and read in one statement,
everything but the ledger written in one.

Split from settlement.py to keep both short. Only settle_batch calls these, inside its
transaction and while holding the market's cursor lock.

Amounts cross this boundary as integers in units of 1e-18 (the ledger's precision, the
``_e18`` suffix): every money column is ``numeric(36, 18)``, so the conversion is exact both
ways, and settlement's per-event arithmetic is integer arithmetic instead of 80-digit
Decimal arithmetic. The write statement multiplies by 1e-18 in SQL (numeric multiplication
is exact), so no Decimal is built per row on the way back either.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Context, Decimal
from typing import Any

from django.db import connection

from exchange.db import PreparedStatement
from exchange.pgarray import int_array, text_array
from markets.sql import (
    batch_market_update,
    candle_params,
    candle_upsert,
    depth_delete,
    depth_params,
    depth_upsert,
)
from trading.models import TERMINAL_STATUSES, OrderStatus

_TERMINAL = frozenset(str(s) for s in TERMINAL_STATUSES)
_CTX = Context(prec=80)  # 36-digit amounts scaled by 1e18 must never round
_NEW = str(OrderStatus.NEW)
_PARTIAL = str(OrderStatus.PARTIALLY_FILLED)


def to_e18(value: Decimal) -> int:
    """An amount of at most 18 decimals as an exact integer number of 1e-18 units."""
    return int(value.scaleb(18, _CTX))


def from_e18(value: int) -> Decimal:
    """Inverse of to_e18, with exponent -18 like the values PostgreSQL returns."""
    return Decimal(value).scaleb(-18, _CTX)


# The batch's first statement: the market's cursor row, locked first (it serialises
# settlement), the market's rules, and the batch's order rows, locked in id order. The order
# scan needs the cursor CTE's market_id, so the cursor lock is always taken before any order
# lock. The orders are joined on unnest rather than ``id = ANY(...) AND market_id = ...``,
# for which the planner may AND the primary key with the market_id index, whose scan reads
# every order of the market. With no order ids the result is one row of NULL order columns;
# with no cursor row it is empty. Order amounts come back as their 1e-18 unit counts in
# text (exact: the columns have 18 decimals), which int() reads faster than Python makes
# and scales a Decimal.
_LOCK = PreparedStatement(
    "trading_settle_lock",
    """
WITH c AS MATERIALIZED (
    SELECT market_id, last_seq, fence_token FROM trading_settlementcursor
    WHERE market_id = %(market_id)s
    FOR NO KEY UPDATE
), o AS MATERIALIZED (
    SELECT o.id, o.user_id, o.side, trunc(o.price * 1e18)::text,
           trunc(o.quantity * 1e18)::text, trunc(o.filled_quantity * 1e18)::text,
           trunc(o.filled_quote * 1e18)::text, trunc(o.fee_paid * 1e18)::text,
           o.hold_asset_id, trunc(o.hold_remaining * 1e18)::text, o.status, o.accepted_seq,
           o.reject_reason, trunc(o.maker_fee_rate * 1e6)::int, trunc(o.taker_fee_rate * 1e6)::int
    FROM unnest(%(order_ids)s::bigint[]) AS k(id)
    JOIN trading_order o ON o.id = k.id
    WHERE o.market_id = (SELECT market_id FROM c)
    ORDER BY o.id
    FOR NO KEY UPDATE OF o
)
SELECT c.last_seq, c.fence_token, m.symbol, m.base_id, m.quote_id, m.tick_size, m.lot_size,
       q.decimals, m.maker_fee, m.taker_fee, o.*
FROM c
JOIN markets_market m ON m.id = c.market_id
JOIN accounts_asset q ON q.id = m.quote_id
LEFT JOIN o ON true
""",
)
_CURSOR_COLUMNS = 10


# One statement for the whole batch's writes but the ledger's (data-modifying CTEs): the
# trades, the order rows, the market's last price (markets' own UPDATE, embedded) and the
# cursor. Trades reference the orders updated beside them: their FK checks run at the
# statement's end, in this transaction, so they see the updated rows. It runs before
# apply_moves: the balance rows apply_moves locks are shared by every market of the quote
# asset (the fee and rounding rows by all of them), so their lock is held only for the
# ledger statements and COMMIT.
_WRITE = PreparedStatement(
    "trading_settle_write",
    "".join(
        (
            """
WITH trades AS (
    INSERT INTO trading_trade (market_id, seq, maker_order_id, taker_order_id, buy_order_id,
        sell_order_id, price, quantity, quote_quantity, taker_side, maker_fee, taker_fee,
        created_at)
    SELECT %(market_id)s, t.seq, t.maker, t.taker, t.buy, t.sell, t.price * 1e-18,
           t.quantity * 1e-18, t.quote * 1e-18, t.side, t.maker_fee * 1e-18, t.taker_fee * 1e-18,
           %(now)s
    FROM unnest(%(t_seq)s::bigint[], %(t_maker)s::bigint[], %(t_taker)s::bigint[],
                %(t_buy)s::bigint[], %(t_sell)s::bigint[], %(t_price)s::numeric[],
                %(t_quantity)s::numeric[], %(t_quote)s::numeric[], %(t_side)s::text[],
                %(t_maker_fee)s::numeric[], %(t_taker_fee)s::numeric[])
         AS t(seq, maker, taker, buy, sell, price, quantity, quote, side, maker_fee, taker_fee)
), orders AS (
    UPDATE trading_order AS o
    SET quantity = v.quantity * 1e-18, filled_quantity = v.filled_quantity * 1e-18,
        filled_quote = v.filled_quote * 1e-18, fee_paid = v.fee_paid * 1e-18,
        hold_remaining = v.hold_remaining * 1e-18, status = v.status,
        accepted_seq = v.accepted_seq, reject_reason = v.reject_reason, updated_at = %(now)s
    FROM unnest(%(o_id)s::bigint[], %(o_quantity)s::numeric[],
                %(o_filled_quantity)s::numeric[], %(o_filled_quote)s::numeric[],
                %(o_fee_paid)s::numeric[], %(o_hold_remaining)s::numeric[],
                %(o_status)s::text[], %(o_accepted_seq)s::bigint[], %(o_reject_reason)s::text[])
         AS v(id, quantity, filled_quantity, filled_quote, fee_paid, hold_remaining, status,
              accepted_seq, reject_reason)
    WHERE o.id = v.id
), market AS (
""",
            batch_market_update(),
            """
), candles AS (
""",
            candle_upsert(),
            """
), depth_set AS (
""",
            depth_upsert(),
            """
), depth_gone AS (
""",
            depth_delete(),
            """
)
UPDATE trading_settlementcursor
SET last_seq = %(last_seq)s, fence_token = %(fence_token)s, updated_at = %(now)s
WHERE market_id = %(market_id)s
""",
        )
    ),
)

# Stop triggers, a statement of their own (only batches with a trigger run it). The rows
# are already locked by _LOCK, which locks every order an event names.
_TRIGGERS_SQL = """
UPDATE trading_order AS o SET triggered_seq = v.seq
FROM unnest(%(ids)s::bigint[], %(seqs)s::bigint[]) AS v(id, seq)
WHERE o.id = v.id AND o.market_id = %(market_id)s
"""

_BALANCES_SQL = """
SELECT b.user_id, a.code, b.available, b.locked
FROM accounts_balance b JOIN accounts_asset a ON a.id = b.asset_id
WHERE b.user_id = ANY(%s::bigint[]) AND b.asset_id IN (%s, %s)
"""


@dataclass(slots=True)
class SettledOrder:
    """The mutable settlement view of one order row; amounts in 1e-18 units."""

    id: int
    user_id: int
    side: str
    price_e18: int | None
    quantity_e18: int | None
    filled_quantity_e18: int
    filled_quote_e18: int
    fee_paid_e18: int
    hold_asset_id: int
    hold_remaining_e18: int
    status: str
    accepted_seq: int | None
    reject_reason: str
    maker_fee_e6: int  # the rates fixed on the order at accept, in 1e-6 units
    taker_fee_e6: int
    changed: bool = False

    @property
    def is_terminal(self) -> bool:
        return self.status in _TERMINAL

    def fill(self, *, quantity_e18: int, quote_e18: int, fee_e18: int, hold_used_e18: int) -> None:
        self.filled_quantity_e18 += quantity_e18
        self.filled_quote_e18 += quote_e18
        self.fee_paid_e18 += fee_e18
        self.hold_remaining_e18 -= hold_used_e18
        self.changed = True

    def as_message(self, symbol: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "symbol": symbol,
            "status": self.status,
            "filled_quantity": str(from_e18(self.filled_quantity_e18)),
            "filled_quote": str(from_e18(self.filled_quote_e18)),
            "fee_paid": str(from_e18(self.fee_paid_e18)),
            "accepted_seq": self.accepted_seq,
        }


def _order(row: Sequence[Any]) -> SettledOrder:
    """A SettledOrder from the order columns of _LOCK (amounts as 1e-18 unit counts)."""
    price, quantity = row[3], row[4]
    return SettledOrder(
        row[0],
        row[1],
        row[2],
        None if price is None else int(price),
        None if quantity is None else int(quantity),
        int(row[5]),
        int(row[6]),
        int(row[7]),
        row[8],
        int(row[9]),
        row[10],
        row[11],
        row[12],
        row[13],
        row[14],
    )


def lock_batch_rows(
    market_id: int, order_ids: Collection[int]
) -> tuple[tuple[Any, ...] | None, dict[int, SettledOrder]]:
    """Lock the market's cursor, then the orders (id order, FOR NO KEY UPDATE).

    Returns the cursor row (last_seq, fence_token, then the market's symbol, base_id,
    quote_id, tick_size, lot_size, quote decimals, maker_fee, taker_fee), or None when the
    market has no cursor yet, and the orders by id.
    """
    with connection.cursor() as cursor:
        _LOCK.execute(cursor, {"market_id": market_id, "order_ids": int_array(sorted(order_ids))})
        rows = cursor.fetchall()
    if not rows:
        return None, {}
    orders = {
        row[_CURSOR_COLUMNS]: _order(row[_CURSOR_COLUMNS:])
        for row in rows
        if row[_CURSOR_COLUMNS] is not None
    }
    return rows[0][:_CURSOR_COLUMNS], orders


@dataclass(slots=True)
class TradeRows:
    """The batch's trades, column by column (the arrays of the INSERT ... unnest)."""

    seq: list[int]
    maker: list[int]
    taker: list[int]
    buy: list[int]
    sell: list[int]
    price_e18: list[int]
    quantity_e18: list[int]
    quote_e18: list[int]
    side: list[str]
    maker_fee_e18: list[int]
    taker_fee_e18: list[int]

    @classmethod
    def empty(cls) -> TradeRows:
        return cls([], [], [], [], [], [], [], [], [], [], [])

    def __len__(self) -> int:
        return len(self.seq)


def write_batch(
    *,
    market_id: int,
    now: datetime,
    trades: TradeRows,
    orders: Collection[SettledOrder],
    last_price: Decimal | None,
    last_seq: int,
    fence_token: int,
    depth: Mapping[tuple[str, int], int],
) -> None:
    """Insert the trades, write the changed orders, the market's last price, book_seq,
    candles and changed depth levels (``depth``: (side, price e18) -> total e18), and the
    cursor; one statement."""
    rows = sorted(orders, key=lambda o: o.id)
    for order in rows:
        if order.status == _NEW and order.filled_quantity_e18:
            order.status = _PARTIAL
    params: dict[str, Any] = {  # Any: array literals (exchange.pgarray) and scalars
        "market_id": market_id,
        "now": now,
        "t_seq": int_array(trades.seq),
        "t_maker": int_array(trades.maker),
        "t_taker": int_array(trades.taker),
        "t_buy": int_array(trades.buy),
        "t_sell": int_array(trades.sell),
        "t_price": int_array(trades.price_e18),
        "t_quantity": int_array(trades.quantity_e18),
        "t_quote": int_array(trades.quote_e18),
        "t_side": text_array(trades.side),
        "t_maker_fee": int_array(trades.maker_fee_e18),
        "t_taker_fee": int_array(trades.taker_fee_e18),
        "o_id": int_array([o.id for o in rows]),
        "o_quantity": int_array([o.quantity_e18 for o in rows]),
        "o_filled_quantity": int_array([o.filled_quantity_e18 for o in rows]),
        "o_filled_quote": int_array([o.filled_quote_e18 for o in rows]),
        "o_fee_paid": int_array([o.fee_paid_e18 for o in rows]),
        "o_hold_remaining": int_array([o.hold_remaining_e18 for o in rows]),
        "o_status": text_array([o.status for o in rows]),
        "o_accepted_seq": int_array([o.accepted_seq for o in rows]),
        "o_reject_reason": text_array([o.reject_reason for o in rows]),
        "last_price": last_price,
        "last_seq": last_seq,
        "fence_token": fence_token,
        **candle_params(
            now=now,
            seq=trades.seq,
            price_e18=trades.price_e18,
            quantity_e18=trades.quantity_e18,
            quote_e18=trades.quote_e18,
            taker_side=trades.side,
        ),
        **depth_params(depth),
    }
    with connection.cursor() as cursor:
        _WRITE.execute(cursor, params)


def write_triggers(*, market_id: int, triggered: dict[int, int]) -> None:
    """Set ``triggered_seq`` of the stop orders in ``triggered`` (order id -> trigger seq)."""
    ids = sorted(triggered)
    with connection.cursor() as cursor:
        cursor.execute(
            _TRIGGERS_SQL,
            {
                "market_id": market_id,
                "ids": int_array(ids),
                "seqs": int_array([triggered[i] for i in ids]),
            },
        )


def read_balances(
    *, user_ids: Collection[int], asset_ids: tuple[int, int]
) -> list[tuple[int, str, Decimal, Decimal]]:
    """(user_id, asset code, available, locked) of the users' balances of the two assets."""
    if not user_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_BALANCES_SQL, [int_array(sorted(user_ids)), *asset_ids])
        balances: list[tuple[int, str, Decimal, Decimal]] = cursor.fetchall()
    return balances
