"""Partner API benchmark: signed POST /api/v3/order over HTTP, then GET depth and klines.

    python -m bench.api [--seconds 10] [--rate 1000] [--connections 32] [--users 40]
                        [--read-seconds 5] [--web-workers 1] [--keep] [--logs DIR]

The server is `./run up`'s configuration, started here as child processes on a free port:
one uvicorn (`exchange.asgi:application`, settings `exchange.settings.base`, DEBUG off), the
short-task Celery worker, the loops worker (`-Q matching`, threads) and Celery beat, whose
lease watchdog starts the market's matching and settlement loops. So every accepted order is
also matched and settled while the benchmark runs, as in production.

The load generator is a small asyncio HTTP/1.1 client (keep-alive connections, the request
bytes built and HMAC-signed at send time as ccxt signs: timestamp, the parameters,
recvWindow) in its own process, on the same 2-core machine: its CPU is taken from the
server's, which is the honest way to run it here.

Phases, each reported on one line (accepted/s, p50 / p99 / max ms, answers by status):
1. **orders, open loop at `--rate`/s** for `--seconds`: an order is due every 1/rate s
   whether or not earlier ones have answered; its latency is measured from when it was
   due (queueing included, no coordinated omission). Limit GTC orders, ACK responses, from
   `--users` funded users with trading keys; prices walk around the mid so about one order
   in ten crosses the book and trades.
2. **orders, closed loop (saturation)**: `--connections` connections each sending the next
   order when the last one answered, for `--seconds`.
3. **GET /api/v3/depth** (limit 100) and **GET /api/v3/klines** (1m, limit 500), closed
   loop on `--connections` connections for `--read-seconds` each, with the book and the
   candles the order phases left.

The keys carry staff overrides of their limits (orders per 10 s and weight), and the
server's IP weight limit is raised by setting, as an exchange does for a market maker: the
rate limiter still runs its script for every request (the cost is measured), it only never
refuses. Database BENCH_DATABASE_URL (default exchange_bench_api, created, migrated and
dropped unless --keep), Redis BENCH_REDIS_URL (default db 11, flushed at the start).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import multiprocessing as mp
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

from bench import accept

DEFAULT_DB_URL = "postgres://postgres@127.0.0.1:5432/exchange_bench_api"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
SYMBOL = accept.SYMBOL  # BENCH-USDT
COMPAT_SYMBOL = SYMBOL.replace("-", "")
MID = Decimal("50000")
BASE_FUNDS = Decimal("1000")  # BTC per user: sells never run short
HISTORY_ENTRIES = 5_000  # accept.seed's ledger history (its plans see a non-trivial table)
START_TIMEOUT = 90.0
ROOT = Path(__file__).resolve().parent.parent


def _configure() -> None:
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB_URL)
    os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    os.environ["DJANGO_SETTINGS_MODULE"] = "exchange.settings.base"
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdef0123456789abcdef")
    os.environ.setdefault("API_KEY_ENCRYPTION_KEY", "ZGV2LW9ubHkta2V5LWNoYW5nZS1tZS0wMTIzNDU2Nzg=")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.dummy.EmailBackend"  # key mails
    os.environ["API_WEIGHT_PER_MINUTE_IP"] = "100000000"  # one load generator, one IP
    # DEBUG off (production settings) but plain HTTP on loopback, as behind a TLS proxy.
    os.environ["SECURE_SSL_REDIRECT"] = "false"


# --------------------------------------------------------------------------- set-up


def seed(users: int) -> list[tuple[str, str]]:
    """Funded users (USDT and BTC) with trading keys whose limits never refuse: (key, secret)."""
    import django

    django.setup()
    from accounts.models import Asset, User
    from accounts.services.apikeys import create_api_key
    from accounts.services.deposits import credit_deposit

    accept.HISTORY_ENTRIES = HISTORY_ENTRIES
    _market_id, groups = accept.seed(1, users)
    btc = Asset.objects.get(code="BTC")
    keys = []
    for user in User.objects.filter(pk__in=groups[0]).order_by("pk"):
        credit_deposit(user=user, asset=btc, amount=BASE_FUNDS, external_ref=f"api-btc-{user.pk}")
        created = create_api_key(user=user, label="bench", can_read=True, can_trade=True)
        api_key = created.api_key
        api_key.weight_per_minute = 10_000_000
        api_key.orders_per_10s = 100_000
        api_key.orders_per_day = 100_000_000
        api_key.save(update_fields=["weight_per_minute", "orders_per_10s", "orders_per_day"])
        if created.secret is None:
            raise SystemExit("an HMAC key was created without a secret")
        keys.append((api_key.key, created.secret))
    return keys


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_servers(port: int, logdir: Path, web_workers: int) -> list[subprocess.Popen[bytes]]:
    """`./run up`'s processes (see the `run` script): uvicorn, two Celery workers, beat.
    `web_workers` > 1 runs uvicorn with --workers (not what `./run up` does)."""
    bin_dir = Path(sys.executable).parent
    workers = ["--workers", str(web_workers)] if web_workers > 1 else []
    commands = {
        "web": [str(bin_dir / "uvicorn"), "exchange.asgi:application", "--host", "127.0.0.1",
                "--port", str(port), "--log-level", "warning", *workers],
        "worker": [str(bin_dir / "celery"), "-A", "exchange", "worker", "-l", "warning", "-Q",
                   "celery", "-n", "short@bench-api", "--concurrency", "8", "--pool", "threads"],
        "loops": [str(bin_dir / "celery"), "-A", "exchange", "worker", "-l", "warning", "-Q",
                  "matching", "-n", "loops@bench-api", "--concurrency", "64", "--pool",
                  "threads"],
        "beat": [str(bin_dir / "celery"), "-A", "exchange", "beat", "-l", "warning",
                 "--schedule", str(logdir / "celerybeat-schedule")],
    }  # fmt: skip
    procs = []
    for name, command in commands.items():
        log = open(logdir / f"{name}.log", "wb")  # noqa: SIM115  (closed with the process)
        procs.append(
            subprocess.Popen(
                command, cwd=ROOT, env=os.environ, stdout=log, stderr=log, start_new_session=True
            )
        )
    return procs


def stop_servers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_ready(base: str, procs: list[subprocess.Popen[bytes]], logdir: Path) -> None:
    """The web answers and both loops of the market hold their leases."""
    from trading.lease import is_lease_live
    from trading.redis import get_redis

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in procs):
            break
        try:
            with urllib.request.urlopen(f"{base}/api/v3/ping", timeout=2):  # noqa: S310  (http)
                pass
            client = get_redis()
            if all(
                is_lease_live(role=role, symbol=SYMBOL, client=client)
                for role in ("matching", "settlement")
            ):
                return
        except OSError:
            pass
        time.sleep(0.25)
    logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
                     for p in sorted(logdir.glob("*.log")))  # fmt: skip
    raise SystemExit(f"the servers did not come up in {START_TIMEOUT:.0f} s\n{logs}")


# --------------------------------------------------------------------------- load generator


class Connection:
    """One keep-alive HTTP/1.1 connection; a request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


