"""Candles (klines): the stored 1m/1h/1d rows, and every other interval aggregated from them.

Settlement writes one 1m, 1h and 1d row per batch in its own transaction
(markets.sql.candle_upsert), so the stored rows always agree with the trades table. Every
other interval is aggregated here, in SQL, from the finest stored interval dividing it
(markets.marketdata.intervals), never from raw trades: open is the open of the child with the
lowest first trade id, close the close of the child with the highest last trade id, high and
low the extremes, volumes and counts the sums. Trade ids (settlement's per-market seq) order
the trades even if the clock went back between batches.

What Binance does, and where that was found (the `search` tool, 2026-12-07):

* Parameters (GET /api/v3/klines, the spot API reference as mirrored at
  hexdocs.pm/binance_spot_rest, BinanceSpotRest.Endpoints.MarketData.Klines.Query):
  intervals 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M, case-sensitive; limit
  default 500, max 1000; intervals in UTC by default; "if startTime and endTime are not
  sent, the most recent klines are returned". A kline's close time is the next open minus
  1 ms (the documented example: open 1499040000000, close 1499644799999, a 1w kline).
* startTime/endTime select by open time, both inclusive: a 15m query with startTime
  10:17:36 returned its first kline at 10:30:00 and, with endTime 00:17:36, its last at
  00:15:00 (a question on stackoverflow.org.cn/questions/50321891, quoting real output).
* 1w opens Monday 00:00 UTC: the documented 1w example opens on Monday 2017-07-03.
* 3d buckets are multiples of three days since the Unix epoch: an issue in
  binance-exchange/node-binance-api (#155, 2018-06-29) shows the live 3d kline and the 1d
  kline of 2018-06-27 with the same open; that day is day 17709 = 3 x 5903 since the epoch.
  No document states the rule; this is the only evidence found, and it agrees with it.
* An interval without trades still has a kline: "Kline always generate even if there is no
  trade" (a Binance maintainer in binance/binance-public-data#153). Its prices are the
  previous close and its volumes and count zero (what Binance's charts show as flat
  candles; no document found states the prices). There is no kline before a symbol's
  history starts, so here: none before the market's first trade. Gaps Binance leaves in
  its data during an outage (binance-public-data#14) do not arise here: settlement is the
  only clock.

So here, as there: with `start`, klines open at or after it, ascending, the first `limit`
(from the first trade if `start` is earlier); with only `end`, the latest `limit` opening at
or before it; with neither, the latest `limit` up to and including the current, still open,
interval. Never a kline that opens after now. A filled interval repeats the previous
kline's close, with zero volumes and no trade ids (None).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Any

from django.db import connection

from exchange import clock
from markets.marketdata.common import check_limit, notional_quantizer, quantizer, resolve_market
from markets.marketdata.errors import InvalidRange
from markets.marketdata.intervals import Interval, parse_interval
from markets.models import Market

MAX_LIMIT = 1000
DEFAULT_LIMIT = 500
_EARLIEST = datetime(1, 1, 8, tzinfo=UTC)  # its bucket opens in year 1 for every interval
_CTX = Context(prec=80)  # numeric(48, 18) sums: quantize must never run out of digits

_FIRST_SQL = """
SELECT min(open_time) FROM markets_candle WHERE market_id = %(market_id)s AND interval = %(source)s
"""

# The buckets' aggregates in [lo, stop), then (bucket NULL) the close of the last kline
# before lo: the latest stored row before lo names that bucket, and its close is the close
# of that bucket's child with the highest last trade id, as any other kline's.
_AGGREGATE_SQL = """
WITH src AS (
    SELECT {bucket} AS bucket, open, high, low, close, volume, quote_volume, trade_count,
           taker_buy_volume, taker_buy_quote_volume, first_trade_id, last_trade_id
    FROM markets_candle
    WHERE market_id = %(market_id)s AND interval = %(source)s
      AND open_time >= %(lo)s AND open_time < %(stop)s
), before AS (
    SELECT {bucket} AS bucket FROM markets_candle
    WHERE market_id = %(market_id)s AND interval = %(source)s AND open_time < %(lo)s
    ORDER BY open_time DESC LIMIT 1
), prev AS (
    SELECT c.close FROM markets_candle c, before b
    WHERE c.market_id = %(market_id)s AND c.interval = %(source)s
      AND c.open_time >= b.bucket AND c.open_time < %(lo)s
    ORDER BY c.last_trade_id DESC LIMIT 1
)
SELECT bucket, (array_agg(open ORDER BY first_trade_id))[1], max(high), min(low),
       (array_agg(close ORDER BY last_trade_id DESC))[1], sum(volume), sum(quote_volume),
       sum(trade_count), sum(taker_buy_volume), sum(taker_buy_quote_volume),
       min(first_trade_id), max(last_trade_id)
FROM src GROUP BY bucket
UNION ALL
SELECT NULL, NULL, NULL, NULL, close, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM prev
"""


@dataclass(frozen=True, slots=True)
class Kline:
    """One interval of a market's trades; a filled (tradeless) one has None trade ids."""

    open_time: datetime
    close_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trade_count: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal
    first_trade_id: int | None
    last_trade_id: int | None


