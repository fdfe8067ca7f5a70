"""Market data checks that markets can make alone: stored candles against the trades, and
`book_seq` and the depth levels against what must hold of any book.

Settlement writes candles, depth levels and `book_seq` in the transaction that writes the
trades, so these hold unless something wrote around it (a hand edit, a restore, a bulk
load). Recomputing every candle means aggregating every trade, so `check_candles` takes a
random sample of periods per market and stored interval, half of them picked among the
stored candles (a wrong row) and half among the trades (a missing row); the seed makes a
failure reproducible. The comparison of the depth levels with the resting orders and of
`book_seq` with the settlement cursor needs trading's tables: trading's check_marketdata
command makes it, around these. They report, they never repair (rebuild_candles does).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection

from accounts.checks import MAX_LISTED, CheckResult
from markets.marketdata.rebuild import day_start
from markets.marketdata.trades import trade_table
from markets.models import CandleInterval, Market

DEFAULT_SAMPLES = 20  # periods per market and interval: a few dozen cheap range scans
_LENGTH = {
    CandleInterval.MINUTE: timedelta(minutes=1),
    CandleInterval.HOUR: timedelta(hours=1),
    CandleInterval.DAY: timedelta(days=1),
}
_COLUMNS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trade_count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "first_trade_id",
    "last_trade_id",
)

# The n-th stored candles of one interval (n drawn by the caller from the row count).
_NTH_CANDLES = """
SELECT open_time FROM (
    SELECT open_time, row_number() OVER (ORDER BY open_time) - 1 AS n FROM markets_candle
    WHERE market_id = %(market_id)s AND interval = %(interval)s
) s WHERE n = ANY(%(offsets)s::bigint[])
"""
_CANDLE_COUNT = """
SELECT count(*) FROM markets_candle WHERE market_id = %(market_id)s AND interval = %(interval)s
"""
# The time of the first trade at or after each drawn seq (the (market, seq) index).
_TRADE_TIMES = """
SELECT (SELECT t.created_at FROM {trades} t WHERE t.market_id = %(market_id)s AND t.seq >= r
        ORDER BY t.seq LIMIT 1)
FROM unnest(%(seqs)s::bigint[]) AS r
"""
_SEQ_RANGE = "SELECT min(seq), max(seq) FROM {trades} WHERE market_id = %(market_id)s"

# Each sampled period: the stored row and the aggregation of the trades in [start, end),
# both as the same columns; a row comes back only where they differ (one missing counts).
_COMPARE = """
WITH p AS (
    SELECT * FROM unnest(%(intervals)s::text[], %(starts)s::timestamptz[],
                         %(ends)s::timestamptz[]) AS p(interval, open_time, end_time)
), agg AS (
    SELECT p.interval, p.open_time, (array_agg(t.price ORDER BY t.seq))[1] AS open,
           max(t.price) AS high, min(t.price) AS low,
           (array_agg(t.price ORDER BY t.seq DESC))[1] AS close, sum(t.quantity) AS volume,
           sum(t.quote_quantity) AS quote_volume, count(*) AS trade_count,
           coalesce(sum(t.quantity) FILTER (WHERE t.taker_side = 'buy'), 0) AS taker_buy_volume,
           coalesce(sum(t.quote_quantity) FILTER (WHERE t.taker_side = 'buy'), 0)
               AS taker_buy_quote_volume,
           min(t.seq) AS first_trade_id, max(t.seq) AS last_trade_id
    FROM p JOIN {trades} t ON t.market_id = %(market_id)s AND t.created_at >= p.open_time
                          AND t.created_at < p.end_time
    GROUP BY 1, 2
)
SELECT p.interval, p.open_time, {stored}, {counted}
FROM p
LEFT JOIN markets_candle c ON c.market_id = %(market_id)s AND c.interval = p.interval
                          AND c.open_time = p.open_time
LEFT JOIN agg a ON a.interval = p.interval AND a.open_time = p.open_time
WHERE ({stored}) IS DISTINCT FROM ({counted})
ORDER BY 1, 2
"""

_BOOK_SEQ_BEHIND = """
SELECT m.symbol, m.book_seq, max(t.seq) FROM markets_market m
JOIN {trades} t ON t.market_id = m.id
WHERE m.id = ANY(%(ids)s::bigint[])
GROUP BY m.id HAVING max(t.seq) > m.book_seq
ORDER BY 1
"""
_CROSSED = """
SELECT m.symbol, b.price, a.price FROM markets_market m
CROSS JOIN LATERAL (SELECT max(price) AS price FROM markets_depthlevel
                    WHERE market_id = m.id AND side = 'buy') b