class Orders:
    """Signed order requests: a price walk around the mid, about one in ten crossing."""

    def __init__(self, keys: list[tuple[str, str]], port: int, seed: int) -> None:
        self.keys = keys
        self.host = f"127.0.0.1:{port}"
        self.rng = random.Random(seed)
        self.n = 0

    def next(self) -> bytes:
        key, secret = self.keys[self.n % len(self.keys)]
        self.n += 1
        side = "BUY" if self.n % 2 else "SELL"
        crosses = self.rng.random() < 0.1
        offset = Decimal(self.rng.randint(1, 500)) / 100  # 0.01 .. 5.00 off the mid
        if side == "BUY":
            price = MID + offset if crosses else MID - offset
        else:
            price = MID - offset if crosses else MID + offset
        params = [
            ("timestamp", str(int(time.time() * 1000))),
            ("symbol", COMPAT_SYMBOL),
            ("side", side),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.00100"),
            ("price", f"{price:.2f}"),
            ("newOrderRespType", "ACK"),
            ("recvWindow", "5000"),
        ]
        text = urlencode(params)
        signature = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
        body = f"{text}&signature={signature}".encode()
        return (
            f"POST /api/v3/order HTTP/1.1\r\nHost: {self.host}\r\nX-MBX-APIKEY: {key}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body


def _get(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


async def _open_loop(port: int, orders: Orders, rate: float, seconds: float, pool: int) -> dict:
    conns = [await Connection.open(port) for _ in range(pool)]
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for conn in conns:
        free.put_nowait(conn)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    pending: set[asyncio.Task[None]] = set()

    async def one(due: float) -> None:
        conn = await free.get()
        try:
            status, body = await conn.send(orders.next())
        finally:
            free.put_nowait(conn)
        latencies.append(time.perf_counter() - due)
        statuses[_label(status, body)] += 1

    start = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    elapsed = time.perf_counter() - start
    for conn in conns:
        conn.close()
    return {"elapsed": elapsed, "latencies": latencies, "statuses": statuses}


async def _closed_loop(port: int, make, seconds: float, connections: int) -> dict:  # type: ignore[no-untyped-def]
    conns = [await Connection.open(port) for _ in range(connections)]
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    stop_at = time.perf_counter() + seconds

    async def run(conn: Connection) -> None:
        while time.perf_counter() < stop_at:
            sent = time.perf_counter()
            status, body = await conn.send(make())
            latencies.append(time.perf_counter() - sent)
            statuses[_label(status, body)] += 1

    start = time.perf_counter()
    await asyncio.gather(*(run(conn) for conn in conns))
    elapsed = time.perf_counter() - start
    for conn in conns:
        conn.close()
    return {"elapsed": elapsed, "latencies": latencies, "statuses": statuses}


def _label(status: int, body: bytes) -> str:
    if status == 200:
        return "200"
    return f"{status} {body[:80].decode(errors='replace')}"


def _generator(
    port: int, keys: list[tuple[str, str]], args: argparse.Namespace, out: mp.Queue
) -> None:
    """The load generator's process: every phase, one result dict each, put on `out`."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    orders = Orders(keys, port, seed=args.seed)
    results = {}
    results["orders, open loop"] = asyncio.run(
        _open_loop(port, orders, args.rate, args.seconds, pool=max(args.connections, 64))
    )
    results["orders, closed loop"] = asyncio.run(
        _closed_loop(port, orders.next, args.seconds, args.connections)
    )
    depth = _get(port, f"/api/v3/depth?symbol={COMPAT_SYMBOL}&limit=100")
    klines = _get(port, f"/api/v3/klines?symbol={COMPAT_SYMBOL}&interval=1m&limit=500")
    results["GET depth limit=100"] = asyncio.run(
        _closed_loop(port, lambda: depth, args.read_seconds, args.connections)
    )
    results["GET klines 1m limit=500"] = asyncio.run(
        _closed_loop(port, lambda: klines, args.read_seconds, args.connections)
    )
    out.put((results, time.process_time()))


# --------------------------------------------------------------------------- report


def _ms(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return sorted_values[index] * 1000


def report(results: dict[str, dict], cpu: dict[str, float]) -> None:
    for phase, result in results.items():
        values = sorted(result["latencies"])
        ok = result["statuses"].get("200", 0)
        others = {k: v for k, v in result["statuses"].items() if k != "200"}
        print(
            f"{phase}: {ok / result['elapsed']:,.0f} ok/s ({ok} in {result['elapsed']:.1f} s), "
            f"p50 {_ms(values, 0.5):.1f} / p99 {_ms(values, 0.99):.1f} / "
            f"max {_ms(values, 1.0):.1f} ms" + (f"; other answers {others}" if others else "")
        )
    print("cpu seconds over the run: " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()))


def _cpu_seconds(pid: int) -> float:
    """CPU seconds (utime + stime, /proc) of a process and its live children (uvicorn's
    --workers, multiprocessing spawns)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:  # fields[1]: the parent
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def verify(expected_at_least: int) -> None:
    """Every accepted order is in the table, the settlement caught up, the ledger is clean."""
    from accounts.checks import run_ledger_checks
    from trading.models import Order

    orders = Order.objects.filter(market__symbol=SYMBOL).count()
    clean = run_ledger_checks().ok
    print(f"verify: {orders} orders (>= {expected_at_least} accepted), ledger "
          f"{'clean' if clean else 'VIOLATIONS'}")  # fmt: skip
    if orders < expected_at_least or not clean:
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=1000, help="open-loop orders per second")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--read-seconds", type=float, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--web-workers", type=int, default=1, help="uvicorn processes (./run up: 1)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--logs", help="keep the servers' logs in this directory")
    args = parser.parse_args()
    _configure()
    print(f"bench.api on {platform.node()} ({os.cpu_count()} CPUs), load "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    accept.drop_database()
    accept.create_database()
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    keys = seed(args.users)
    from accounts.signing import REPLAY_STORE_SINCE_KEY

    # A flushed replay store refuses requests signed in its first second (-1021, by design):
    # mark it as running for long, as a production store is.
    redis.Redis.from_url(os.environ["REDIS_URL"]).set(REPLAY_STORE_SINCE_KEY, 0)
    from django.db import connections

    connections.close_all()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        logdir = Path(args.logs) if args.logs else Path(tmp)
        logdir.mkdir(parents=True, exist_ok=True)
        procs = start_servers(port, logdir, args.web_workers)
        try:
            wait_ready(base, procs, logdir)
            names = ("web", "worker", "loops", "beat")
            before = {name: _cpu_seconds(p.pid) for name, p in zip(names, procs, strict=True)}
            backends_before = accept._backends_cpu_ns()
            out: mp.Queue = mp.Queue()
            generator = mp.Process(target=_generator, args=(port, keys, args, out))
            generator.start()
            results, generator_cpu = out.get()
            generator.join()
            cpu = {name: _cpu_seconds(p.pid) - before[name]
                   for name, p in zip(names, procs, strict=True)}  # fmt: skip
            backends_after = accept._backends_cpu_ns()
            cpu["postgres backends"] = (
                sum(used - backends_before.get(pid, 0) for pid, used in backends_after.items())
                / 1e9
            )
            cpu["load generator"] = generator_cpu
        finally:
            stop_servers(procs)
        report(results, cpu)
        accepted = sum(
            r["statuses"].get("200", 0) for k, r in results.items() if k.startswith("orders")
        )
        verify(accepted)
    print(f"load at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    connections.close_all()
    if not args.keep:
        accept.drop_database()


if __name__ == "__main__":
    main()
