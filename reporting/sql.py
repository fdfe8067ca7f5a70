"""The rollup's set-based statements: day rows from trades, month and year rows from days.

Every statement *recomputes* the rows of the periods it is given and upserts them; rows of
those periods that the recomputation no longer produces (a corrected trade moved a user's
side, a day lost its only trade) are deleted in the same statement. Nothing is ever
incremented, so running any of them twice, or after a late trade, ends with the same rows.

The days come in as parallel arrays (day, UTC start, UTC end) computed by
`reporting.calendars`, and a trade belongs to a day by `start <= created_at < end`: the
same rule the selector and the checks use, with no time-zone arithmetic in SQL. Parameters:
`%(market_id)s`, `%(days)s`, `%(starts)s`, `%(ends)s`, and for periods `%(calendars)s`,
`%(years)s`, `%(months)s`, `%(firsts)s`, `%(lasts)s`. `{trades}` and `{orders}` are the
trading tables' names, filled in by the caller.
"""

from __future__ import annotations

DAYS_CTE = """d AS (
    SELECT * FROM unnest(%(days)s::date[], %(starts)s::timestamptz[], %(ends)s::timestamptz[])
        AS d(day, s, e)
)"""

# The last seq and size of the next bounded batch after the cursor (the (market, seq) unique index).
BATCH_END = """
SELECT max(seq), count(*) FROM (
    SELECT seq FROM {trades} WHERE market_id = %(market_id)s AND seq > %(after)s
    ORDER BY seq LIMIT %(limit)s
) s
"""
# The minutes those trades were stamped in: settlement stamps a whole batch with one time,
# so this is small, and a minute maps to at most two local days (checked at both ends).
BATCH_MINUTES = """
SELECT DISTINCT date_trunc('minute', created_at) FROM {trades}
WHERE market_id = %(market_id)s AND seq > %(after)s AND seq <= %(upto)s
"""
# When the first trade after a batch was stamped.
NEXT_TRADE_TIME = """
SELECT created_at FROM {trades} WHERE market_id = %(market_id)s AND seq > %(upto)s
ORDER BY seq LIMIT 1
"""
# First and last trade instants of a market (a rebuild's range).
TRADE_SPAN = "SELECT min(created_at), max(created_at) FROM {trades} WHERE market_id = %s"

# One row per side of each trade: the buyer's and the seller's; a side's fee is the maker
# fee when that side's order was the maker. A self-trade is two sides of one user.
USER_DAYS = f"""
WITH {DAYS_CTE}, sides AS (
    SELECT d.day, o.user_id, t.quantity, t.quote_quantity,
           CASE WHEN t.maker_order_id = o.id THEN t.maker_fee ELSE t.taker_fee END AS fee
    FROM d JOIN {{trades}} t ON t.market_id = %(market_id)s
                          AND t.created_at >= d.s AND t.created_at < d.e
    JOIN {{orders}} o ON o.id = t.buy_order_id
    UNION ALL
    SELECT d.day, o.user_id, t.quantity, t.quote_quantity,
           CASE WHEN t.maker_order_id = o.id THEN t.maker_fee ELSE t.taker_fee END
    FROM d JOIN {{trades}} t ON t.market_id = %(market_id)s
                          AND t.created_at >= d.s AND t.created_at < d.e
    JOIN {{orders}} o ON o.id = t.sell_order_id
), up AS (
    INSERT INTO reporting_userdailyvolume
        (user_id, market_id, day, base_volume, quote_volume, trade_count, fees_paid)
    SELECT user_id, %(market_id)s, day, sum(quantity), sum(quote_quantity), count(*), sum(fee)
    FROM sides GROUP BY day, user_id
    ON CONFLICT (user_id, market_id, day) DO UPDATE SET
        base_volume = EXCLUDED.base_volume, quote_volume = EXCLUDED.quote_volume,
        trade_count = EXCLUDED.trade_count, fees_paid = EXCLUDED.fees_paid
    RETURNING id
)
DELETE FROM reporting_userdailyvolume x
WHERE x.market_id = %(market_id)s AND x.day = ANY(%(days)s::date[])
  AND x.id NOT IN (SELECT id FROM up)
"""  # noqa: S608 (only module constants are interpolated, never input)

