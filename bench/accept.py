"""Accept-path benchmark: concurrent place_order calls, each a full durable accept.

    python -m bench.accept [--workers 4] [--threads 8] [--seconds 20] [--users-per-worker 50]
                           [--keep]

Each worker process runs `--threads` threads, each calling `place_order` in a loop for
funded users of its own (as the threads of a web/API worker process would), with limit buys
that rest (nothing crosses, so no matching is needed). Every call is the real thing: fresh
market read and validation in the calling thread, then the durable accept (with
ACCEPT_BATCHING, the default, the process's accept batcher commits the calls queued at that
moment together: guarded hold, orders, journal entries, postings, outbox rows), then the XADD
to the market's input stream and the outbox rows marked published. Reports orders/s,
p50/p99/max latency per call, orders per batch, the workers' CPU per order and (PostgreSQL on
this host) the CPU of all the bench database's backends per order.

It creates its own database (BENCH_DATABASE_URL, default exchange_bench_accept), migrates
it, ANALYZEs it after seeding, and drops it at the end (unless --keep); it uses Redis
database BENCH_REDIS_URL (default db 10) and deletes only the stream it wrote.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from urllib.parse import urlparse

DEFAULT_DB_URL = "postgres://postgres@127.0.0.1:5432/exchange_bench_accept"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/10"
SYMBOL = "BENCH-USDT"
FUNDS_PER_USER = Decimal("100000000")  # never the limiting factor
HISTORY_ENTRIES = 50_000  # journal entries written before the run (see seed)


def _configure() -> None:
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB_URL)
    os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings.base")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdef0123456789abcdef")
    os.environ.setdefault("API_KEY_ENCRYPTION_KEY", "ZGV2LW9ubHkta2V5LWNoYW5nZS1tZS0wMTIzNDU2Nzg=")
    os.environ.setdefault("LOG_LEVEL", "WARNING")


def _db_name() -> str:
    return urlparse(os.environ["DATABASE_URL"]).path.lstrip("/")


def _admin_connection():  # type: ignore[no-untyped-def]
    import psycopg2

    url = urlparse(os.environ["DATABASE_URL"])
    conn = psycopg2.connect(
        host=url.hostname,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname="postgres",
    )
    conn.autocommit = True
    return conn


def create_database() -> None:
    """Create the bench database if missing and migrate it (in a child: fresh settings)."""
    name = _db_name()
    conn = _admin_connection()
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], check=True, env=os.environ
    )


def drop_database() -> None:
    conn = _admin_connection()
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{_db_name()}" WITH (FORCE)')
    conn.close()


def seed(workers: int, users_per_worker: int) -> tuple[int, list[list[int]]]:
    """One market and funded users; returns (market id, user ids per worker)."""
    import django

    django.setup()
    from django.db import connection

    from accounts.models import Asset, User
    from accounts.services.deposits import credit_deposit
    from markets.models import Market

    btc, _ = Asset.objects.get_or_create(code="BTC", defaults={"name": "Bitcoin", "decimals": 8})
    usdt, _ = Asset.objects.get_or_create(code="USDT", defaults={"name": "Tether", "decimals": 6})
    market, _ = Market.objects.get_or_create(
        symbol=SYMBOL,
        defaults={
            "base": btc,
            "quote": usdt,
            "tick_size": Decimal("0.01"),
            "lot_size": Decimal("0.00001"),
            "min_quantity": Decimal("0.00001"),
            "max_quantity": Decimal("100"),
            "min_notional": Decimal("1"),
            "maker_fee": Decimal("0.001"),
            "taker_fee": Decimal("0.002"),
            "price_band_pct": Decimal("10"),
            "last_price": Decimal("50000"),
        },
    )
    stamp = int(time.time())
    groups: list[list[int]] = []
    for w in range(workers):
        ids = []
        for u in range(users_per_worker):
            user = User.objects.create_user(email=f"bench-{stamp}-{w}-{u}@example.com")
            credit_deposit(
                user=user, asset=usdt, amount=FUNDS_PER_USER, external_ref=f"b{stamp}-{w}-{u}"
            )
            ids.append(user.pk)
        groups.append(ids)
    # A ledger and outbox history, so neither is a one-page table: PostgreSQL's cached plans
    # for the foreign-key checks and ledger triggers (kept per connection for its lifetime)
    # seq-scan a table that was tiny when planned, and a bench starting from an empty journal
    # then pays a scan of the whole, growing journal per posting (measured: most of the
    # backend CPU per order).
    # Each history entry moves one unit into and out of the same bucket (net zero).
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH e AS (
                INSERT INTO accounts_journalentry (kind, ref, memo, created_at)
                SELECT 'transfer', 'bench-history', '', now() FROM generate_series(1, %s)
                RETURNING id
            )
            INSERT INTO accounts_posting (entry_id, balance_id, asset_id, bucket, amount)
            SELECT e.id, b.id, b.asset_id, 'available', s.amount
            FROM e, (VALUES (0.000001), (-0.000001)) AS s(amount),
                 (SELECT id, asset_id FROM accounts_balance
                  WHERE user_id = %s AND asset_id = %s) AS b
            """,
            [HISTORY_ENTRIES, groups[0][0], usdt.pk],
        )
        # Likewise published outbox rows: the mark-published UPDATE's plan is cached too.
        cursor.execute(
            """
            INSERT INTO trading_outboxentry (market_id, payload, created_at, published_at,
                                             stream_id)
            SELECT %s, '{"type": "bench-history"}'::jsonb, now(), now(), '0-' || g
            FROM generate_series(1, %s) AS g
            """,
            [market.pk, HISTORY_ENTRIES],
        )
    # Planner statistics, as autovacuum keeps them on a live database (the test server runs
    # with autovacuum off): without them the ledger trigger's cached plan scans postings.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return market.pk, groups


