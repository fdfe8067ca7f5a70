"""Market-data read benchmark: klines, 24 h tickers and depth over a large synthetic history.

    python -m bench.marketdata                 # build the data once (reused), then measure
    python -m bench.marketdata --calls 500     # more calls per case
    python -m bench.marketdata --rebuild       # drop the bench database and build it again

Uses its own database (BENCH_DATABASE_URL, default exchange_bench_marketdata) and Redis DB
BENCH_REDIS_URL (default db 11: the tickers' 1 s cache lives there). Nothing else is touched.

The data (built once, in one transaction per market; a market that already has its trades,
candles or depth is left as it is, so a second run reuses everything):
- MD0-USDT with 2,000,000 trades spread evenly over the 90 days up to the build (one every
  3.9 s: every minute of the 90 days has its 1m candle, 129,600 of them), and MD1..MD9 with
  100,000 trades each over the same days, for the tickers of ten markets;
- the trades' orders: one buy and one sell order per ten trades (the trade's buy/sell order
  foreign keys; maker and taker are the buy and sell order, by the trade's taker side),
  filled, with their fills, quote and fees summed from their trades;
- the 1m/1h/1d candles, computed by `markets.marketdata.rebuild.rebuild_candles` from those
  trades (the same aggregation settlement's statement maintains);
- 6,000 depth levels per side on MD0 (200 on the others) as DepthLevel rows around the last
  price, with `book_seq` after the last trade.
Everything is inserted set-based (generate_series, integer arithmetic: a price walk of three
triangle waves plus a hashed jitter, in ticks; no floats). The data is synthetic, and that is
fair for what is measured: klines read only the candle rows, tickers only the candles and the
depth rows (plus the market rows), depth only the depth rows. Those rows have the shape and
the counts a real market of that size has; the trades and orders behind them are there so the
candles are rebuilt from real rows by the real code, not to look like real trading. The orders
have no balances or journal entries behind them: nothing here reads the ledger.

Measured through the public selectors (`markets.selectors.candles`, `tickers`, `depth`), one
call at a time on one connection: p50 / p99 per call and calls per second, per case:
klines limit 1000 for 1m, 1h, 1d, 1w and 1M with `end` drawn at random across the 90 days
(and 1m with neither start nor end: a chart's first request);
tickers of all listed markets (and of MD0 alone) with the 1 s cache bypassed (a dummy cache:
every call computes) and with it (most calls served from Redis); depth 5000 of MD0. The
latest klines and the tickers run with the process clock (`exchange.clock.shifted`) at the
end of the data, so a database built days ago still has a full 24 h window. Each call's time
includes building and quantizing its result objects, as a view would get them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

DEFAULT_DB_URL = "postgres://postgres@127.0.0.1:5432/exchange_bench_marketdata"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB_URL)
os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings.base")
os.environ.setdefault("LOG_LEVEL", "ERROR")

ROOT = Path(__file__).resolve().parents[1]
D = Decimal
DAYS = 90
BIG, SMALL, MARKETS = 2_000_000, 100_000, 10
TRADES_PER_ORDER = 10
BIG_LEVELS, SMALL_LEVELS = 6000, 200
TICK, LOT = D("0.01"), D("0.001")
MAKER_FEE, TAKER_FEE = D("0.001"), D("0.002")
INTERVALS = ("1m", "1h", "1d", "1w", "1M")

# One market's trades, in a temporary table the orders and trades are both made from.
# %(base)s is the walk's centre in ticks; %(step_us)s the microseconds between trades.
_SOURCE_SQL = """
CREATE TEMP TABLE md_source ON COMMIT DROP AS
SELECT i, i / %(per_order)s AS j, 4 * i + 3 AS seq,
       (%(base)s + abs((i %% 700001) * 6000 / 700001 - 3000) - 1500
                 + abs((i %% 36007) * 1600 / 36007 - 800) - 400
                 + abs((i %% 2003) * 240 / 2003 - 120) - 60
                 + (i * 7919) %% 21 - 10) * %(tick)s AS price,
       (1 + (i / %(per_order)s * 2654435761) %% 97) * %(lot)s AS quantity,
       CASE WHEN (i * 40503) %% 9 < 5 THEN 'buy' ELSE 'sell' END AS taker_side,
       %(start)s::timestamptz + interval '1 microsecond' * (i * %(step_us)s) AS created_at