# Market days; trader_count from the user day rows the previous statement just wrote.
MARKET_DAYS = f"""
WITH {DAYS_CTE}, agg AS (
    SELECT d.day, sum(t.quantity) AS base_volume, sum(t.quote_quantity) AS quote_volume,
           count(*) AS trade_count, sum(t.maker_fee) AS maker_fees,
           sum(t.taker_fee) AS taker_fees
    FROM d JOIN {{trades}} t ON t.market_id = %(market_id)s
                          AND t.created_at >= d.s AND t.created_at < d.e
    GROUP BY d.day
), up AS (
    INSERT INTO reporting_marketdailyvolume (market_id, day, base_volume, quote_volume,
        trade_count, maker_fees, taker_fees, trader_count)
    SELECT %(market_id)s, agg.day, base_volume, quote_volume, trade_count, maker_fees,
           taker_fees,
           (SELECT count(*) FROM reporting_userdailyvolume u
            WHERE u.market_id = %(market_id)s AND u.day = agg.day)
    FROM agg
    ON CONFLICT (market_id, day) DO UPDATE SET
        base_volume = EXCLUDED.base_volume, quote_volume = EXCLUDED.quote_volume,
        trade_count = EXCLUDED.trade_count, maker_fees = EXCLUDED.maker_fees,
        taker_fees = EXCLUDED.taker_fees, trader_count = EXCLUDED.trader_count
    RETURNING id
)
DELETE FROM reporting_marketdailyvolume x
WHERE x.market_id = %(market_id)s AND x.day = ANY(%(days)s::date[])
  AND x.id NOT IN (SELECT id FROM up)
"""  # noqa: S608 (only module constants are interpolated, never input)

PERIODS_CTE = """p AS (
    SELECT * FROM unnest(%(calendars)s::text[], %(years)s::int[], %(months)s::int[],
                         %(firsts)s::date[], %(lasts)s::date[])
        AS p(calendar, year, month, first_day, last_day)
)"""

MARKET_SUMS = ("base_volume", "quote_volume", "trade_count", "maker_fees", "taker_fees")
USER_SUMS = ("base_volume", "quote_volume", "trade_count", "fees_paid")


def _period_statement(*, table: str, source: str, user: bool, yearly: bool) -> str:
    """Recompute `table`'s rows of the given periods from the `source` child rows.

    Months sum the day rows inside [first_day, last_day]; years sum the month rows of the
    same calendar and year. A market's trader_count is the distinct users of the period:
    from the user day rows for a month, from the user month rows for a year (the same set).
    """
    sums = USER_SUMS if user else MARKET_SUMS
    keys = (["user_id"] if user else []) + ["calendar", "year"] + ([] if yearly else ["month"])
    period_keys = ["calendar", "year"] + ([] if yearly else ["month"])
    if yearly:
        join = "s.calendar = p.calendar AND s.year = p.year"
        traders_src = "reporting_usermonthlyvolume u"
        traders_where = "u.calendar = agg.calendar AND u.year = agg.year"
    else:
        join = "s.day BETWEEN p.first_day AND p.last_day"
        traders_src = "reporting_userdailyvolume u"
        traders_where = "u.day BETWEEN agg.first_day AND agg.last_day"
    period_columns = ["p.calendar", "p.year", "p.month", "p.first_day", "p.last_day"]
    group = ", ".join([*(["s.user_id"] if user else []), *period_columns])
    select_sums = ", ".join(f"sum(s.{c}) AS {c}" for c in sums)
    columns = [*keys, "first_day", "last_day", *sums] + ([] if user else ["trader_count"])
    values = [*keys, "first_day", "last_day", *sums]
    if not user:
        values.append(
            f"(SELECT count(DISTINCT u.user_id) FROM {traders_src}"  # noqa: S608 (constants)
            f" WHERE u.market_id = %(market_id)s AND {traders_where})"
        )
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in (*sums, "first_day", "last_day"))
    if not user:
        updates += ", trader_count = EXCLUDED.trader_count"
    conflict = ", ".join(["user_id"] if user else []) + ("," if user else "")
    conflict += " market_id, " + ", ".join(period_keys)
    return f"""
WITH {PERIODS_CTE}, agg AS (
    SELECT {group}, {select_sums}
    FROM p JOIN {source} s ON s.market_id = %(market_id)s AND {join}
    GROUP BY {group}
), up AS (
    INSERT INTO {table} (market_id, {", ".join(columns)})
    SELECT %(market_id)s, {", ".join(values)} FROM agg
    ON CONFLICT ({conflict}) DO UPDATE SET {updates}
    RETURNING id
)
DELETE FROM {table} x
WHERE x.market_id = %(market_id)s
  AND ({", ".join(f"x.{k}" for k in period_keys)}) IN (SELECT {", ".join(period_keys)} FROM p)
  AND x.id NOT IN (SELECT id FROM up)
"""  # noqa: S608 (only the constants above are interpolated, never input)


# In this order: each reads rows the one before it wrote.
USER_MONTHS = _period_statement(
    table="reporting_usermonthlyvolume",
    source="reporting_userdailyvolume",
    user=True,
    yearly=False,
)
MARKET_MONTHS = _period_statement(
    table="reporting_marketmonthlyvolume",
    source="reporting_marketdailyvolume",
    user=False,
    yearly=False,
)
USER_YEARS = _period_statement(
    table="reporting_useryearlyvolume",
    source="reporting_usermonthlyvolume",
    user=True,
    yearly=True,
)
MARKET_YEARS = _period_statement(
    table="reporting_marketyearlyvolume",
    source="reporting_marketmonthlyvolume",
    user=False,
    yearly=True,
)