def worker(
    market_id: int,
    user_ids: list[int],
    threads: int,
    seconds: float,
    start_at: float,
    out: mp.Queue,
) -> None:
    """Run `place_loop` and always report: its result, or the error text."""
    try:
        out.put(place_loop(market_id, user_ids, threads, seconds, start_at))
    except Exception as exc:  # reported by the parent, which must not wait forever
        out.put(f"{type(exc).__name__}: {exc}")


def place_loop(
    market_id: int, user_ids: list[int], threads: int, seconds: float, start_at: float
) -> dict[str, object]:
    """Place resting buys from `threads` threads until the deadline.

    Each thread loops round-robin over its share of `user_ids`, on its own connection, as
    the threads of a web or API worker process would; with ACCEPT_BATCHING (the default)
    the process's accept batcher commits whatever they have queued together. Returns the
    latencies (ns), this process's CPU time (all its threads) and the batcher's counters.
    """
    import random
    import threading

    import django

    django.setup()
    from django.db import connection

    from accounts.models import User
    from markets.selectors import get_market
    from trading.services.accept_batch import get_batcher
    from trading.services.orders import OrderSpec, place_order

    market = get_market(market_id=market_id)
    users = list(User.objects.filter(pk__in=user_ids))
    rng = random.Random(user_ids[0])
    # Distinct price levels below the last price: they rest, nothing crosses.
    specs = [
        OrderSpec(
            side="buy",
            price=Decimal(49_000) - Decimal(rng.randrange(0, 100_000)) / 100,
            quantity=Decimal(rng.randrange(3, 200)) / 100_000,
        )
        for _ in range(1_000)
    ]
    place_order(user=users[0], market=market, spec=specs[0])  # warm the batcher
    connection.close()
    latencies: list[list[int]] = [[] for _ in range(threads)]
    errors: list[str] = []
    ready = threading.Barrier(threads + 1)

    def loop(t: int) -> None:
        mine = users[t::threads] or users
        own = latencies[t]
        try:
            place_order(user=mine[0], market=market, spec=specs[t])  # warm this connection
            ready.wait()
            while time.time() < start_at:
                time.sleep(0.001)
            deadline = start_at + seconds
            i = t
            while True:
                t0 = time.perf_counter_ns()
                place_order(user=mine[i % len(mine)], market=market, spec=specs[i % len(specs)])
                own.append(time.perf_counter_ns() - t0)
                i += 1
                if time.time() >= deadline:
                    break
        except threading.BrokenBarrierError:
            pass  # another thread failed; its error is the one reported
        except Exception as exc:  # reported to the parent
            errors.append(f"{type(exc).__name__}: {exc}")
            ready.abort()
        finally:
            connection.close()

    pool = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        for thread in pool:
            thread.join()
        raise RuntimeError(errors[0] if errors else "a thread failed to start") from None
    stats0 = get_batcher().stats
    batches0, orders0 = stats0.batches, stats0.orders
    cpu0 = time.process_time()
    for thread in pool:
        thread.join()
    cpu = time.process_time() - cpu0
    if errors:
        raise RuntimeError(errors[0])
    stats = get_batcher().stats
    return {
        "latencies": [ns for own in latencies for ns in own],
        "cpu_ns": int(cpu * 1e9),
        "batches": stats.batches - batches0,
        "batched": stats.orders - orders0,
    }


