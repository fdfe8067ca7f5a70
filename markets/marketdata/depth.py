"""The depth book: settlement's DepthLevel rows with the sequence they reflect.

Why it cannot drift from the engine: the levels are the engine's own absolute totals
(`level_changed` events), written by settlement in the same statement and transaction as
its cursor and `Market.book_seq`. A batch settles all or nothing, exactly once (seqs at or
below the cursor are dropped), so the rows are always the book after event `book_seq`:
a killed matching loop replays events settlement drops, a settlement killed before commit
wrote nothing, one killed after commit but before publishing wrote both (the diff it never
sent is a gap the client resyncs over, from these rows), and a Redis flush does not touch
PostgreSQL. A snapshot is read in ONE statement, so the levels and `lastUpdateId` come
from the same MVCC snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection

from markets.marketdata.common import check_limit, quantizer, resolve_market
from markets.models import Market

MAX_DEPTH = 5000
DEFAULT_DEPTH = 100

Level = tuple[Decimal, Decimal]  # (price, quantity)

_DEPTH_SQL = """
SELECT m.book_seq, NULL, NULL, NULL FROM markets_market m WHERE m.id = %(market_id)s
UNION ALL
(SELECT NULL, 'buy', price, quantity FROM markets_depthlevel
 WHERE market_id = %(market_id)s AND side = 'buy' ORDER BY price DESC LIMIT %(limit)s)
UNION ALL
(SELECT NULL, 'sell', price, quantity FROM markets_depthlevel
 WHERE market_id = %(market_id)s AND side = 'sell' ORDER BY price ASC LIMIT %(limit)s)
"""

_BEST_SQL = """
SELECT m.id, m.book_seq,
       b.price, b.quantity, a.price, a.quantity
FROM markets_market m
LEFT JOIN LATERAL (SELECT price, quantity FROM markets_depthlevel
                   WHERE market_id = m.id AND side = 'buy' ORDER BY price DESC LIMIT 1) b ON true
LEFT JOIN LATERAL (SELECT price, quantity FROM markets_depthlevel
                   WHERE market_id = m.id AND side = 'sell' ORDER BY price ASC LIMIT 1) a ON true
WHERE m.id = ANY(%(ids)s)
"""


@dataclass(frozen=True, slots=True)
class Depth:
    """The top levels of a book: bids best (highest) first, asks best (lowest) first."""

    symbol: str
    last_update_id: int
    bids: list[Level]
    asks: list[Level]


@dataclass(frozen=True, slots=True)
class BookTicker:
    """The best bid and ask with their quantities (None on an empty side)."""

    symbol: str
    update_id: int
    bid_price: Decimal | None
    bid_quantity: Decimal | None
    ask_price: Decimal | None
    ask_quantity: Decimal | None


def depth(market: Market | str, limit: int = DEFAULT_DEPTH) -> Depth:
    """Up to `limit` (1..5000) levels per side and the sequence they reflect.

    A client that buffers the depth diffs (``prev_seq`` -> ``seq``), fetches this, drops the
    diffs with ``seq <= last_update_id`` and applies the rest in order holds the engine's
    book. Raises MarketNotFound, InvalidLimit.
    """
    found = resolve_market(market)
    check_limit(limit, maximum=MAX_DEPTH)
    with connection.cursor() as cursor:
        cursor.execute(_DEPTH_SQL, {"market_id": found.pk, "limit": limit})
        rows = cursor.fetchall()
    tick, lot = quantizer(found.tick_size), quantizer(found.lot_size)
    # UNION ALL keeps no promised order: find the sequence row, sort each side here.
    seq = next(row[0] for row in rows if row[1] is None)
    bids = sorted(
        ((p.quantize(tick), q.quantize(lot)) for _, side, p, q in rows if side == "buy"),
        reverse=True,
    )
    asks = sorted((p.quantize(tick), q.quantize(lot)) for _, side, p, q in rows if side == "sell")
    return Depth(symbol=found.symbol, last_update_id=seq, bids=bids, asks=asks)


def book_tickers(markets: Iterable[Market]) -> list[BookTicker]:
    """The best bid and ask of each market, in one query, in the order given."""
    by_id = {m.pk: m for m in markets}
    if not by_id:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_BEST_SQL, {"ids": list(by_id)})
        rows = {row[0]: row for row in cursor.fetchall()}
    out = []
    for market_id, found in by_id.items():
        _, seq, bid_p, bid_q, ask_p, ask_q = rows[market_id]
        tick, lot = quantizer(found.tick_size), quantizer(found.lot_size)
        out.append(
            BookTicker(
                symbol=found.symbol,
                update_id=seq,
                bid_price=None if bid_p is None else bid_p.quantize(tick),
                bid_quantity=None if bid_q is None else bid_q.quantize(lot),
                ask_price=None if ask_p is None else ask_p.quantize(tick),
                ask_quantity=None if ask_q is None else ask_q.quantize(lot),
            )
        )
    return out


def book_ticker(market: Market | str) -> BookTicker:
    """The market's best bid and ask. Raises MarketNotFound."""
    return book_tickers([resolve_market(market)])[0]
