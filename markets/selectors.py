"""Reads of markets: always fresh rows, with base and quote loaded."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import QuerySet
from django.db.models.base import ModelState

from exchange.db import PreparedStatement
from markets.errors import MarketNotFound
from markets.models import Market, MarketStatus

MAX_SYMBOL_CHARS = 32


def get_market(*, symbol: str | None = None, market_id: int | None = None) -> Market:
    """The market by symbol or id, read from the database now (staff edits apply at once).

    Raises MarketNotFound for an unknown (or malformed) symbol or id.
    """
    markets = Market.objects.select_related("base", "quote")
    found: Market | None = None
    if market_id is not None:
        found = markets.filter(pk=market_id).first()
    elif isinstance(symbol, str) and 0 < len(symbol) <= MAX_SYMBOL_CHARS:
        found = markets.filter(symbol=symbol.upper()).first()
    if found is None:
        raise MarketNotFound("No such market.", field="market")
    return found


# Per process: market id -> (updated_at, the row with base and quote loaded). Rules change
# only through save() (admin, services), which bumps updated_at; status and last_price are
# re-read on every call anyway, because settlement may move last_price with update().
_rules_cache: dict[int, tuple[datetime, Market]] = {}
# Prepared (exchange.db): it runs once per order placed.
_FRESHNESS = PreparedStatement(
    "markets_freshness",
    "SELECT updated_at, status, last_price FROM markets_market WHERE id = %(market_id)s",
)


def get_current_market(*, market_id: int) -> Market:
    """The market as it is now, for the order hot path: one narrow query per call.

    Reads (updated_at, status, last_price); the rest of the row (rules, base, quote) comes
    from a per-process cache keyed on updated_at, so a staff edit applies to the very next
    call without a restart. Returns a private copy: callers may not share it across threads
    for writing. Raises MarketNotFound.
    """
    with connection.cursor() as cursor:
        _FRESHNESS.execute(cursor, {"market_id": market_id})
        row = cursor.fetchone()
    if row is None:
        raise MarketNotFound("No such market.", field="market")
    updated_at, status, last_price = row
    cached = _rules_cache.get(market_id)
    if cached is None or cached[0] != updated_at:
        fresh = get_market(market_id=market_id)
        _rules_cache[market_id] = (fresh.updated_at, fresh)
        cached = _rules_cache[market_id]
    return _private_copy(cached[1], status=status, last_price=last_price)


def _private_copy(market: Market, *, status: str, last_price: Decimal | None) -> Market:
    # copy.copy() of a model goes through pickling's __reduce__/__setstate__ (a Django
    # version check included): about a tenth of an order's accept CPU. A shallow copy of
    # the attributes and a fresh ModelState (own fields_cache, sharing base and quote,
    # which nothing on the order path writes) is all a private copy needs.
    clone = Market.__new__(Market)
    clone.__dict__.update(market.__dict__)
    state = ModelState()
    state.db, state.adding = market._state.db, False
    state.fields_cache = dict(market._state.fields_cache)
    clone._state = state
    clone.status = status
    clone.last_price = last_price if last_price is None else Decimal(last_price)
    return clone


def list_markets(
    *, tradable_only: bool = False, include_unlisted: bool = False
) -> QuerySet[Market]:
    """The listed markets by symbol; with `tradable_only`, those accepting new orders.

    Unlisted markets (simulate's, one being prepared) only with `include_unlisted`: staff
    and operations views, never a list users see.
    """
    markets = Market.objects.select_related("base", "quote").order_by("symbol")
    if not include_unlisted:
        markets = markets.filter(listed=True)
    if tradable_only:
        markets = markets.filter(status=MarketStatus.TRADING)
    return markets


def last_prices(*, quote_code: str) -> dict[str, Decimal]:
    """Base asset code -> last trade price of the listed BASE-`quote_code` markets that have
    traded (Market.last_price, moved by settlement). One query; a market that never traded
    is absent."""
    rows = (
        Market.objects.filter(listed=True, quote__code=quote_code, last_price__isnull=False)
        .order_by("symbol")
        .values_list("base__code", "last_price")
    )
    return {base: price for base, price in rows if price is not None}


# Market data (markets.marketdata): the only readers of candles, tickers, depth and trades.
# Imported last: those modules use get_market above.
from markets.marketdata.candles import candles  # noqa: E402
from markets.marketdata.depth import book_ticker, book_tickers, depth  # noqa: E402
from markets.marketdata.ticker import ticker, tickers  # noqa: E402
from markets.marketdata.trades import recent_trades  # noqa: E402

__all__ = [
    "book_ticker",
    "book_tickers",
    "candles",
    "depth",
    "get_current_market",
    "get_market",
    "last_prices",
    "list_markets",
    "recent_trades",
    "ticker",
    "tickers",
]