FROM generate_series(0::bigint, %(n)s - 1) AS i
"""

_ORDERS_SQL = """
INSERT INTO trading_order (user_id, market_id, client_order_id, side, order_type,
    time_in_force, price, quantity, stp_mode, filled_quantity, filled_quote, fee_paid,
    hold_asset_id, hold_amount, hold_remaining, status, reject_reason, accepted_seq,
    created_at, updated_at, maker_fee_rate, taker_fee_rate)
SELECT CASE s.side WHEN 'buy' THEN %(buyer)s ELSE %(seller)s END, %(market)s,
       %(prefix)s || s.j, s.side, 'limit', 'gtc',
       CASE s.side WHEN 'buy' THEN s.high ELSE s.low END, s.qty, 'none', s.qty, s.quote,
       s.fee, CASE s.side WHEN 'buy' THEN %(quote_asset)s ELSE %(base_asset)s END,
       CASE s.side WHEN 'buy' THEN s.quote + s.fee ELSE s.qty END, 0, 'filled', '',
       s.first_seq - CASE s.side WHEN 'buy' THEN 2 ELSE 1 END, s.first_at, s.last_at,
       %(maker_fee)s, %(taker_fee)s
FROM (
    SELECT g.j, sd.side, max(g.price) AS high, min(g.price) AS low, sum(g.quantity) AS qty,
           sum(g.price * g.quantity) AS quote, min(g.seq) AS first_seq,
           min(g.created_at) AS first_at, max(g.created_at) AS last_at,
           sum(round(g.price * g.quantity
                     * CASE WHEN g.taker_side = sd.side THEN %(taker_fee)s
                            ELSE %(maker_fee)s END, 6)) AS fee
    FROM md_source g CROSS JOIN (VALUES ('buy'), ('sell')) AS sd(side)
    GROUP BY g.j, sd.side
) s
"""

_TRADES_SQL = """
INSERT INTO trading_trade (market_id, seq, maker_order_id, taker_order_id, buy_order_id,
    sell_order_id, price, quantity, quote_quantity, taker_side, maker_fee, taker_fee,
    created_at)
SELECT %(market)s, g.seq,
       CASE g.taker_side WHEN 'buy' THEN s.id ELSE b.id END,
       CASE g.taker_side WHEN 'buy' THEN b.id ELSE s.id END,
       b.id, s.id, g.price, g.quantity, g.price * g.quantity, g.taker_side,
       round(g.price * g.quantity * %(maker_fee)s, 6),
       round(g.price * g.quantity * %(taker_fee)s, 6), g.created_at
FROM md_source g
JOIN trading_order b ON b.user_id = %(buyer)s AND b.client_order_id = %(prefix)s || g.j
JOIN trading_order s ON s.user_id = %(seller)s AND s.client_order_id = %(prefix)s || g.j
ORDER BY g.i
"""

_LAST_SQL = """
UPDATE markets_market m SET last_price = t.price, book_seq = t.seq + 1
FROM (SELECT price, seq FROM md_source ORDER BY i DESC LIMIT 1) t WHERE m.id = %(market)s
"""

_DEPTH_SQL = """
INSERT INTO markets_depthlevel (market_id, side, price, quantity)
SELECT m.id, sd.side,
       m.last_price + CASE sd.side WHEN 'buy' THEN -1 ELSE 1 END * (n + 1) * %(tick)s,
       (1 + (n * 7919 + length(sd.side)) %% 500) * %(lot)s
