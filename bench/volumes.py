"""Volume summaries benchmark: the selector against a raw SUM over 10 M trades, and the rollup.

    python -m bench.volumes                  # build the data once (reused), then measure
    python -m bench.volumes --ranges 300     # more random ranges
    python -m bench.volumes --rebuild        # drop the bench database and build it again

Uses its own database (BENCH_DATABASE_URL, default exchange_bench_volumes) and Redis DB
BENCH_REDIS_URL (default db 10; nothing is cached there, settings only need one).

The data (built once; a market that already has trades is left as it is):
- three markets, VOL0-USDT with 5,000,000 trades, VOL1-USDT with 3,000,000 and VOL2-USDT
  with 2,000,000, each spread evenly over the 730 local days (REPORTING_TIME_ZONE) that end
  at the local midnight two days before the build: 10 M trades over two years;
- their orders, one buy and one sell per ten trades, filled, spread over twelve users (the
  seller is never the buyer), so the per-user day, month and year rows exist;
- the summaries, by `reporting.rollup.rollup` itself: the build's catch-up of the 10 M trades
  is the first figure (trades/s), the cursor starting at nothing.
Trades and orders are inserted set-based (generate_series, integer arithmetic in ticks and
lots, no floats), as bench.marketdata does and with its price walk. They are synthetic, and
that is fair here: the rollup and the selector read only the trades' market, seq, time,
quantities, fees and the orders' users, and those have the counts and spread of a real
history of that size.

Measured, in one run:
1. `reporting.selectors.volume` for random ranges of local days, each the same range timed
   with a raw SUM over trading_trade (one statement on the (market, created_at) index; its
   bounds are the local midnights computed here with zoneinfo, independently of
   reporting.calendars) and the two answers asserted equal: a third of the ranges short
   (1-45 days), a third medium (46-400), a third long (401-730), the calendar alternating
   Gregorian / Jalali, so they cross day, month and year boundaries of both calendars.
   Printed: the median of the per-range ratio raw / selector (overall and per length) and
   p50 / p99 of each. Before the ranges, one raw SUM over each whole market warms the OS
   cache for the raw side, and five selector calls warm the selector.
2. Catch-up: a fresh local day of 1,000,000 trades on VOL0-USDT (the day after the data,
   seqs after the cursor) is inserted and committed, ANALYZEd, then `rollup` is timed until
   the cursor reaches its last trade: trades/s. Afterwards the day's trades and orders are
   deleted, its summaries rebuilt by `reporting.rollup.rebuild` and the cursor set back, so
   every run measures the same thing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

DEFAULT_DB_URL = "postgres://postgres@127.0.0.1:5432/exchange_bench_volumes"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/10"
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB_URL)
os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings.base")
os.environ.setdefault("LOG_LEVEL", "ERROR")

ROOT = Path(__file__).resolve().parents[1]
D = Decimal
DAYS = 730
MARKETS = (("VOL0", 5_000_000), ("VOL1", 3_000_000), ("VOL2", 2_000_000))
FRESH = 1_000_000
USERS = 12
TICK, LOT = D("0.01"), D("0.001")
MAKER_FEE, TAKER_FEE = D("0.001"), D("0.002")
_CONSTANTS: dict[str, Any] = {"per_order": 10, "tick": TICK, "lot": LOT, "maker_fee": MAKER_FEE}
_CONSTANTS["taker_fee"] = TAKER_FEE
MARKET: dict[str, Any] = {"tick_size": TICK, "lot_size": LOT, "max_quantity": D(100000)}
MARKET.update(maker_fee=MAKER_FEE, taker_fee=TAKER_FEE)
FIELDS = ("base_volume", "quote_volume", "trade_count", "maker_fees", "taker_fees")

# One market's trades, in a temporary table the orders and trades are both made from.
_SOURCE_SQL = """
CREATE TEMP TABLE vol_source ON COMMIT DROP AS
SELECT i, i / %(per_order)s AS j, %(seq0)s + 4 * i + 3 AS seq,
       (%(base)s + abs((i %% 700001) * 6000 / 700001 - 3000) - 1500
                 + abs((i %% 36007) * 1600 / 36007 - 800) - 400
                 + abs((i %% 2003) * 240 / 2003 - 120) - 60
                 + (i * 7919) %% 21 - 10) * %(tick)s AS price,
       (1 + (i / %(per_order)s * 2654435761) %% 97) * %(lot)s AS quantity,
       CASE WHEN (i * 40503) %% 9 < 5 THEN 'buy' ELSE 'sell' END AS taker_side,
       %(start)s::timestamptz + interval '1 microsecond' * (i * %(step_us)s) AS created_at