def candles(
    market: Market | str,
    interval: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[Kline]:
    """The market's klines of `interval`, ascending by open time (Binance's semantics above).

    `start`/`end` are aware datetimes (any zone; UTC is used) or None. Prices are quantized
    to the tick's places, base volumes to the lot's, quote volumes to tick + lot places
    (exact: markets.marketdata.common.notional_quantizer). Two queries at most (the first
    trade's time, only with `start`; the aggregate), after reading the market when given a
    symbol. Raises InvalidInterval, InvalidLimit, InvalidRange (naive or non-datetime bound,
    start after end), MarketNotFound; reads only.
    """
    spec = parse_interval(interval)
    check_limit(limit, maximum=MAX_LIMIT)
    start_at, end_at = _moment(start, "start"), _moment(end, "end")
    if start_at is not None and end_at is not None and start_at > end_at:
        raise InvalidRange("The start must not be after the end.", field="start")
    found = resolve_market(market)
    now = clock.now()
    hi = spec.floor(now if end_at is None or end_at > now else end_at)
    if start_at is None:
        lo = _shift_back(spec, hi, limit - 1)
    else:
        if start_at > hi:
            return []  # the first open at or after start is in the future
        first = _first_open(found, spec)
        if first is None:
            return []
        lo = max(spec.ceil(start_at), spec.floor(first))
        hi = min(hi, spec.shift(lo, limit - 1))
    if lo > hi:
        return []
    rows, prev_close = _aggregate(found, spec, lo, hi)
    return _klines(found, spec, lo, hi, rows, prev_close)


def _moment(value: object, field: str) -> datetime | None:
    """None, or `value` as an aware UTC datetime; InvalidRange for anything else."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidRange(f"The {field} must be an aware date and time.", field=field)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidRange(f"The {field} is out of range.", field=field) from None


def _shift_back(spec: Interval, hi: datetime, buckets: int) -> datetime:
    """The open `buckets` before `hi`, or the first one Python can represent."""
    try:
        return spec.shift(hi, -buckets)
    except (OverflowError, ValueError):  # an end in the first centuries: nothing traded then
        return spec.floor(_EARLIEST)


def _first_open(market: Market, spec: Interval) -> datetime | None:
    with connection.cursor() as cursor:
        cursor.execute(_FIRST_SQL, {"market_id": market.pk, "source": spec.source})
        row = cursor.fetchone()
    return None if row is None else row[0]


def _aggregate(
    market: Market, spec: Interval, lo: datetime, hi: datetime
) -> tuple[dict[datetime, Sequence[Any]], Decimal | None]:
    """Per bucket open in [lo, hi]: the aggregated row; and the close of the kline before lo."""
    params: dict[str, int | str | datetime] = {
        "market_id": market.pk,
        "source": spec.source,
        "lo": lo,
        "stop": spec.shift(hi, 1),
    }
    with connection.cursor() as cursor:
        cursor.execute(_AGGREGATE_SQL.format(bucket=spec.sql_bucket()), params)
        fetched = cursor.fetchall()
    rows = {row[0]: row for row in fetched if row[0] is not None}
    prev = next((row[4] for row in fetched if row[0] is None), None)
    return rows, prev


def _klines(
    market: Market,
    spec: Interval,
    lo: datetime,
    hi: datetime,
    rows: dict[datetime, Sequence[Any]],
    prev_close: Decimal | None,
) -> list[Kline]:
    """Every bucket from lo (or the first trade's, without an earlier close) to hi, filled."""
    if prev_close is None:
        if not rows:
            return []
        lo = min(rows)
    tick, lot = quantizer(market.tick_size), quantizer(market.lot_size)
    unit = notional_quantizer(market)
    zero_base, zero_quote = Decimal(0).quantize(lot), Decimal(0).quantize(unit)
    out: list[Kline] = []
    opened = lo
    while opened <= hi:
        row = rows.get(opened)
        if row is None:
            assert prev_close is not None  # noqa: S101 - lo is a traded bucket or after one
            price = prev_close.quantize(tick, context=_CTX)
            out.append(
                Kline(
                    open_time=opened,
                    close_time=spec.close_time(opened),
                    open=price,
                    high=price,
                    low=price,
                    close=price,
                    volume=zero_base,
                    quote_volume=zero_quote,
                    trade_count=0,
                    taker_buy_volume=zero_base,
                    taker_buy_quote_volume=zero_quote,
                    first_trade_id=None,
                    last_trade_id=None,
                )
            )
        else:
            _, open_, high, low, close, volume, quote, count, buy, buy_quote, first, last = row
            prev_close = close
            out.append(
                Kline(
                    open_time=opened,
                    close_time=spec.close_time(opened),
                    open=open_.quantize(tick, context=_CTX),
                    high=high.quantize(tick, context=_CTX),
                    low=low.quantize(tick, context=_CTX),
                    close=close.quantize(tick, context=_CTX),
                    volume=volume.quantize(lot, context=_CTX),
                    quote_volume=quote.quantize(unit, context=_CTX),
                    trade_count=int(count),
                    taker_buy_volume=buy.quantize(lot, context=_CTX),
                    taker_buy_quote_volume=buy_quote.quantize(unit, context=_CTX),
                    first_trade_id=int(first),
                    last_trade_id=int(last),
                )
            )
        opened = spec.shift(opened, 1)
    return out
