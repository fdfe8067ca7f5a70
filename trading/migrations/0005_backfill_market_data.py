"""Fill the market data (markets 0003) of a database that already has trades and a book.

From here on settlement writes candles, depth levels and book_seq with every batch; this
gives an existing database the rows it would have written: the 1m/1h/1d candles of every
trade so far, the depth levels of every resting order (the book as of the settlement
cursor) and book_seq = the cursor. A new database has no trades: it changes nothing.
"""

from django.db import migrations

CANDLES = """
INSERT INTO markets_candle (market_id, interval, open_time, open, high, low, close, volume,
    quote_volume, trade_count, taker_buy_volume, taker_buy_quote_volume, first_trade_id,
    last_trade_id)
SELECT t.market_id, i.name, date_trunc(i.unit, t.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       (array_agg(t.price ORDER BY t.seq))[1], max(t.price), min(t.price),
       (array_agg(t.price ORDER BY t.seq DESC))[1], sum(t.quantity), sum(t.quote_quantity),
       count(*), coalesce(sum(t.quantity) FILTER (WHERE t.taker_side = 'buy'), 0),
       coalesce(sum(t.quote_quantity) FILTER (WHERE t.taker_side = 'buy'), 0),
       min(t.seq), max(t.seq)
FROM trading_trade t
CROSS JOIN (VALUES ('1m', 'minute'), ('1h', 'hour'), ('1d', 'day')) AS i(name, unit)
GROUP BY t.market_id, i.name, 3
"""

DEPTH = """
INSERT INTO markets_depthlevel (market_id, side, price, quantity)
SELECT market_id, side, price, sum(quantity - filled_quantity)
FROM trading_order
WHERE status IN ('new', 'partially_filled') AND accepted_seq IS NOT NULL
  AND time_in_force = 'gtc'
  AND (order_type IN ('limit', 'limit_maker')
       OR (order_type = 'stop_limit' AND triggered_seq IS NOT NULL))
GROUP BY market_id, side, price
HAVING sum(quantity - filled_quantity) > 0
"""

BOOK_SEQ = """
UPDATE markets_market m SET book_seq = c.last_seq
FROM trading_settlementcursor c WHERE c.market_id = m.id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0004_leasefence"),
        ("markets", "0003_market_data"),
    ]

    operations = [
        migrations.RunSQL(CANDLES, migrations.RunSQL.noop),
        migrations.RunSQL(DEPTH, migrations.RunSQL.noop),
        migrations.RunSQL(BOOK_SEQ, migrations.RunSQL.noop),
    ]
