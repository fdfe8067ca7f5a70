"""24 h rolling tickers from candles and the depth book, for any number of markets at once.

The window is [floor_to_minute(now) - 24 h, now]: Binance's rolling window at minute
granularity, because that is what the stored candles resolve. It is read from the 1m
candles between the window's start and the next whole hour, and the 1h candles from there
on (the current hour's row already counts every trade up to now): at most 59 + 25 rows per
market, whatever the traffic, and never the trades table. One statement reads them for all
markets (a LATERAL per market), one more the best bid and ask (depth.book_tickers), one the
markets themselves: three queries, however many markets.

Binance's 24 h ticker fields are followed (GET /api/v3/ticker/24hr): `change` is last - open,
`change_percent` that as a percentage of open (here to 2 places, half-even), the weighted
average quote_volume / volume (to the tick's places), `prev_close` the last price before the
window, trade ids -1 when the window has none. A market without a trade in the window has
zero volumes and counts, open, high, low and last at its last price (0 if it never traded),
change 0 and a weighted average of 0.

Cached in Django's cache (Redis) per set of markets for at most a second. The cached value
carries the instant it was computed for, and a hit older than a second by the clock (or
from a clock that moved back) is recomputed: Redis's own expiry alone would let a value
computed slowly, or stored late, outlive its second.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal

from django.core.cache import cache
from django.db import connection

from exchange import clock
from markets import selectors  # module, not names: markets.selectors re-exports this package
from markets.errors import MarketNotFound
from markets.marketdata.common import notional_quantizer, quantizer
from markets.marketdata.depth import book_tickers
from markets.models import Market

WINDOW = timedelta(hours=24)
MAX_AGE = timedelta(seconds=1)
CACHE_PREFIX = "marketdata:tickers:"
_CTX = Context(prec=80)  # numeric(48, 18) sums: division and quantize keep every digit
_PERCENT = Decimal("0.01")

_WINDOW_SQL = """
SELECT m.id, a.open, a.high, a.low, a.close, a.volume, a.quote_volume, a.trade_count,
       a.first_id, a.last_id, p.close
FROM unnest(%(ids)s::bigint[]) AS m(id)
LEFT JOIN LATERAL (
    SELECT (array_agg(c.open ORDER BY c.first_trade_id))[1] AS open, max(c.high) AS high,
           min(c.low) AS low, (array_agg(c.close ORDER BY c.last_trade_id DESC))[1] AS close,
           sum(c.volume) AS volume, sum(c.quote_volume) AS quote_volume,
           sum(c.trade_count) AS trade_count, min(c.first_trade_id) AS first_id,
           max(c.last_trade_id) AS last_id
    FROM markets_candle c
    WHERE c.market_id = m.id
      AND ((c.interval = '1m' AND c.open_time >= %(start)s AND c.open_time < %(hour)s)
           OR (c.interval = '1h' AND c.open_time >= %(hour)s AND c.open_time <= %(now)s))
) a ON true
LEFT JOIN LATERAL (
    SELECT c.close FROM markets_candle c
    WHERE c.market_id = m.id AND c.interval = '1m' AND c.open_time < %(start)s
    ORDER BY c.open_time DESC LIMIT 1
) p ON true
"""


@dataclass(frozen=True, slots=True)
class Ticker:
    """One market's rolling 24 h statistics and its best bid and ask (None on an empty side)."""

    symbol: str
    open_time: datetime
    close_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    last: Decimal
    prev_close: Decimal
    volume: Decimal
    quote_volume: Decimal
    change: Decimal
    change_percent: Decimal
    weighted_average: Decimal
    trade_count: int
    first_trade_id: int
    last_trade_id: int
    bid_price: Decimal | None
    bid_quantity: Decimal | None
    ask_price: Decimal | None
    ask_quantity: Decimal | None


def ticker(market: Market | str) -> Ticker:
    """The market's 24 h ticker (a Market or a symbol). Raises MarketNotFound."""
    return _tickers(_wanted([market], field="market"), field="market")[0]


