"""Pipeline benchmark: stream in -> match -> settle in PostgreSQL (durable commits).

    python -m bench.pipeline     # default series: 1 market at 3 rates, then 2 and 4 markets
    python -m bench.pipeline --markets 2 --rate 2000 --orders 20000

Uses its own database (exchange_bench_pipeline) and Redis DB 9. Orders (limit GTC/IOC around
a mid price, two dozen traders) are created in PostgreSQL up front with their holds (one
balanced journal entry), so the run measures the pipeline, not order entry. Their commands
are injected into each market's input stream at a paced rate; each market's matching loop
and settlement consumer run in their own processes. Latency per order: injection (wall
clock) -> commit of the settlement batch that contains its Accepted event. PostgreSQL runs
with synchronous_commit on (checked and printed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/exchange_bench_pipeline")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings.base")
os.environ.setdefault("LOG_LEVEL", "ERROR")

ROOT = Path(__file__).resolve().parents[1]
D = Decimal
TICK, LOT, MID = D("0.01"), D("0.001"), D("100")
TRADERS = 24
INJECT_CHUNK = 50  # commands per XADD pipeline: pacing granularity


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _ensure_database() -> None:
    import dj_database_url
    import psycopg2

    cfg = dj_database_url.parse(os.environ["DATABASE_URL"])
    conn = psycopg2.connect(
        dbname="postgres", user=cfg["USER"] or "postgres", host=cfg["HOST"], port=cfg["PORT"]
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [cfg["NAME"]])
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{cfg["NAME"]}"')
    conn.close()


def _reset() -> None:
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    with connection.cursor() as cur:
        cur.execute("""SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables
                       WHERE schemaname = 'public' AND tablename <> 'django_migrations'""")
        tables = cur.fetchone()[0]
        cur.execute("SET session_replication_role = replica")  # skip append-only triggers
        cur.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        cur.execute("SET session_replication_role = DEFAULT")
    from trading.redis import get_redis

    get_redis().flushdb()


def _prepare(markets: int, orders: int, seed: int) -> dict[str, list[dict]]:
    """Markets, funded traders and `orders` orders per market with their holds."""
    from django.db import transaction

    from accounts.models import Asset, Bucket, EntryKind, User
    from accounts.services.deposits import credit_deposit
    from accounts.services.ledger import Move, apply_moves
    from markets.models import Market
    from trading.models import Order

    rng = random.Random(seed)
    quote = Asset.objects.create(code="USDT", name="USDT", decimals=6)
    users = [User.objects.create_user(email=f"b{i}@bench.invalid") for i in range(TRADERS)]
    commands: dict[str, list[dict]] = {}
    for k in range(markets):
        base = Asset.objects.create(code=f"B{k}", name=f"B{k}", decimals=8)
        market = Market.objects.create(
            symbol=f"B{k}-USDT",
            base=base,
            quote=quote,
            tick_size=TICK,
            lot_size=LOT,
            min_quantity=LOT,
            max_quantity=D("100000"),
            min_notional=D("0"),
            maker_fee=D("0.001"),
            taker_fee=D("0.002"),
            last_price=MID,
        )
        for user in users:
            credit_deposit(
                user=user, asset=base, amount=D("1000000"), external_ref=f"{k}-{user.pk}"
            )
            credit_deposit(
                user=user, asset=quote, amount=D("1000000000"), external_ref=f"q{k}-{user.pk}"
            )
        rows, holds = [], {}
        for n in range(orders):
            user = rng.choice(users)
            side = rng.choice(("buy", "sell"))
            lots = rng.randint(1, 50)
            ticks = int(MID / TICK) + rng.randint(-15, 15)
            tif = "ioc" if rng.random() < 0.15 else "gtc"
            price, quantity = TICK * ticks, LOT * lots
            hold = (
                quantity
                if side == "sell"
                else (price * quantity * D("1.002")).quantize(
                    D("0.000001"), rounding="ROUND_CEILING"
                )
            )
            asset = quote if side == "buy" else base
            holds[(user.pk, asset.pk)] = holds.get((user.pk, asset.pk), D(0)) + hold
            rows.append(
                Order(
                    user=user,
                    market=market,
                    client_order_id=f"{k}-{n}",
                    side=side,
                    order_type="limit",
                    time_in_force=tif,
                    price=price,
                    quantity=quantity,
                    hold_asset=asset,
                    hold_amount=hold,
                    hold_remaining=hold,
                    maker_fee_rate=market.maker_fee,
                    taker_fee_rate=market.taker_fee,
                )
            )
        with transaction.atomic():
            Order.objects.bulk_create(rows, batch_size=5000)
            moves = [
                m
                for (uid, aid), amount in holds.items()
                for m in (
                    Move(user_id=uid, asset_id=aid, bucket=Bucket.AVAILABLE, delta=-amount),
                    Move(user_id=uid, asset_id=aid, bucket=Bucket.LOCKED, delta=amount),
                )
            ]
            apply_moves(kind=EntryKind.ORDER_HOLD, ref=f"bench:{k}", moves=moves)
        commands[market.symbol] = [
            {
                "type": "place_order",
                "order_id": o.pk,
                "account_id": o.user_id,
                "side": o.side,
                "order_type": "limit",
                "tif": o.time_in_force,
                "price_ticks": int(o.price / TICK),
                "qty_lots": int(o.quantity / LOT),
                "quote_budget": 0,
                "stop_ticks": 0,
                "stp_mode": "none",
                "stp_group": 0,
                "cid": o.pk,
            }
            for o in Order.objects.filter(market=market).order_by("pk")
        ]
    return commands


def _spawn(role: str, symbol: str, seconds: float, log: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "bench.pipeline", "--worker", role, symbol, str(seconds), log]
    if os.environ.get("BENCH_PROFILE") == role:  # python -m cProfile of that worker
        out = Path(tempfile.gettempdir()) / f"bench-{role}.prof"
        argv[1:3] = ["-m", "cProfile", "-o", str(out), "-m", "bench.pipeline"]
    return subprocess.Popen(argv, cwd=ROOT, env=os.environ.copy())


def _worker(role: str, symbol: str, seconds: float, log: str) -> None:
    _setup_django()
    import trading.settlement_loop as loop_module
    from trading.loops import install_signal_handlers
    from trading.matching import run_matching_loop

    install_signal_handlers()
    if role == "matching":
        run_matching_loop(symbol, max_seconds=seconds)
        return
    marks: list[tuple[float, int, float, int]] = []  # (committed at, last seq, seconds, events)
    settle = loop_module.settle_batch

    def timed(**kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        result = settle(**kwargs)
        marks.append((time.time(), result.last_seq, time.perf_counter() - started, result.applied))
        return result

    loop_module.settle_batch = timed
    loop_module.run_settlement_loop(symbol, max_seconds=seconds)
    Path(log).write_text(json.dumps(marks))


def _inject(commands: dict[str, list[dict]], rate: float) -> dict[int, float]:
    """XADD every market's commands, each market at `rate` per second; return inject times."""
    from trading.redis import get_redis
    from trading.streams import input_stream

    client = get_redis()
    sent: dict[int, float] = {}
    total = max(len(c) for c in commands.values())
    # Encoded up front: the injector stands in for order entry and must not be what limits
    # the offered rate (it shares the two cores with the loops and PostgreSQL).
    encoded = {
        symbol: [(cmd["order_id"], json.dumps(cmd, separators=(",", ":"))) for cmd in cmds]
        for symbol, cmds in commands.items()
    }
    start = time.time()
    for offset in range(0, total, INJECT_CHUNK):
        due = start + offset / rate
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        pipe = client.pipeline(transaction=False)
        now = time.time()
        for symbol, cmds in encoded.items():
            stream = input_stream(symbol)
            for order_id, payload in cmds[offset : offset + INJECT_CHUNK]:
                pipe.xadd(stream, {"c": payload})
                sent[order_id] = now
        pipe.execute()
    return sent