CROSS JOIN LATERAL (SELECT min(price) AS price FROM markets_depthlevel
                    WHERE market_id = m.id AND side = 'sell') a
WHERE m.id = ANY(%(ids)s::bigint[]) AND b.price >= a.price
ORDER BY 1
"""


def _rows(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:  # Any: raw SQL rows
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _trades_sql(sql: str) -> str:
    return sql.replace("{trades}", connection.ops.quote_name(trade_table()))


def truncate(moment: datetime, interval: str) -> datetime:
    """The start (UTC) of the stored interval `moment` falls in."""
    minute = moment.astimezone(UTC).replace(second=0, microsecond=0)
    if interval == CandleInterval.MINUTE:
        return minute
    if interval == CandleInterval.HOUR:
        return minute.replace(minute=0)
    return day_start(minute.date())


def sample_periods(
    *, market: Market, samples: int, rng: random.Random
) -> list[tuple[str, datetime]]:
    """Up to `samples` (interval, open time) per stored interval: half of them stored candles,
    half the periods of random trades; without repeats, in a stable order."""
    params: dict[str, Any] = {"market_id": market.pk}  # Any: mixed query parameters
    low, high = _rows(_trades_sql(_SEQ_RANGE), params)[0]
    from_trades = (samples + 1) // 2
    trade_times: list[datetime] = []
    if low is not None:
        params["seqs"] = [rng.randint(low, high) for _ in range(from_trades)]
        trade_times = [row[0] for row in _rows(_trades_sql(_TRADE_TIMES), params)]
    periods: set[tuple[str, datetime]] = set()
    for interval in CandleInterval.values:
        params["interval"] = interval
        (count,) = _rows(_CANDLE_COUNT, params)[0]
        params["offsets"] = rng.sample(range(count), min(count, samples - from_trades))
        periods.update((interval, row[0]) for row in _rows(_NTH_CANDLES, params))
        periods.update((interval, truncate(moment, interval)) for moment in trade_times)
    return sorted(periods)


def check_candles(
    *, markets: Sequence[Market], samples: int = DEFAULT_SAMPLES, seed: int = 0
) -> CheckResult:
    """Sampled candles of each market equal the aggregation of their trades; one line per
    differing period (a stored row the trades do not support counts, so does a missing one)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    stored = ", ".join(f"c.{column}" for column in _COLUMNS)
    counted = ", ".join(f"a.{column}" for column in _COLUMNS)
    sql = _trades_sql(_COMPARE).format(stored=stored, counted=counted)
    found: list[str] = []
    for market in markets:
        periods = sample_periods(market=market, samples=samples, rng=rng)
        params = {
            "market_id": market.pk,
            "intervals": [interval for interval, _ in periods],
            "starts": [start for _, start in periods],
            "ends": [start + _LENGTH[CandleInterval(interval)] for interval, start in periods],
        }
        for interval, start, *values in _rows(sql, params):
            found.append(f"{market.symbol} {interval} {start:%Y-%m-%d %H:%M}: {_diff(values)}")
    return CheckResult("candles equal their trades (sampled)", found[:MAX_LISTED])


def _diff(values: list[Any]) -> str:  # Any: Decimal, int or None per column
    width = len(_COLUMNS)
    stored, counted = values[:width], values[width:]
    if stored[0] is None:
        return "no candle, trades say " + _fields(counted)
    if counted[0] is None:
        return "candle without a trade"
    changed = [i for i in range(width) if stored[i] != counted[i]]
    return "; ".join(f"{_COLUMNS[i]} {stored[i]} (trades: {counted[i]})" for i in changed)


def _fields(values: list[Any]) -> str:  # Any: Decimal, int per column
    return ", ".join(f"{column}={value}" for column, value in zip(_COLUMNS, values, strict=True))


def check_book(*, markets: Sequence[Market]) -> CheckResult:
    """What any settled book satisfies: `book_seq` not behind the market's last trade, and
    the depth levels not crossed (the best bid below the best ask)."""
    params = {"ids": [market.pk for market in markets]}
    found = [
        f"{symbol}: book_seq {book_seq} is behind trade {last}"
        for symbol, book_seq, last in _rows(_trades_sql(_BOOK_SEQ_BEHIND), params)
    ]
    found.extend(
        f"{symbol}: depth crossed, best bid {bid} >= best ask {ask}"
        for symbol, bid, ask in _rows(_CROSSED, params)
    )
    return CheckResult("book_seq and depth sane", found[:MAX_LISTED])
