"""SQL of the markets app that other apps' set-based statements embed.

Settlement writes a batch's trades, orders, cursor and the market's data in one statement
(one round trip); the parts that write markets' tables are owned here, so those tables are
written only by markets' SQL:

* `batch_market_update`: the market's last price and `book_seq` (the sequence the depth
  levels reflect);
* `candle_upsert`: the batch's 1m, 1h and 1d candle rows, merged into what is stored;
* `depth_upsert` / `depth_delete`: the price levels the batch changed (the engine's absolute
  totals: setting one twice leaves the same row, which is what makes them exact).

Placeholders (all in 1e-18 units where they are amounts, passed as integers):
``%(market_id)s``, ``%(last_price)s``, ``%(last_seq)s``; candles: ``%(c_interval)s`` text[]
and ``%(c_open_time)s`` timestamptz[] (one element per stored interval, empty when the batch
has no trade), ``%(c_open)s``, ``%(c_high)s``, ``%(c_low)s``, ``%(c_close)s``,
``%(c_volume)s``, ``%(c_quote_volume)s``, ``%(c_count)s``, ``%(c_taker_buy_volume)s``,
``%(c_taker_buy_quote_volume)s``, ``%(c_first_id)s``, ``%(c_last_id)s``; depth:
``%(d_side)s`` text[], ``%(d_price)s`` numeric[], ``%(d_quantity)s`` numeric[] for the
levels that are not empty, ``%(d_gone_side)s`` / ``%(d_gone_price)s`` for those that are.
`set_last_price` (markets.services) runs `last_price_update` on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

_LAST_PRICE_UPDATE = (
    "UPDATE markets_market SET last_price = %(last_price)s"
    " WHERE id = %(market_id)s AND %(last_price)s::numeric IS NOT NULL"
)

_BATCH_MARKET_UPDATE = (
    "UPDATE markets_market"
    " SET last_price = COALESCE(%(last_price)s::numeric, last_price), book_seq = %(last_seq)s"
    " WHERE id = %(market_id)s"
)

_CANDLE_UPSERT = """
INSERT INTO markets_candle AS c (market_id, interval, open_time, open, high, low, close,
    volume, quote_volume, trade_count, taker_buy_volume, taker_buy_quote_volume,
    first_trade_id, last_trade_id)
SELECT %(market_id)s, k.interval, k.open_time, %(c_open)s::numeric * 1e-18,
       %(c_high)s::numeric * 1e-18, %(c_low)s::numeric * 1e-18, %(c_close)s::numeric * 1e-18,
       %(c_volume)s::numeric * 1e-18, %(c_quote_volume)s::numeric * 1e-18, %(c_count)s::bigint,
       %(c_taker_buy_volume)s::numeric * 1e-18, %(c_taker_buy_quote_volume)s::numeric * 1e-18,
       %(c_first_id)s::bigint, %(c_last_id)s::bigint
FROM unnest(%(c_interval)s::text[], %(c_open_time)s::timestamptz[]) AS k(interval, open_time)
ON CONFLICT (market_id, interval, open_time) DO UPDATE SET
    open = CASE WHEN EXCLUDED.first_trade_id < c.first_trade_id THEN EXCLUDED.open
                ELSE c.open END,
    high = GREATEST(c.high, EXCLUDED.high),
    low = LEAST(c.low, EXCLUDED.low),
    close = CASE WHEN EXCLUDED.last_trade_id > c.last_trade_id THEN EXCLUDED.close
                 ELSE c.close END,
    volume = c.volume + EXCLUDED.volume,
    quote_volume = c.quote_volume + EXCLUDED.quote_volume,
    trade_count = c.trade_count + EXCLUDED.trade_count,
    taker_buy_volume = c.taker_buy_volume + EXCLUDED.taker_buy_volume,
    taker_buy_quote_volume = c.taker_buy_quote_volume + EXCLUDED.taker_buy_quote_volume,
    first_trade_id = LEAST(c.first_trade_id, EXCLUDED.first_trade_id),
    last_trade_id = GREATEST(c.last_trade_id, EXCLUDED.last_trade_id)
"""

_DEPTH_UPSERT = """
INSERT INTO markets_depthlevel AS d (market_id, side, price, quantity)
SELECT %(market_id)s, v.side, v.price * 1e-18, v.quantity * 1e-18
FROM unnest(%(d_side)s::text[], %(d_price)s::numeric[], %(d_quantity)s::numeric[])
     AS v(side, price, quantity)
