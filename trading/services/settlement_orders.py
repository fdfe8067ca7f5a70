"""The order rows of a settlement batch: locked and read in one statement, written in one.

Split from settlement.py to keep both short. Only settle_batch calls these, inside its
transaction and while holding the market's cursor lock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from trading.models import TERMINAL_STATUSES, OrderStatus

_TERMINAL = frozenset(str(s) for s in TERMINAL_STATUSES)

_LOCK_SQL = """
SELECT id, user_id, side, price, quantity, filled_quantity, filled_quote, fee_paid,
       hold_asset_id, hold_remaining, status, accepted_seq, reject_reason
FROM trading_order
WHERE market_id = %s AND id = ANY(%s)
ORDER BY id
FOR NO KEY UPDATE
"""

_WRITE_SQL = """
UPDATE trading_order AS o
SET quantity = v.quantity, filled_quantity = v.filled_quantity,
    filled_quote = v.filled_quote, fee_paid = v.fee_paid, hold_remaining = v.hold_remaining,
    status = v.status, accepted_seq = v.accepted_seq, reject_reason = v.reject_reason,
    updated_at = %s
FROM unnest(%s::bigint[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[],
            %s::numeric[], %s::text[], %s::bigint[], %s::text[])
     AS v(id, quantity, filled_quantity, filled_quote, fee_paid, hold_remaining, status,
          accepted_seq, reject_reason)
WHERE o.id = v.id
"""


@dataclass(slots=True)
class SettledOrder:
    """The mutable settlement view of one order row."""

    id: int
    user_id: int
    side: str
    price: Decimal | None
    quantity: Decimal | None
    filled_quantity: Decimal
    filled_quote: Decimal
    fee_paid: Decimal
    hold_asset_id: int
    hold_remaining: Decimal
    status: str
    accepted_seq: int | None
    reject_reason: str
    changed: bool = False

    @property
    def is_terminal(self) -> bool:
        return self.status in _TERMINAL

    def fill(self, *, quantity: Decimal, quote: Decimal, fee: Decimal, hold_used: Decimal) -> None:
        self.filled_quantity += quantity
        self.filled_quote += quote
        self.fee_paid += fee
        self.hold_remaining -= hold_used
        self.changed = True

    def as_message(self, symbol: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "symbol": symbol,
            "status": self.status,
            "filled_quantity": str(self.filled_quantity),
            "filled_quote": str(self.filled_quote),
            "fee_paid": str(self.fee_paid),
            "accepted_seq": self.accepted_seq,
        }


def lock_orders(market_id: int, order_ids: Collection[int]) -> dict[int, SettledOrder]:
    """Lock the orders (id order, FOR NO KEY UPDATE) and return them by id."""
    if not order_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_SQL, [market_id, sorted(order_ids)])
        return {row[0]: SettledOrder(*row) for row in cursor.fetchall()}


def write_orders(orders: Iterable[SettledOrder]) -> None:
    """Write the changed orders back in one UPDATE."""
    rows = sorted(orders, key=lambda o: o.id)
    if not rows:
        return
    for order in rows:
        if order.status == OrderStatus.NEW and order.filled_quantity:
            order.status = OrderStatus.PARTIALLY_FILLED
    with connection.cursor() as cursor:
        cursor.execute(
            _WRITE_SQL,
            [
                timezone.now(),
                [o.id for o in rows],
                [o.quantity for o in rows],
                [o.filled_quantity for o in rows],
                [o.filled_quote for o in rows],
                [o.fee_paid for o in rows],
                [o.hold_remaining for o in rows],
                [o.status for o in rows],
                [o.accepted_seq for o in rows],
                [o.reject_reason for o in rows],
            ],
        )