FROM generate_series(0::bigint, %(n)s - 1) AS i
"""

# Order j's buyer is users[j mod 12], its seller users[(j + 1 + j mod 11) mod 12]: never the same.

_ORDERS_SQL = """
INSERT INTO trading_order (user_id, market_id, client_order_id, side, order_type,
    time_in_force, price, quantity, stp_mode, filled_quantity, filled_quote, fee_paid,
    hold_asset_id, hold_amount, hold_remaining, status, reject_reason, accepted_seq,
    created_at, updated_at, maker_fee_rate, taker_fee_rate)
SELECT CASE s.side WHEN 'buy' THEN (%(users)s::bigint[])[1 + s.j %% 12]
                   ELSE (%(users)s::bigint[])[1 + (s.j + 1 + s.j %% 11) %% 12] END,
       %(market)s, %(prefix)s || s.j, s.side, 'limit', 'gtc',
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
    FROM vol_source g CROSS JOIN (VALUES ('buy'), ('sell')) AS sd(side)
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
FROM vol_source g
JOIN trading_order b ON b.user_id = (%(users)s::bigint[])[1 + g.j %% 12]
                     AND b.client_order_id = %(prefix)s || g.j
JOIN trading_order s ON s.user_id = (%(users)s::bigint[])[1 + (g.j + 1 + g.j %% 11) %% 12]
                     AND s.client_order_id = %(prefix)s || g.j
ORDER BY g.i
"""

# The raw answer: one statement over the trades of [lo, hi), on the (market, created_at) index.
_RAW_SQL = """
SELECT coalesce(sum(quantity), 0), coalesce(sum(quote_quantity), 0), count(*),
       coalesce(sum(maker_fee), 0), coalesce(sum(taker_fee), 0)
FROM trading_trade WHERE market_id = %s AND created_at >= %s AND created_at < %s
"""


_DROP_SQL = """
DELETE FROM trading_trade WHERE market_id = %(market)s AND seq > %(seq)s;
DELETE FROM trading_order WHERE market_id = %(market)s AND client_order_id LIKE %(prefix)s || '%%';
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


def _zone() -> ZoneInfo:
    from django.conf import settings

    return ZoneInfo(settings.REPORTING_TIME_ZONE)


def _midnight(day: date) -> datetime:
    """The local midnight that opens `day` in REPORTING_TIME_ZONE (an aware datetime)."""
    return datetime.combine(day, dtime(), tzinfo=_zone())


def _insert(market: Any, users: list[int], spec: dict[str, Any]) -> None:
    """spec["n"] trades (and orders) evenly over spec["days"] local days from spec["start"].

    One transaction: spec also carries "seq0" (the seqs start after it), "prefix" (of the
    orders' client ids) and "base" (the price walk's centre in ticks).
    """
    from django.db import connection, transaction

    stop = _midnight(spec["start"].date() + timedelta(days=spec["days"]))
    params = {**spec, **_CONSTANTS, "market": market.pk, "users": users}
    params["step_us"] = (stop - spec["start"]) // timedelta(microseconds=1) // spec["n"]
    params.update(quote_asset=market.quote_id, base_asset=market.base_id)
    with transaction.atomic(), connection.cursor() as cur:
        for sql in (_SOURCE_SQL, _ORDERS_SQL, _TRADES_SQL):
            cur.execute(sql, params)


def _max_seq(market: Any) -> int:
    from django.db.models import Max

    from trading.models import Trade

    return Trade.objects.filter(market=market).aggregate(m=Max("seq"))["m"] or 0


def _cursor(market: Any) -> int:
    from reporting.models import VolumeCursor

    row = VolumeCursor.objects.filter(market=market).values_list("last_trade_seq", flat=True)
    return row[0] if row else 0


def _catch_up(markets: list[Any]) -> tuple[int, float]:
    """Run the rollup until every market's cursor is at its last trade: (calls, seconds)."""
    from reporting.rollup import rollup

    targets = {m.pk: _max_seq(m) for m in markets}
    calls, began = 0, time.perf_counter()
    while any(_cursor(m) < targets[m.pk] for m in markets):
        for market in markets:
            if _cursor(market) < targets[market.pk]:
                rollup(market=market)
                calls += 1
        if calls > 100_000:
            raise SystemExit("the rollup does not advance its cursor")
    return calls, time.perf_counter() - began