def run(markets: int, rate: float, orders: int, seed: int = 1) -> dict:
    _reset()
    commands = _prepare(markets, orders, seed)
    from django.db import connection

    from trading.models import Order, SettlementCursor

    with connection.cursor() as cur:
        cur.execute("ANALYZE")  # fresh tables have no statistics; production's have
    connection.close()
    seconds = orders / rate + 60
    logs = {s: tempfile.mktemp(suffix=".json") for s in commands}  # noqa: S306
    procs = [
        _spawn(role, s, seconds, logs[s]) for s in commands for role in ("matching", "settlement")
    ]
    time.sleep(2.5)  # interpreters start, leases taken, streams initialised
    t0 = time.time()
    sent = _inject(commands, rate)
    deadline = time.time() + 120
    done = False
    while time.time() < deadline and not done:
        time.sleep(0.2)
        pending = Order.objects.filter(
            market__symbol__in=list(commands), status="new", accepted_seq__isnull=True
        ).count()
        done = pending == 0
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(60)
    latencies: list[float] = []
    settled_at: list[float] = []
    batch_ms: list[float] = []
    batch_events: list[int] = []
    for symbol in commands:
        marks = json.loads(Path(logs[symbol]).read_text())
        Path(logs[symbol]).unlink()
        batch_ms.extend(1000 * m[2] for m in marks if m[3])
        batch_events.extend(m[3] for m in marks if m[3])
        accepted = dict(
            Order.objects.filter(market__symbol=symbol).values_list("pk", "accepted_seq")
        )
        marks.sort(key=lambda m: m[1])
        seqs = [m[1] for m in marks]
        import bisect

        for order_id, seq in accepted.items():
            if seq is None:
                continue
            at = marks[bisect.bisect_left(seqs, seq)][0]
            latencies.append(at - sent[order_id])
            settled_at.append(at)
    n = len(latencies)
    span = max(settled_at) - t0 if settled_at else float("nan")
    latencies.sort()
    cursors = list(SettlementCursor.objects.values_list("last_seq", flat=True))
    return {
        "markets": markets,
        "target_rate_per_market": rate,
        "orders_per_market": orders,
        "settled_orders": n,
        "complete": done,
        "sustained_per_market": round(n / markets / span) if span else 0,
        "p50_ms": round(1000 * statistics.median(latencies), 1) if n else None,
        "p99_ms": round(1000 * latencies[int(0.99 * (n - 1))], 1) if n else None,
        "max_ms": round(1000 * latencies[-1], 1) if n else None,
        "events_settled": sum(cursors),
        # settle_batch calls that applied events: how many, their time and size
        "batches": len(batch_ms),
        "batch_ms_p50_p99_max": _percentiles(batch_ms),
        "batch_events_p50_max": [statistics.median(batch_events), max(batch_events)]
        if batch_events
        else None,
    }


def _percentiles(values: list[float]) -> list[float] | None:
    if not values:
        return None
    ordered = sorted(values)
    pick = [ordered[len(ordered) // 2], ordered[int(0.99 * (len(ordered) - 1))], ordered[-1]]
    return [round(v, 1) for v in pick]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worker", nargs=4, metavar=("ROLE", "SYMBOL", "SECONDS", "LOG"))
    parser.add_argument("--markets", type=int)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--orders", type=int, default=20000)
    args = parser.parse_args()
    if args.worker:
        role, symbol, seconds, log = args.worker
        _worker(role, symbol, float(seconds), log)
        return
    _ensure_database()
    _setup_django()
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SHOW synchronous_commit")
        print(f"synchronous_commit = {cur.fetchone()[0]}; cores = {os.cpu_count()}")
    series = (
        [(args.markets or 1, args.rate or 2000)]
        if args.markets or args.rate
        else [(1, 1000), (1, 2000), (1, 4000), (2, 2000), (4, 1000)]
    )
    for markets, rate in series:
        result = run(markets, rate, args.orders)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
