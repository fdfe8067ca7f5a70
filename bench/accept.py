"""Accept-path benchmark: concurrent place_order calls, each a full durable accept.

    python -m bench.accept [--workers 4] [--seconds 20] [--users-per-worker 50] [--keep]

Each worker process calls `place_order` in a loop for funded users of its own, with limit
buys that rest (nothing crosses, so no matching is needed). Every call is the real thing:
fresh market read, order + outbox insert, hold through accounts' `hold_funds` (guarded
update, journal entry, postings), COMMIT, then the XADD to the market's input stream and the
outbox row marked published. Reports orders/s, p50/p99/max latency per call, the workers' CPU
per order and (PostgreSQL on this host) their backends' CPU per order.

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
    # Planner statistics, as autovacuum keeps them on a live database (the test server runs
    # with autovacuum off): without them the ledger trigger's cached plan scans postings.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return market.pk, groups


def worker(
    market_id: int, user_ids: list[int], seconds: float, start_at: float, out: mp.Queue
) -> None:
    """Run `place_loop` and always report: latencies, or the error text."""
    try:
        out.put(place_loop(market_id, user_ids, seconds, start_at))
    except Exception as exc:  # reported by the parent, which must not wait forever
        out.put(f"{type(exc).__name__}: {exc}")


def place_loop(market_id: int, user_ids: list[int], seconds: float, start_at: float) -> list[int]:
    """Place resting buys round-robin over `user_ids` until the deadline; return latencies."""
    import random

    import django

    django.setup()
    from accounts.models import User
    from markets.selectors import get_market
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
    place_order(user=users[0], market=market, spec=specs[0])  # warm the connection
    latencies: list[int] = []
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = time.perf_counter() + seconds
    server0 = _backend_cpu_ns()
    cpu0 = time.process_time()
    i = 0
    while True:
        t0 = time.perf_counter_ns()
        place_order(user=users[i % len(users)], market=market, spec=specs[i % len(specs)])
        t1 = time.perf_counter_ns()
        latencies.append(t1 - t0)
        i += 1
        if t1 / 1e9 >= deadline:
            break
    # Last two elements: this process's own CPU time in ns (Python + drivers), then its
    # PostgreSQL backend's (-1 when the server is not on this machine).
    latencies.append(int((time.process_time() - cpu0) * 1e9))
    server1 = _backend_cpu_ns()
    latencies.append(server1 - server0 if server0 >= 0 and server1 >= 0 else -1)
    return latencies


def _backend_cpu_ns() -> int:
    """CPU time used so far by this connection's PostgreSQL backend (Linux, same host)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return -1
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def run(workers: int, seconds: float, users_per_worker: int, keep: bool) -> None:
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
            ctx.Process(target=worker, args=(market_id, ids, seconds, start_at, out))
            for ids in groups
        ]
        for proc in procs:
            proc.start()
        results = [out.get(timeout=seconds + 300) for _ in procs]
        for proc in procs:
            proc.join()
        errors = [r for r in results if isinstance(r, str)]
        if errors:
            raise SystemExit(f"worker failed: {errors[0]}")
        report(results, workers=workers, seconds=seconds)
        verify(market_id)
    finally:
        cleanup(keep=keep)


def verify(market_id: int) -> None:
    """Every accepted order reached the stream and the ledger is clean."""
    from accounts.checks import run_ledger_checks
    from markets.models import Market
    from trading.models import Order, OutboxEntry
    from trading.redis import get_redis

    market = Market.objects.get(pk=market_id)
    orders = Order.objects.filter(market=market).count()
    unpublished = OutboxEntry.objects.filter(published_at__isnull=True).count()
    stream = get_redis().xlen(market.input_stream)
    clean = run_ledger_checks().ok
    print(
        f"verify: {orders} orders, {stream} stream entries, {unpublished} unpublished, "
        f"ledger {'clean' if clean else 'VIOLATIONS'}"
    )


def cleanup(*, keep: bool) -> None:
    from django.db import connections

    from trading.redis import get_redis

    get_redis().delete(f"market:{SYMBOL}:in")
    connections.close_all()
    if not keep:
        drop_database()


def report(results: list[list[int]], *, workers: int, seconds: float) -> None:
    client_cpu = sum(batch[-2] for batch in results)
    server_cpus = [batch[-1] for batch in results]
    latencies = sorted(ns for batch in results for ns in batch[:-2])
    n = len(latencies)
    rate = n / seconds
    p50 = latencies[n // 2] / 1e6
    p99 = latencies[min(n - 1, int(n * 0.99))] / 1e6
    mean = statistics.fmean(latencies) / 1e6
    cpu = os.cpu_count()
    server = f"{sum(server_cpus) / n / 1e6:.2f} ms/order" if min(server_cpus) >= 0 else "not local"
    print(
        f"accept: {n} orders in {seconds:.0f}s by {workers} workers = {rate:,.0f} orders/s; "
        f"latency p50 {p50:.2f} ms, p99 {p99:.2f} ms, mean {mean:.2f} ms, "
        f"max {latencies[-1] / 1e6:.1f} ms; client CPU {client_cpu / n / 1e6:.2f} ms/order, "
        f"PostgreSQL backend CPU {server} "
        f"({cpu} CPUs, load {os.getloadavg()[0]:.1f}, Python {platform.python_version()})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--users-per-worker", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    run(args.workers, args.seconds, args.users_per_worker, args.keep)


if __name__ == "__main__":
    main()