def build() -> list[Any]:
    """The markets, users, trades and orders described above, then their summaries."""
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import Asset, User
    from markets.models import Market
    from trading.models import Trade

    call_command("migrate", verbosity=0)
    quote, _ = Asset.objects.get_or_create(code="USDT", defaults={"name": "USDT", "decimals": 6})
    users = [User.objects.get_or_create(email=f"vol-{k}@bench.invalid")[0].pk for k in range(USERS)]
    end = _midnight(datetime.now(_zone()).date() - timedelta(days=2))
    start = _midnight(end.date() - timedelta(days=DAYS))
    markets, inserted = [], 0
    for k, (code, n) in enumerate(MARKETS):
        base, _ = Asset.objects.get_or_create(code=code, defaults={"name": code, "decimals": 8})
        defaults = {"base": base, "quote": quote, "min_quantity": LOT, **MARKET}
        market, _ = Market.objects.get_or_create(symbol=f"{code}-USDT", defaults=defaults)
        markets.append(market)
        if not Trade.objects.filter(market=market).exists():
            began = time.perf_counter()
            spec = {"n": n, "start": start, "days": DAYS, "seq0": 0, "prefix": f"v{k}-"}
            _insert(market, users, {**spec, "base": 10000 + 1000 * k})
            inserted += n
            _say(f"{market.symbol}: {n:,} trades in {time.perf_counter() - began:.0f} s")
    if inserted:
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE trading_trade")
            cur.execute("VACUUM ANALYZE trading_order")
    return markets


def roll_up_build(markets: list[Any]) -> None:
    """The summaries of everything built, by the rollup from its cursor (a figure)."""
    from django.db import connection

    from trading.models import Trade

    pending = sum(max(0, _max_seq(m) - _cursor(m)) for m in markets)
    if pending:
        total = Trade.objects.filter(market__in=markets).count()
        calls, seconds = _catch_up(markets)
        out: dict[str, Any] = {
            "case": "build rollup (cursor from nothing)",
            "trades": total,
            "calls": calls,
        }
        out.update(seconds=round(seconds, 1), trades_per_s=round(total / seconds))
        print(json.dumps(out), flush=True)
        with connection.cursor() as cur:
            cur.execute("ANALYZE")


