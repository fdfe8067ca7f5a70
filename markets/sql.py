"""SQL of the markets app that other apps' set-based statements embed.

Settlement writes a batch's trades, orders, cursor and the market's last price in one
statement (one round trip); the last-price part is owned here, so markets' table is
written only by markets' SQL. `set_last_price` (markets.services) runs the same UPDATE
on its own.
"""

from __future__ import annotations

_LAST_PRICE_UPDATE = (
    "UPDATE markets_market SET last_price = %(last_price)s"
    " WHERE id = %(market_id)s AND %(last_price)s::numeric IS NOT NULL"
)


def last_price_update() -> str:
    """The UPDATE of a market's last price, for a data-modifying CTE or on its own.

    Its placeholders are `%(market_id)s` and `%(last_price)s`; a NULL price (a batch without
    trades) changes nothing. `updated_at` is left alone on purpose: it keys the per-process
    rules cache (markets.selectors), and the price is re-read on every call.
    """
    return _LAST_PRICE_UPDATE