def tickers(markets: Iterable[Market | str] | None = None) -> list[Ticker]:
    """The 24 h tickers of `markets` (Markets or symbols; None: every listed market), by symbol.

    Raises MarketNotFound (field "markets") if any is unknown; nothing is cached then.
    """
    if markets is not None and (
        isinstance(markets, str | Market) or not isinstance(markets, Iterable)
    ):
        raise MarketNotFound("Pass a list of markets or symbols.", field="markets")
    wanted = None if markets is None else _wanted(markets, field="markets")
    return _tickers(wanted, field="markets")


def _wanted(markets: Iterable[object], *, field: str) -> tuple[str, ...]:
    """The distinct symbols asked for, sorted (the cache key's market set)."""
    symbols = set()
    for item in markets:
        if isinstance(item, Market):
            symbols.add(item.symbol)
        elif isinstance(item, str) and 0 < len(item) <= selectors.MAX_SYMBOL_CHARS:
            symbols.add(item.upper())
        else:
            raise MarketNotFound("No such market.", field=field)
    return tuple(sorted(symbols))


def _cache_key(wanted: tuple[str, ...] | None) -> str:
    if wanted is None:
        return CACHE_PREFIX + "listed"
    return CACHE_PREFIX + hashlib.sha256(",".join(wanted).encode()).hexdigest()[:40]


def _tickers(wanted: tuple[str, ...] | None, *, field: str) -> list[Ticker]:
    if wanted == ():
        return []
    key = _cache_key(wanted)
    now = clock.now()
    cached = cache.get(key)
    if cached is not None:
        computed_at, value = cached
        if timedelta(0) <= now - computed_at <= MAX_AGE:
            return list(value)
    markets = _resolve(wanted, field=field)
    value = _compute(markets, now)
    cache.set(key, (now, value), timeout=MAX_AGE.total_seconds())
    return list(value)


def _resolve(wanted: tuple[str, ...] | None, *, field: str) -> list[Market]:
    """The markets by symbol, in one query; MarketNotFound if one is missing."""
    if wanted is None:
        return list(selectors.list_markets())
    found = list(
        Market.objects.select_related("base", "quote").filter(symbol__in=wanted).order_by("symbol")
    )
    if len(found) != len(wanted):
        raise MarketNotFound("No such market.", field=field)
    return found


def _compute(markets: list[Market], now: datetime) -> list[Ticker]:
    if not markets:
        return []
    now = now.astimezone(UTC)
    start = now.replace(second=0, microsecond=0) - WINDOW
    hour = start if start.minute == 0 else start.replace(minute=0) + timedelta(hours=1)
    params: dict[str, list[int] | datetime] = {
        "ids": [m.pk for m in markets],
        "start": start,
        "hour": hour,
        "now": now,
    }
    with connection.cursor() as cursor:
        cursor.execute(_WINDOW_SQL, params)
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
    books = {book.symbol: book for book in book_tickers(markets)}
    out = []
    for market in markets:
        open_, high, low, last, volume, quote, count, first, last_id, prev = rows[market.pk]
        tick, lot = quantizer(market.tick_size), quantizer(market.lot_size)
        unit = notional_quantizer(market)
        if count is None:  # no trade in the window
            last = market.last_price or Decimal(0)
            open_ = high = low = last
            volume = quote = Decimal(0)
            count, first, last_id = 0, -1, -1
        open_, high, low, last = (
            price.quantize(tick, context=_CTX) for price in (open_, high, low, last)
        )
        change = _CTX.subtract(last, open_)
        percent = _CTX.divide(_CTX.multiply(change, 100), open_) if open_ else Decimal(0)
        average = _CTX.divide(quote, volume) if volume else Decimal(0)
        book = books[market.symbol]
        out.append(
            Ticker(
                symbol=market.symbol,
                open_time=start,
                close_time=now,
                open=open_,
                high=high,
                low=low,
                last=last,
                prev_close=(prev or Decimal(0)).quantize(tick, context=_CTX),
                volume=volume.quantize(lot, context=_CTX),
                quote_volume=quote.quantize(unit, context=_CTX),
                change=change,
                change_percent=_CTX.quantize(percent, _PERCENT),
                weighted_average=average.quantize(tick, context=_CTX),
                trade_count=int(count),
                first_trade_id=int(first),
                last_trade_id=int(last_id),
                bid_price=book.bid_price,
                bid_quantity=book.bid_quantity,
                ask_price=book.ask_price,
                ask_quantity=book.ask_quantity,
            )
        )
    return out