def _raw(market: Any, first: date, last: date) -> tuple[Any, ...]:
    """The raw SUM over the trades of the local days first..last inclusive."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(_RAW_SQL, [market.pk, _midnight(first), _midnight(last + timedelta(days=1))])
        row = cur.fetchone()
    return tuple(row)


def _p50_p99_max(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[int(0.99 * (len(ordered) - 1))], ordered[-1]


def _ranges(count: int, rng: random.Random, first: date, last: date) -> list[tuple[date, date]]:
    """Thirds of short (1-45 days), medium (46-400) and long (401-730) ranges of local days."""
    span = (last - first).days + 1
    out = []
    for i in range(count):
        low, high = ((1, 45), (46, 400), (401, span))[i % 3]
        length = rng.randint(low, min(high, span))
        start = first + timedelta(days=rng.randrange(span - length + 1))
        out.append((start, start + timedelta(days=length - 1)))
    return out


def measure_ranges(markets: list[Any], count: int, seed: int) -> dict[str, Any]:
    """Every range timed with the selector and with the raw SUM; the answers must agree."""
    from reporting.selectors import volume

    rng = random.Random(seed)
    zone = _zone()
    from trading.models import Trade

    times = Trade.objects.filter(market__in=markets).order_by("created_at")
    first = times.values_list("created_at", flat=True).first()
    last = times.reverse().values_list("created_at", flat=True).first()
    if first is None or last is None:
        raise SystemExit("no trades: the build did not finish")
    first_day, last_day = first.astimezone(zone).date(), last.astimezone(zone).date()
    for market in markets:  # warm the OS cache for the raw side, the selector's code paths
        _raw(market, first_day, last_day)
    for market in markets:
        for calendar in ("gregorian", "jalali"):
            volume(market=market, start=first_day, end=last_day, calendar=calendar)
    rows: list[dict[str, Any]] = []
    for i, (start, end) in enumerate(_ranges(count, rng, first_day, last_day)):
        market = markets[rng.randrange(len(markets))]
        calendar = ("gregorian", "jalali")[i % 2]
        began = time.perf_counter()
        totals = volume(market=market, start=start, end=end, calendar=calendar)
        selector_s = time.perf_counter() - began
        began = time.perf_counter()
        raw = _raw(market, start, end)
        raw_s = time.perf_counter() - began
        got = tuple(getattr(totals, name) for name in FIELDS)
        if got != raw:
            raise SystemExit(f"{market.symbol} {start}..{end} {calendar}: {got} != raw {raw}")
        days = (end - start).days + 1
        rows.append({"days": days, "selector": selector_s, "raw": raw_s})
    out: dict[str, Any] = {"case": "volume selector vs raw SUM", "ranges": len(rows)}
    out["all_equal"] = True  # every answer was checked above
    for label, low, high in (
        ("all", 1, 9999),
        ("short", 1, 45),
        ("medium", 46, 400),
        ("long", 401, 9999),
    ):
        part = [r for r in rows if low <= r["days"] <= high]
        sel = [1000 * r["selector"] for r in part]
        raw_ms = [1000 * r["raw"] for r in part]
        ratios = [r["raw"] / r["selector"] for r in part]
        out[label] = {
            "n": len(part),
            "median_ratio": round(statistics.median(ratios), 1),
            "min_ratio": round(min(ratios), 1),
            "selector_p50_p99_max_ms": [round(x, 2) for x in _p50_p99_max(sel)],
            "raw_p50_p99_max_ms": [round(x, 1) for x in _p50_p99_max(raw_ms)],
        }
    return out


def catch_up_day(market: Any, users: list[int]) -> dict[str, Any]:
    """A fresh local day of FRESH trades after the cursor, rolled up under the clock."""
    from django.db import connection

    from reporting.models import VolumeCursor
    from reporting.rollup import rebuild
    from trading.models import Trade

    zone = _zone()
    cursor = _cursor(market)
    last = Trade.objects.filter(market=market).order_by("-seq").values("created_at").first()
    if last is None or cursor != _max_seq(market):
        raise SystemExit(f"{market.symbol} is not rolled up to its last trade")
    day = last["created_at"].astimezone(zone).date() + timedelta(days=1)
    prefix = f"fresh-{day.isoformat()}-"
    began = time.perf_counter()
    spec = {"n": FRESH, "start": _midnight(day), "days": 1, "seq0": cursor, "prefix": prefix}
    _insert(market, users, {**spec, "base": 10000})
    insert_s = time.perf_counter() - began
    try:
        with connection.cursor() as cur:
            cur.execute("ANALYZE trading_trade")
        calls, seconds = _catch_up([market])
        out: dict[str, Any] = {
            "case": f"catch-up of local day {day}: {FRESH:,} trades of {market.symbol}"
        }
        out.update(insert_s=round(insert_s, 1), calls=calls, seconds=round(seconds, 2))
        return {**out, "trades_per_s": round(FRESH / seconds)}
    finally:  # put the database back as the build left it
        with connection.cursor() as cur:
            cur.execute(_DROP_SQL, {"market": market.pk, "seq": cursor, "prefix": prefix})
            cur.execute("VACUUM ANALYZE trading_trade")  # no dead rows left for the next run
            cur.execute("VACUUM ANALYZE trading_order")
        rebuild(day, market=market)
        VolumeCursor.objects.filter(market=market).update(last_trade_seq=cursor)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ranges", type=int, default=100, help="random ranges to time")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rebuild", action="store_true", help="drop and build the data")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--skip-catch-up", action="store_true")
    args = parser.parse_args()
    _database(drop=args.rebuild)
    _setup_django()
    markets = build()
    if args.build_only:
        return
    roll_up_build(markets)
    from accounts.models import User

    print(f"load: {os.getloadavg()[0]:.2f} (1 min); cores = {os.cpu_count()}", flush=True)
    print(json.dumps(measure_ranges(markets, args.ranges, args.seed)), flush=True)
    if not args.skip_catch_up:
        users = list(
            User.objects.filter(email__startswith="vol-", email__endswith="@bench.invalid")
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        print(json.dumps(catch_up_day(markets[0], users)), flush=True)


if __name__ == "__main__":
    main()