def _backends_cpu_ns() -> dict[int, int]:
    """CPU time used so far by each PostgreSQL backend of the bench database (same host)."""
    conn = _admin_connection()
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [_db_name()],
        )
        pids = [pid for (pid,) in cursor.fetchall()]
    conn.close()
    used = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        used[pid] = ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    return used


def run(workers: int, threads: int, seconds: float, users_per_worker: int, keep: bool) -> None:
    _configure()
    create_database()
    try:
        market_id, groups = seed(workers, users_per_worker)
        from django.db import connections

        connections.close_all()
        ctx = mp.get_context("spawn")
        out: mp.Queue = ctx.Queue()
        start_at = time.time() + 3 + workers * 0.5  # every child set up before the start
        procs = [
            ctx.Process(target=worker, args=(market_id, ids, threads, seconds, start_at, out))
            for ids in groups
        ]
        for proc in procs:
            proc.start()
        while time.time() < start_at:
            time.sleep(0.001)
        server0 = _backends_cpu_ns()
        time.sleep(max(0.0, start_at + seconds - 0.2 - time.time()))
        server1 = _backends_cpu_ns()  # just before the end: every connection still open
        server = sum(v - server0[pid] for pid, v in server1.items() if pid in server0)
        results = [out.get(timeout=seconds + 300) for _ in procs]
        for proc in procs:
            proc.join()
        errors = [r for r in results if isinstance(r, str)]
        if errors:
            raise SystemExit(f"worker failed: {errors[0]}")
        report(results, workers=workers, threads=threads, seconds=seconds - 0.2, server_ns=server)
        verify(market_id)
    finally:
        cleanup(keep=keep)


def verify(market_id: int) -> None:
    """Every accepted order reached the stream and the ledger is clean."""
    from accounts.checks import run_ledger_checks
    from markets.models import Market
    from trading.models import Order, OutboxEntry
    from trading.redis import get_redis
    from trading.streams import input_stream

    market = Market.objects.get(pk=market_id)
    orders = Order.objects.filter(market=market).count()
    unpublished = OutboxEntry.objects.filter(published_at__isnull=True).count()
    stream = get_redis().xlen(input_stream(market.symbol))
    clean = run_ledger_checks().ok
    print(
        f"verify: {orders} orders, {stream} stream entries, {unpublished} unpublished, "
        f"ledger {'clean' if clean else 'VIOLATIONS'}"
    )


def cleanup(*, keep: bool) -> None:
    from django.db import connections

    from trading.redis import get_redis
    from trading.streams import input_stream

    get_redis().delete(input_stream(SYMBOL))
    connections.close_all()
    if not keep:
        drop_database()


def report(
    results: list[dict], *, workers: int, threads: int, seconds: float, server_ns: int
) -> None:
    client_cpu = sum(r["cpu_ns"] for r in results)
    latencies = sorted(ns for r in results for ns in r["latencies"])
    batches = sum(r["batches"] for r in results)
    batched = sum(r["batched"] for r in results)
    n = len(latencies)
    rate = n / (seconds + 0.2)
    p50 = latencies[n // 2] / 1e6
    p99 = latencies[min(n - 1, int(n * 0.99))] / 1e6
    mean = statistics.fmean(latencies) / 1e6
    cpu = os.cpu_count()
    batching = f"{batched / batches:.1f} orders/batch" if batches else "batching off"
    print(
        f"accept: {n} orders in {seconds + 0.2:.0f}s by {workers} workers x {threads} threads = "
        f"{rate:,.0f} orders/s; latency p50 {p50:.2f} ms, p99 {p99:.2f} ms, mean {mean:.2f} ms, "
        f"max {latencies[-1] / 1e6:.1f} ms; {batching}; client CPU "
        f"{client_cpu / n / 1e6:.2f} ms/order, PostgreSQL backends' CPU "
        f"{server_ns / n / 1e6:.2f} ms/order (over the run minus its last 0.2 s) "
        f"({cpu} CPUs, load {os.getloadavg()[0]:.1f}, Python {platform.python_version()})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--threads", type=int, default=8, help="threads calling place_order per worker"
    )
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--users-per-worker", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    run(args.workers, args.threads, args.seconds, args.users_per_worker, args.keep)


if __name__ == "__main__":
    main()
