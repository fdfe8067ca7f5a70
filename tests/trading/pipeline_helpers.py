"""Helpers for the pipeline tests: loops in threads, loops in real processes, waiting, state.

The random orders they place come from trading.workload (random_spec), simulate's generator.

Run as a module it is the worker process of the subprocess tests:

    python -m tests.trading.pipeline_helpers matching BTC-USDT [max_seconds]

(DATABASE_URL must name pytest's test database; see `worker_env`.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- loops in threads


@dataclass
class LoopThreads:
    stop: threading.Event
    threads: list[threading.Thread]
    results: dict[str, Any]

    def join(self, timeout: float = 30) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout)


def _in_thread(
    target: Callable[..., Any], name: str, results: dict[str, Any], **kwargs: Any
) -> threading.Thread:
    def run() -> None:
        from django.db import connection

        try:
            results[name] = target(**kwargs)
        except BaseException as exc:  # surfaced by the test through `results`
            results[name] = exc
            raise
        finally:
            connection.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def start_loops(
    symbols: Sequence[str], *, matching: bool = True, settlement: bool = True
) -> LoopThreads:
    """Matching and settlement loops for the markets, each on its own thread."""
    from trading.matching import run_matching_loop
    from trading.settlement_loop import run_settlement_loop

    stop = threading.Event()
    results: dict[str, Any] = {}
    threads = []
    for symbol in symbols:
        if matching:
            threads.append(
                _in_thread(
                    run_matching_loop, f"matching:{symbol}", results, symbol=symbol, stop=stop
                )
            )
        if settlement:
            threads.append(
                _in_thread(
                    run_settlement_loop, f"settlement:{symbol}", results, symbol=symbol, stop=stop
                )
            )
    return LoopThreads(stop=stop, threads=threads, results=results)


@contextmanager
def loops_running(symbols: Sequence[str]) -> Iterator[LoopThreads]:
    loops = start_loops(symbols)
    try:
        yield loops
    finally:
        loops.join()


# ---------------------------------------------------------------- waiting


def is_settled(symbol: str) -> bool:
    """Every published command applied, every event written settled, no outbox backlog."""
    from markets.models import Market
    from trading.settlement_loop import is_caught_up

    return is_caught_up(Market.objects.get(symbol=symbol))


def wait_settled(symbols: Sequence[str], *, timeout: float = 60, sweep: bool = True) -> float:
    """Block until every market is settled; return the seconds it took."""
    from trading.services.outbox import sweep_outbox

    started = time.monotonic()
    while True:
        if sweep:
            sweep_outbox(min_age=__import__("datetime").timedelta(0))
        if all(is_settled(symbol) for symbol in symbols):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not settled within {timeout}s: {symbols}")
        time.sleep(0.05)


# ---------------------------------------------------------------- loops in processes


def worker_env(**extra: str) -> dict[str, str]:
    """Environment for a worker process that uses pytest's test database and Redis DB."""
    from django.conf import settings
    from django.db import connection

    from tests.database_url import database_url

    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "exchange.settings.test",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def spawn_worker(
    role: str, symbol: str, *, max_seconds: float = 120, **knobs: str
) -> subprocess.Popen[bytes]:
    """Start a loop in a real process (SIGKILL-able, SIGSTOP-able); knobs: PIPELINE_* env.

    Output goes to a temporary file (a full pipe would block the worker); `stop_worker`
    returns it.
    """
    log = tempfile.NamedTemporaryFile(prefix=f"{role}-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(  # noqa: S603 - fixed argv of our own module
        [sys.executable, "-m", "tests.trading.pipeline_helpers", role, symbol, str(max_seconds)],
        cwd=ROOT,
        env=worker_env(**knobs),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    proc.log_path = log.name  # type: ignore[attr-defined]
    log.close()
    return proc


def stop_worker(proc: subprocess.Popen[bytes], timeout: float = 20) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return read_log(proc)


def read_log(proc: subprocess.Popen[bytes]) -> str:
    path = Path(proc.log_path)  # type: ignore[attr-defined]
    text = path.read_text(errors="replace")
    path.unlink(missing_ok=True)
    return text


# ---------------------------------------------------------------- state


def state_digest(symbols: Sequence[str]) -> dict[str, Any]:
    """Orders, trades and balances in a comparable form (ids included: same seed, same ids)."""
    from accounts.models import Balance
    from trading.models import Order, Trade

    return {
        "orders": sorted(
            Order.objects.filter(market__symbol__in=symbols).values_list(
                "client_order_id",
                "status",
                "filled_quantity",
                "filled_quote",
                "fee_paid",
                "hold_remaining",
            )
        ),
        "trades": sorted(
            Trade.objects.filter(market__symbol__in=symbols).values_list(
                "market__symbol",
                "seq",
                "maker_order__client_order_id",
                "taker_order__client_order_id",
                "price",
                "quantity",
            )
        ),
        "balances": sorted(
            (b.user.email if b.user else b.kind, b.asset.code, b.available, b.locked)
            for b in Balance.objects.select_related("user", "asset")
        ),
    }


def _main(argv: list[str]) -> int:
    role, symbol = argv[0], argv[1]
    max_seconds = float(argv[2]) if len(argv) > 2 else 120.0
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import trading.lease
    import trading.matching
    from trading.loops import SHUTDOWN, install_signal_handlers
    from trading.matching import run_matching_loop
    from trading.settlement_loop import run_settlement_loop

    # Test knobs: short leases (fast takeover), frequent snapshots (recovery replays from
    # a snapshot, not from the start), no input trimming (the reference replays it all).
    trading.lease.DEFAULT_TTL_MS = int(os.environ.get("PIPELINE_LEASE_TTL_MS", "5000"))
    trading.matching.SNAPSHOT_EVERY_COMMANDS = int(
        os.environ.get("PIPELINE_SNAPSHOT_EVERY", "50000")
    )
    trading.matching.TRIM_INPUT = os.environ.get("PIPELINE_TRIM_INPUT", "1") == "1"
    install_signal_handlers()
    runner = run_matching_loop if role == "matching" else run_settlement_loop
    started = time.monotonic()
    while True:  # a killed predecessor holds the lease until its TTL runs out
        result = runner(symbol, max_seconds=max_seconds)
        if result.owned or time.monotonic() - started > max_seconds:
            break
        if SHUTDOWN.wait(0.1):
            break
    print(f"RESULT {result}", flush=True)  # noqa: T201 - read by the parent test
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
