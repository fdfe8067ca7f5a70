"""Recompute a market's stored candles (1m, 1h, 1d) from the trades table.

Settlement keeps candles in step with trades in its own transaction, so nothing needs this
in normal operation. It exists for what settlement cannot see: a database loaded outside
the pipeline (a restore, a bulk import, a benchmark's trades), a candle row edited by hand,
a change to how candles are aggregated. The result is by construction what settlement's
merge rule (markets.sql.candle_upsert) yields for the same trades: open and close by
trade id (the per-market seq), sums for the volumes and counts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from django.db import connection, transaction

from markets.marketdata.common import resolve_market
from markets.marketdata.trades import trade_table
from markets.models import Market

# The minutes are aggregated from the trades (one scan of the market's trades since the
# start); hours and days from those minutes. Every interval boundary is a minute boundary
# in UTC, and open/close by the lowest first / highest last trade id merge exactly, so
# this equals aggregating each interval from the trades, at a fraction of the sorting.
_REBUILD = """
WITH minutes AS MATERIALIZED (
    SELECT date_trunc('minute', t.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS open_time,
           (array_agg(t.price ORDER BY t.seq))[1] AS open, max(t.price) AS high,
           min(t.price) AS low, (array_agg(t.price ORDER BY t.seq DESC))[1] AS close,
           sum(t.quantity) AS volume, sum(t.quote_quantity) AS quote_volume,
           count(*) AS trade_count,
           coalesce(sum(t.quantity) FILTER (WHERE t.taker_side = 'buy'), 0) AS taker_buy_volume,
           coalesce(sum(t.quote_quantity) FILTER (WHERE t.taker_side = 'buy'), 0)
               AS taker_buy_quote_volume,
           min(t.seq) AS first_trade_id, max(t.seq) AS last_trade_id
    FROM {trades} t
    WHERE t.market_id = %(market_id)s AND t.created_at >= %(start)s
    GROUP BY 1
), coarser AS (
    SELECT i.name AS interval,
           date_trunc(i.unit, m.open_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS open_time,
           (array_agg(m.open ORDER BY m.first_trade_id))[1] AS open, max(m.high) AS high,
           min(m.low) AS low, (array_agg(m.close ORDER BY m.last_trade_id DESC))[1] AS close,
           sum(m.volume) AS volume, sum(m.quote_volume) AS quote_volume,
           sum(m.trade_count) AS trade_count, sum(m.taker_buy_volume) AS taker_buy_volume,
           sum(m.taker_buy_quote_volume) AS taker_buy_quote_volume,
           min(m.first_trade_id) AS first_trade_id, max(m.last_trade_id) AS last_trade_id
    FROM minutes m CROSS JOIN (VALUES ('1h', 'hour'), ('1d', 'day')) AS i(name, unit)
    GROUP BY 1, 2
)
INSERT INTO markets_candle (market_id, interval, open_time, open, high, low, close, volume,
    quote_volume, trade_count, taker_buy_volume, taker_buy_quote_volume, first_trade_id,
    last_trade_id)
SELECT %(market_id)s, '1m', open_time, open, high, low, close, volume, quote_volume,
       trade_count, taker_buy_volume, taker_buy_quote_volume, first_trade_id, last_trade_id
FROM minutes
UNION ALL
SELECT %(market_id)s, interval, open_time, open, high, low, close, volume, quote_volume,
       trade_count, taker_buy_volume, taker_buy_quote_volume, first_trade_id, last_trade_id
FROM coarser
"""

# Settlement's write statement updates the market row with every batch (last price,
# book_seq) in the transaction that inserts the batch's trades and merges its candles. A
# FOR UPDATE on that row therefore waits for a batch in flight to commit and holds back the
# next one until the rebuild commits: no trade can be counted twice or missed.
_LOCK_MARKET = "SELECT id FROM markets_market WHERE id = %(market_id)s FOR UPDATE"
_DELETE = "DELETE FROM markets_candle WHERE market_id = %(market_id)s AND open_time >= %(start)s"


def day_start(day: date) -> datetime:
    """00:00 UTC of `day`: where every stored interval of that day begins."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def rebuild_candles(*, market: Market | str, start: date) -> int:
    """Replace the market's candles from `start` (00:00 UTC) on with the trades' aggregation.

    Returns the number of candle rows written. One transaction: the market row's lock
    (serialising with settlement), the delete of every candle whose interval opens on or
    after that instant, the insert of the aggregation of every trade since. Idempotent:
    run twice, it leaves the same rows. An unknown symbol raises MarketNotFound and changes
    nothing.
    """
    market = resolve_market(market)
    params: dict[str, int | datetime] = {"market_id": market.pk, "start": day_start(start)}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_LOCK_MARKET, params)
        cursor.execute(_DELETE, params)
        cursor.execute(_REBUILD.format(trades=connection.ops.quote_name(trade_table())), params)
        return int(cursor.rowcount)
