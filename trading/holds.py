"""What open orders need locked, and the order invariants, for the ledger auditor.

Registered in settings: `open_order_holds` in LEDGER_HOLD_SOURCES (INV-5) and
`check_orders` in LEDGER_EXTRA_CHECKS (INV-5, INV-6, INV-7, INV-10). Read-only; each
check is one SQL statement so the auditor stays cheap with millions of orders.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import connection
from django.db.models import Sum

from trading.models import OPEN_STATUSES, Order

MAX_LISTED = 50  # per check, like accounts.checks: enough to diagnose, bounded


def open_order_holds() -> dict[tuple[int, int], Decimal]:
    """Σ hold_remaining of non-terminal orders per (user_id, hold_asset_id)."""
    rows = (
        Order.objects.filter(status__in=OPEN_STATUSES)
        .values("user_id", "hold_asset_id")
        .annotate(total=Sum("hold_remaining"))
        .order_by()
    )
    return {(row["user_id"], row["hold_asset_id"]): row["total"] for row in rows}


# (description, SQL returning (id, detail) rows). Each names the invariant it covers.
_CHECKS: tuple[tuple[str, str], ...] = (
    (
        "INV-6 filled outside [0, quantity]",
        "SELECT id, filled_quantity::text FROM trading_order"
        " WHERE filled_quantity < 0 OR (quantity IS NOT NULL AND filled_quantity > quantity)",
    ),
    (
        "INV-6 filled != sum of its trades",
        """
        SELECT o.id, o.filled_quantity::text || ' vs ' || COALESCE(t.qty, 0)::text
        FROM trading_order o
        LEFT JOIN (
            SELECT order_id, SUM(quantity) AS qty FROM (
                SELECT buy_order_id AS order_id, quantity FROM trading_trade
                UNION ALL SELECT sell_order_id, quantity FROM trading_trade
            ) legs GROUP BY order_id
        ) t ON t.order_id = o.id
        WHERE o.filled_quantity <> COALESCE(t.qty, 0)
        """,
    ),
    (
        "INV-6 filled_quote != sum of its trades",
        """
        SELECT o.id, o.filled_quote::text || ' vs ' || COALESCE(t.quote, 0)::text
        FROM trading_order o
        LEFT JOIN (
            SELECT order_id, SUM(quote_quantity) AS quote FROM (
                SELECT buy_order_id AS order_id, quote_quantity FROM trading_trade
                UNION ALL SELECT sell_order_id, quote_quantity FROM trading_trade
            ) legs GROUP BY order_id
        ) t ON t.order_id = o.id
        WHERE o.filled_quote <> COALESCE(t.quote, 0)
        """,
    ),
    (
        "INV-5 terminal order still holds funds",
        "SELECT id, status || ' holds ' || hold_remaining::text FROM trading_order"
        " WHERE status NOT IN ('new', 'partially_filled') AND hold_remaining <> 0",
    ),
    (
        "INV-5 hold_remaining outside [0, hold_amount]",
        "SELECT id, hold_remaining::text || ' of ' || hold_amount::text FROM trading_order"
        " WHERE hold_remaining < 0 OR hold_remaining > hold_amount",
    ),
    (
        "INV-10 held asset does not match market and side",
        """
        SELECT o.id, o.side || ' holds asset ' || o.hold_asset_id::text
        FROM trading_order o JOIN markets_market m ON m.id = o.market_id
        WHERE o.hold_asset_id <> CASE WHEN o.side = 'buy' THEN m.quote_id ELSE m.base_id END
        """,
    ),
    (
        "INV-7 trade legs wrong (side, market or same order)",
        """
        SELECT t.id, 'seq ' || t.seq::text
        FROM trading_trade t
        JOIN trading_order b ON b.id = t.buy_order_id
        JOIN trading_order s ON s.id = t.sell_order_id
        WHERE b.side <> 'buy' OR s.side <> 'sell' OR b.market_id <> t.market_id
           OR s.market_id <> t.market_id OR b.id = s.id
           OR t.maker_order_id NOT IN (b.id, s.id) OR t.taker_order_id NOT IN (b.id, s.id)
           OR t.maker_order_id = t.taker_order_id
        """,
    ),
    (
        "INV-7 trade price outside an order's limit",
        """
        SELECT t.id, t.price::text || ' vs buy ' || COALESCE(b.price::text, '-')
               || ' / sell ' || COALESCE(s.price::text, '-')
        FROM trading_trade t
        JOIN trading_order b ON b.id = t.buy_order_id
        JOIN trading_order s ON s.id = t.sell_order_id
        WHERE (b.price IS NOT NULL AND t.price > b.price)
           OR (s.price IS NOT NULL AND t.price < s.price)
        """,
    ),
)


def check_orders() -> list[str]:
    """Every order and trade invariant trading owns; one line per violation found."""
    found: list[str] = []
    with connection.cursor() as cursor:
        for name, sql in _CHECKS:
            cursor.execute(f"{sql} ORDER BY 1 LIMIT %s", [MAX_LISTED])
            found.extend(f"{name}: #{row_id} {detail}" for row_id, detail in cursor.fetchall())
    return found