FROM markets_market m, generate_series(0, %(levels)s - 1) AS n,
     (VALUES ('buy'), ('sell')) AS sd(side)
WHERE m.id = %(market)s
"""


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _database(*, drop: bool) -> None:
    """Create the bench database if it is missing (dropped first with --rebuild)."""
    import dj_database_url
    import psycopg2

    cfg = dj_database_url.parse(os.environ["DATABASE_URL"])
    conn = psycopg2.connect(
        dbname="postgres", user=cfg["USER"] or "postgres", host=cfg["HOST"], port=cfg["PORT"]
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        if drop:
            cur.execute(f'DROP DATABASE IF EXISTS "{cfg["NAME"]}"')
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [cfg["NAME"]])
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{cfg["NAME"]}"')
    conn.close()


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def build() -> None:
    """The markets, trades, orders, candles and depth described above; idempotent."""
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Asset, User
    from markets.marketdata.rebuild import rebuild_candles
    from markets.models import Candle, DepthLevel, Market
    from trading.models import Trade

    call_command("migrate", verbosity=0)
    quote, _ = Asset.objects.get_or_create(code="USDT", defaults={"name": "USDT", "decimals": 6})
    buyer, _ = User.objects.get_or_create(email="md-buyer@bench.invalid")
    seller, _ = User.objects.get_or_create(email="md-seller@bench.invalid")
    end = timezone.now().replace(second=0, microsecond=0)
    for k in range(MARKETS):
        n = BIG if k == 0 else SMALL
        base, _ = Asset.objects.get_or_create(
            code=f"MD{k}", defaults={"name": f"MD{k}", "decimals": 8}
        )
        market, _ = Market.objects.get_or_create(
            symbol=f"MD{k}-USDT",
            defaults={
                "base": base,
                "quote": quote,
                "tick_size": TICK,
                "lot_size": LOT,
                "min_quantity": LOT,
                "max_quantity": D("100000"),
                "maker_fee": MAKER_FEE,
                "taker_fee": TAKER_FEE,
            },
        )
        if not Trade.objects.filter(market=market).exists():
            started = time.perf_counter()
            params: dict[str, Any] = {
                "n": n,
                "per_order": TRADES_PER_ORDER,
                "base": 10000 + 1000 * k,
                "tick": TICK,
                "lot": LOT,
                "start": end - timedelta(days=DAYS),
                "step_us": DAYS * 86_400_000_000 // n,
                "market": market.pk,
                "buyer": buyer.pk,
                "seller": seller.pk,
                "prefix": f"md{k}-",
                "quote_asset": quote.pk,
                "base_asset": base.pk,
                "maker_fee": MAKER_FEE,
                "taker_fee": TAKER_FEE,
            }
            with transaction.atomic(), connection.cursor() as cur:
                for sql in (_SOURCE_SQL, _ORDERS_SQL, _TRADES_SQL, _LAST_SQL):
                    cur.execute(sql, params)
            _say(f"{market.symbol}: {n:,} trades in {time.perf_counter() - started:.0f} s")
        if not Candle.objects.filter(market=market).exists():
            started = time.perf_counter()
            first = Trade.objects.filter(market=market).order_by("seq").values("created_at")[0]
            rows = rebuild_candles(market=market, start=first["created_at"].date())
            _say(f"{market.symbol}: {rows:,} candles in {time.perf_counter() - started:.0f} s")
        if not DepthLevel.objects.filter(market=market).exists():
            levels = BIG_LEVELS if k == 0 else SMALL_LEVELS
            with connection.cursor() as cur:
                cur.execute(
                    _DEPTH_SQL, {"market": market.pk, "levels": levels, "tick": TICK, "lot": LOT}
                )
    with connection.cursor() as cur:
        cur.execute("ANALYZE")


def _measure(name: str, calls: int, call: Callable[[], Any]) -> dict[str, Any]:
    """Time `calls` sequential calls (after 5 warm-up calls); p50/p99 in ms and calls/s."""
    for _ in range(5):
        call()
    times: list[float] = []
    rows = 0
    began = time.perf_counter()
    for _ in range(calls):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
        rows += len(result) if isinstance(result, list) else 1
    elapsed = time.perf_counter() - began
    times.sort()
    return {
        "case": name,
        "calls": calls,
        "p50_ms": round(1000 * statistics.median(times), 2),
        "p99_ms": round(1000 * times[int(0.99 * (calls - 1))], 2),
        "max_ms": round(1000 * times[-1], 2),
        "calls_per_s": round(calls / elapsed, 1),
        "rows_per_call": round(rows / calls, 1),
    }


def measure(calls: int, seed: int) -> list[dict[str, Any]]:
    """Every case of the module docstring, in order; one result dict per case."""
    from django.test import override_settings

    from exchange import clock
    from markets import selectors
    from markets.models import Candle, Market

    rng = random.Random(seed)
    big = Market.objects.select_related("base", "quote").get(symbol="MD0-USDT")
    minutes = Candle.objects.filter(market=big, interval="1m").order_by("open_time")
    first, last = minutes.first(), minutes.last()
    if first is None or last is None:
        raise SystemExit("MD0-USDT has no candles: the build did not finish")
    start, stop = first.open_time, last.open_time + timedelta(minutes=1)
    span_ms = (stop - start) // timedelta(milliseconds=1)

    def klines(interval: str) -> Callable[[], Any]:
        def call() -> Any:
            end = start + timedelta(milliseconds=rng.randrange(span_ms))
            return selectors.candles(big, interval, end=end, limit=1000)

        return call

    results = [
        _measure(f"klines {interval} limit 1000, random end", calls, klines(interval))
        for interval in INTERVALS
    ]
    listed = list(Market.objects.filter(listed=True).order_by("symbol"))
    dummy = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    with clock.shifted(stop):
        results.append(
            _measure(
                "klines 1m limit 1000, latest (no start/end)",
                calls,
                lambda: selectors.candles(big, "1m", limit=1000),
            )
        )
        with override_settings(CACHES=dummy):  # every call computes: nothing is ever cached
            results.append(
                _measure(f"tickers, all {len(listed)} markets, no cache", calls, selectors.tickers)
            )
            results.append(_measure("ticker MD0, no cache", calls, lambda: selectors.ticker(big)))
        results.append(
            _measure(f"tickers, all {len(listed)} markets, 1 s cache", calls, selectors.tickers)
        )
    results.append(
        _measure("depth MD0 limit 5000", calls, lambda: selectors.depth(big, limit=5000))
    )
    return results


def _inventory() -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("""SELECT (SELECT count(*) FROM trading_trade),
                              (SELECT count(*) FROM trading_trade t JOIN markets_market m
                                ON m.id = t.market_id WHERE m.symbol = 'MD0-USDT'),
                              (SELECT min(created_at) FROM trading_trade),
                              (SELECT max(created_at) FROM trading_trade),
                              (SELECT count(*) FROM markets_candle),
                              (SELECT count(*) FROM markets_depthlevel),
                              (SELECT count(*) FROM markets_market WHERE listed)""")
        row = cur.fetchone()
    keys = ("trades", "trades_md0", "first_trade", "last_trade", "candles", "depth", "markets")
    values = [v.isoformat() if isinstance(v, datetime | date) else v for v in row]
    return dict(zip(keys, values, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300, help="timed calls per case")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rebuild", action="store_true", help="drop and build the data")
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args()
    _database(drop=args.rebuild)
    _setup_django()
    build()
    print(json.dumps(_inventory()), flush=True)
    if args.build_only:
        return
    print(f"load: {os.getloadavg()[0]:.2f} (1 min); cores = {os.cpu_count()}", flush=True)
    for result in measure(args.calls, args.seed):
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
