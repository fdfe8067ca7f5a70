"""Websocket streams benchmark: N clients on a busy market while the pipeline runs.

    python -m bench.streams [--clients 100] [--rate 2000] [--orders 30000] [--seed 1]

The pipeline of bench.pipeline (one market, its matching loop and settlement consumer in
their own processes, orders injected at `--rate` per second) settles into PostgreSQL and
publishes each batch to Redis; one uvicorn (`exchange.asgi:application`, production
settings) serves `--clients` websocket clients, each on
`/ws/<s>@depth@100ms/<s>@trade` (raw payloads), run by one asyncio process on the
same two cores (the honest way here: its CPU is taken from the server's).

Per trade frame a client records now - T, T being the trade's time (the settlement
batch's time, taken just before its rows are written): **settle-to-client latency**,
commit and publish included. Reported: p50 / p99 / max over every trade frame of every
client; trades each client missed (the market's trades in the window x clients - frames
received); depth-chain breaks (U != previous u + 1) and closes by code (4008 = too slow).
Database BENCH_DATABASE_URL (default exchange_bench_streams), Redis BENCH_REDIS_URL
(default db 8, flushed).

    python -m bench.streams --webhooks 4 [--rate 2000] [--orders 30000]

Webhooks instead: every trader has an endpoint (order updates and trades) at a loopback
receiver that answers 204; the pipeline runs as above (settlement records the deliveries
in its own transactions), then 4 threads run the delivery task's loop until nothing is
due: deliveries recorded, delivered, and deliveries/s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/exchange_bench_streams"
)
os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
os.environ["DJANGO_SETTINGS_MODULE"] = "exchange.settings.base"
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdef0123456789abcdef")
os.environ.setdefault("API_KEY_ENCRYPTION_KEY", "ZGV2LW9ubHkta2V5LWNoYW5nZS1tZS0wMTIzNDU2Nzg=")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["SECURE_SSL_REDIRECT"] = "false"

from bench import pipeline

ROOT = Path(__file__).resolve().parent.parent
HANDSHAKES_AT_ONCE = 50
CLOSE_TOO_SLOW = 4008


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- clients


_TRADE = b'"e":"trade"'
_TIME = re.compile(rb'"T":(\d+)')
_CHAIN = re.compile(rb'"U":(\d+),"u":(\d+)')
_EVENT = re.compile(rb'"E":(\d+)')
_TOO_SLOW = CLOSE_TOO_SLOW.to_bytes(2, "big") + b"too slow"


async def _handshake(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(head[:200].decode(errors="replace"))
    return reader, writer


async def _client(
    port: int, path: str, stop_at: float, hist: Counter[int], out: dict, gate: asyncio.Semaphore
) -> None:
    """A websocket client that reads in large chunks and looks at them with bytes methods
    (C speed): trade frames counted, one trade's latency sampled per chunk, the depth
    chain checked. A per-frame Python client could not read 100,000 frames a second here,
    and would measure itself. The server never pings within a run (20 s), so nothing
    needs an answer."""
    async with gate:
        reader, writer = await _handshake(port, path)
    out["connected"] += 1
    trades = breaks = 0
    last_u: int | None = None
    carry = b""
    closed = False
    while True:
        left = stop_at - time.time()
        if left <= 0:
            break
        try:
            chunk = await asyncio.wait_for(reader.read(1 << 20), left)
        except TimeoutError:
            break
        if not chunk:
            closed = True
            break
        data = carry + chunk
        cut = max(0, len(data) - 32)
        trades += chunk.count(_TRADE) if not carry else data.count(_TRADE) - carry.count(_TRADE)
        carry = data[cut:]
        stamp = data.rfind(b'"T":')
        if stamp >= 0:
            found = _TIME.match(data, stamp)
            if found:
                hist[time.time_ns() // 1_000_000 - int(found[1])] += 1
        event = chunk.rfind(b'"e":"depthUpdate","E":')
        if event >= 0:
            found = _EVENT.search(chunk, event)
            if found:
                out["depth_hist"][time.time_ns() // 1_000_000 - int(found[1])] += 1
        for first, last in _CHAIN.findall(chunk):
            if last_u is not None and int(first) != last_u + 1:
                breaks += 1
            last_u = int(last)
        if _TOO_SLOW in chunk:
            out["closes"][str(CLOSE_TOO_SLOW)] += 1
    writer.close()
    out["trades"].append(trades)
    out["breaks"] += breaks
    out["closes"]["eof" if closed else "open"] += 1


async def _clients(
    port: int,
    stream: str,
    clients: int,
    seconds: float,
    ready: Path,
    result: Path,
    depth_only: bool,
) -> None:
    path = f"/ws/{stream}@depth@100ms" + ("" if depth_only else f"/{stream}@trade")
    hist: Counter[int] = Counter()
    out: dict = {
        "trades": [], "breaks": 0, "closes": Counter(), "connected": 0, "depth_hist": Counter(),
    }  # fmt: skip
    gate = asyncio.Semaphore(HANDSHAKES_AT_ONCE)
    stop_at = time.time() + seconds
    tasks = [
        asyncio.create_task(_client(port, path, stop_at, hist, out, gate)) for _ in range(clients)
    ]
    while gate._value < HANDSHAKES_AT_ONCE or any(not t.done() and False for t in tasks):
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    ready.write_text("ready")
    await asyncio.gather(*tasks, return_exceptions=True)
    result.write_text(
        json.dumps(
            {
                **out,
                "hist": list(hist.items()),
                "depth_hist": list(out["depth_hist"].items()),
                "closes": dict(out["closes"]),
            }
        )
    )


def _client_main(argv: list[str]) -> None:
    port, stream, clients, seconds, ready, result, kind = argv
    asyncio.run(
        _clients(
            int(port), stream, int(clients), float(seconds), Path(ready), Path(result),
            kind == "depth",
        )
    )  # fmt: skip


# --------------------------------------------------------------------------- the run


def _percentile(hist: list[tuple[int, int]], q: float) -> int:
    total = sum(c for _, c in hist)
    seen = 0
    for value, count in sorted(hist):
        seen += count
        if seen >= q * total:
            return value
    return -1


def run(clients: int, rate: float, orders: int, seed: int, depth_only: bool = False) -> dict:
    pipeline._ensure_database()
    pipeline._setup_django()
    pipeline._reset()
    commands = pipeline._prepare(1, orders, seed)
    symbol = next(iter(commands))
    stream = symbol.replace("-", "").lower()
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    connection.close()
    logdir = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    port = _free_port()
    web_log = open(logdir / "web.log", "wb")  # noqa: SIM115
    web = subprocess.Popen(
        [str(Path(sys.executable).parent / "uvicorn"), "exchange.asgi:application", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=os.environ, stdout=web_log, stderr=web_log,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v3/ping", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or web.poll() is not None:
                raise SystemExit((logdir / "web.log").read_text()) from None
            time.sleep(0.2)
    seconds = orders / rate + 60
    logs = {symbol: str(logdir / "settle.json")}
    loops = [
        pipeline._spawn(role, symbol, seconds, logs[symbol]) for role in ("matching", "settlement")
    ]
    window = orders / rate + 8
    ready, result = logdir / "ready", logdir / "clients.json"
    client_proc = subprocess.Popen(
        [sys.executable, "-m", "bench.streams", "--client", str(port), stream, str(clients),
         str(window + 10), str(ready), str(result), "depth" if depth_only else "all"],
        cwd=ROOT, env=os.environ,
    )  # fmt: skip
    while not ready.exists():
        if client_proc.poll() is not None:
            raise SystemExit("the clients did not start")
        time.sleep(0.1)
    time.sleep(2.5)  # the loops' interpreters have started and hold their leases
    from trading.models import Trade

    first_trade = Trade.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    cpu_before = _cpu(web.pid)
    t0 = time.time()
    pipeline._inject(commands, rate)
    injected = time.time() - t0
    client_proc.wait(window + 120)
    cpu_web = _cpu(web.pid) - cpu_before
    for proc in (*loops, web):
        proc.terminate()
    for proc in (*loops, web):
        proc.wait(60)
    data = json.loads(result.read_text())
    trades_total = Trade.objects.filter(seq__gt=first_trade).count()
    received = data["trades"]
    hist = [tuple(x) for x in data["hist"]]
    depth_hist = [tuple(x) for x in data["depth_hist"]]
    expected = 0 if depth_only else trades_total * len(received)
    return {
        "clients": clients,
        "streams": "depth@100ms" if depth_only else "depth@100ms + trade",
        "rate": rate,
        "orders": orders,
        "inject_seconds": round(injected, 1),
        "trades": trades_total,
        "trade_frames": sum(received),
        "missed_trade_frames": expected - sum(received),
        "missed_pct": round(100 * (expected - sum(received)) / expected, 2) if expected else None,
        "settle_to_client_ms_p50_p99_max": [
            _percentile(hist, 0.5),
            _percentile(hist, 0.99),
            max((v for v, _ in hist), default=-1),
        ],
        "depth_frame_delivery_ms_p50_p99_max": [
            _percentile(depth_hist, 0.5),
            _percentile(depth_hist, 0.99),
            max((v for v, _ in depth_hist), default=-1),
        ],
        "depth_chain_breaks": data["breaks"],
        "closes_by_code": data["closes"],
        "web_cpu_seconds": round(cpu_web, 1),
    }


class _Ok(BaseHTTPRequestHandler):
    """The loopback receiver: reads the body, answers 204."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def run_webhooks(rate: float, orders: int, seed: int, workers: int) -> dict:
    """Every bench trader has an endpoint for order updates and trades at a loopback
    receiver; the pipeline runs (settlement records the deliveries in its transactions),
    then `workers` threads run the delivery task's loop until nothing is due."""
    os.environ["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = "true"
    pipeline._ensure_database()
    pipeline._setup_django()
    pipeline._reset()
    commands = pipeline._prepare(1, orders, seed)
    symbol = next(iter(commands))
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from accounts.models import User, WebhookDelivery
    from accounts.services.webhooks import create_webhook_endpoint
    from accounts.webhooks.deliver import deliver_due_webhooks

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    for user in User.objects.filter(email__endswith="@bench.invalid"):
        create_webhook_endpoint(user=user, url=url, events=["order.update", "trade"])
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    connection.close()
    logdir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    loops = [
        pipeline._spawn(role, symbol, orders / rate + 60, str(logdir / "settle.json"))
        for role in ("matching", "settlement")
    ]
    time.sleep(2.5)
    pipeline._inject(commands, rate)
    from trading.models import Order

    deadline = time.time() + 120
    while time.time() < deadline:
        if not Order.objects.filter(status="new", accepted_seq__isnull=True).exists():
            break
        time.sleep(0.2)
    time.sleep(1.0)
    for proc in loops:
        proc.terminate()
    for proc in loops:
        proc.wait(60)
    recorded = WebhookDelivery.objects.count()

    def drain() -> int:
        try:
            return deliver_due_webhooks(limit=50, budget_seconds=600)
        finally:
            connection.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        attempts = sum(pool.map(lambda _: drain(), range(workers)))
    seconds = time.perf_counter() - started
    server.shutdown()
    delivered = WebhookDelivery.objects.filter(status="delivered").count()
    return {
        "webhooks": True,
        "orders": orders,
        "rate": rate,
        "endpoints": User.objects.filter(email__endswith="@bench.invalid").count(),
        "deliveries_recorded": recorded,
        "delivered": delivered,
        "attempts": attempts,
        "workers": workers,
        "seconds": round(seconds, 2),
        "deliveries_per_second": round(delivered / seconds) if seconds else None,
    }


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--client", nargs=7)
    parser.add_argument(
        "--depth-only", action="store_true", help="clients subscribe to @depth@100ms only"
    )
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--orders", type=int, default=30000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--webhooks", type=int, metavar="WORKERS", help="the webhook phase with this many threads"
    )
    args = parser.parse_args()
    if args.client:
        _client_main(args.client)
        return
    print(f"{platform.node()} cores={os.cpu_count()} load={os.getloadavg()}", flush=True)
    if args.webhooks:
        result = run_webhooks(args.rate, args.orders, args.seed, args.webhooks)
    else:
        result = run(args.clients, args.rate, args.orders, args.seed, args.depth_only)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