ON CONFLICT (market_id, side, price) DO UPDATE SET quantity = EXCLUDED.quantity
"""

_DEPTH_DELETE = """
DELETE FROM markets_depthlevel AS d
USING unnest(%(d_gone_side)s::text[], %(d_gone_price)s::numeric[]) AS g(side, price)
WHERE d.market_id = %(market_id)s AND d.side = g.side AND d.price = g.price * 1e-18
"""


def last_price_update() -> str:
    """The UPDATE of a market's last price alone; a NULL price changes nothing.

    `updated_at` is left alone on purpose: it keys the per-process rules cache
    (markets.selectors), and the price is re-read on every call.
    """
    return _LAST_PRICE_UPDATE


def batch_market_update() -> str:
    """Settlement's UPDATE of the market row: last price (kept when NULL) and book_seq."""
    return _BATCH_MARKET_UPDATE


def candle_upsert() -> str:
    """The INSERT ... ON CONFLICT of one batch's candle rows (one per stored interval).

    Every trade of a batch has the batch's time, so a batch touches exactly one row per
    interval; merging is by trade id (open: the lower first id, close: the higher last id)
    and sums, so the result equals an aggregation of the trades whatever the batches were.
    Settlement applies a seq at most once, which is what makes the sums exact.
    """
    return _CANDLE_UPSERT


def depth_upsert() -> str:
    """The INSERT ... ON CONFLICT of the batch's non-empty levels (absolute totals)."""
    return _DEPTH_UPSERT


def depth_delete() -> str:
    """The DELETE of the levels the batch emptied."""
    return _DEPTH_DELETE


_STORED_INTERVALS = ("1m", "1h", "1d")
_EMPTY_CANDLES: dict[str, object] = {
    "c_interval": "{}",
    "c_open_time": "{}",
    **dict.fromkeys(
        (
            "c_open",
            "c_high",
            "c_low",
            "c_close",
            "c_volume",
            "c_quote_volume",
            "c_count",
            "c_taker_buy_volume",
            "c_taker_buy_quote_volume",
            "c_first_id",
            "c_last_id",
        )
    ),
}


def candle_params(
    *,
    now: datetime,
    seq: Sequence[int],
    price_e18: Sequence[int],
    quantity_e18: Sequence[int],
    quote_e18: Sequence[int],
    taker_side: Sequence[str],
) -> dict[str, object]:
    """`candle_upsert`'s parameters for one batch's trades (in seq order, all at `now`)."""
    if not seq:
        return dict(_EMPTY_CANDLES)
    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    opens = (minute, minute.replace(minute=0), minute.replace(hour=0, minute=0))
    buy_volume = buy_quote = 0
    for side, quantity, quote in zip(taker_side, quantity_e18, quote_e18, strict=True):
        if side == "buy":
            buy_volume += quantity
            buy_quote += quote
    return {
        "c_interval": "{" + ",".join(_STORED_INTERVALS) + "}",
        "c_open_time": "{" + ",".join(f'"{t.isoformat()}"' for t in opens) + "}",
        "c_open": price_e18[0],
        "c_high": max(price_e18),
        "c_low": min(price_e18),
        "c_close": price_e18[-1],
        "c_volume": sum(quantity_e18),
        "c_quote_volume": sum(quote_e18),
        "c_count": len(seq),
        "c_taker_buy_volume": buy_volume,
        "c_taker_buy_quote_volume": buy_quote,
        "c_first_id": seq[0],
        "c_last_id": seq[-1],
    }


def depth_params(levels: Mapping[tuple[str, int], int]) -> dict[str, str]:
    """`depth_upsert`'s and `depth_delete`'s parameters: (side, price e18) -> total e18."""
    kept = [(side, price, total) for (side, price), total in levels.items() if total]
    gone = [(side, price) for (side, price), total in levels.items() if not total]
    return {
        "d_side": "{" + ",".join(side for side, _, _ in kept) + "}",
        "d_price": "{" + ",".join(str(price) for _, price, _ in kept) + "}",
        "d_quantity": "{" + ",".join(str(total) for _, _, total in kept) + "}",
        "d_gone_side": "{" + ",".join(side for side, _ in gone) + "}",
        "d_gone_price": "{" + ",".join(str(price) for _, price in gone) + "}",
    }
