"""`manage.py demo_maker`: keep the demo markets quoted and trading (trading.demo_maker).

    python manage.py demo_maker --markets BTC-USDT,ETH-USDT --interval 1.5 --seed 1

Runs until SIGTERM or SIGINT, then cancels its open orders; `--once` or `--rounds N` stop
after that many rounds and leave the quotes on the book. Refused unless DEMO_MAKER_ENABLED.
The running matching and settlement loops (`./run up`'s workers) execute its orders.
"""

from __future__ import annotations

import signal
import threading
from argparse import ArgumentParser
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from markets.models import Market, MarketStatus
from trading.demo_maker import run_demo_maker
from trading.history import PROFILES

MIN_INTERVAL, MAX_INTERVAL = Decimal("0.05"), Decimal("60")
MAX_ROUNDS = 10**9


def _whole(raw: object, *, option: str, low: int, high: int) -> int:
    try:
        value = int(str(raw))
    except ValueError:
        raise CommandError(f"{option} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise CommandError(f"{option} must be between {low} and {high}, got {value}")
    return value


def _interval(raw: object) -> float:
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise CommandError(f"--interval must be a number of seconds, got {raw!r}") from None
    if not value.is_finite() or not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise CommandError(f"--interval must be between {MIN_INTERVAL} and {MAX_INTERVAL} s")
    return float(value)  # a sleep, never an amount


def _markets(raw: str | None) -> list[Market]:
    trading = Market.objects.filter(status=MarketStatus.TRADING).select_related("base", "quote")
    if raw is None:
        markets = list(trading.filter(symbol__in=PROFILES).order_by("symbol"))
        if not markets:
            raise CommandError("no demo market is trading: run seed_demo")
        return markets
    symbols = [s.strip().upper() for s in raw.split(",") if s.strip()]
    if not symbols:
        raise CommandError("--markets names no market")
    found = {m.symbol: m for m in trading.filter(symbol__in=symbols)}
    missing = [s for s in symbols if s not in found]
    if missing:
        raise CommandError(f"not a trading market: {', '.join(missing)}")
    return [found[s] for s in dict.fromkeys(symbols)]


class Command(BaseCommand):
    help = (
        "Quote both sides of the demo markets around a slow random walk and take liquidity now"
        " and then, from a funded demo account, through the real order services."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--markets", help="comma-separated symbols (default: demo markets)")
        parser.add_argument("--interval", default="1.5", help="seconds between rounds")
        parser.add_argument("--seed", default="1", help="the price walk's seed (default 1)")
        parser.add_argument("--once", action="store_true", help="one round, then exit")
        parser.add_argument("--rounds", help="stop after this many rounds")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO_MAKER_ENABLED:
            raise CommandError("the demo maker is disabled (DEMO_MAKER_ENABLED is off)")
        interval = _interval(options["interval"])
        seed = _whole(options["seed"], option="--seed", low=0, high=2**31 - 1)
        rounds = None
        if options["rounds"] is not None:
            rounds = _whole(options["rounds"], option="--rounds", low=1, high=MAX_ROUNDS)
        if options["once"]:
            rounds = 1
        markets = _markets(options["markets"])
        stop = threading.Event()
        handlers = _on_signals(stop)
        try:
            self.stdout.write(
                f"[demo-maker] quoting {', '.join(m.symbol for m in markets)} every ~{interval:g} s"
            )
            report = run_demo_maker(
                markets=markets, seed=seed, interval=interval, rounds=rounds, stop=stop
            )
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        self.stdout.write(f"[demo-maker] stopped: {report.summary()}")


def _on_signals(stop: threading.Event) -> dict[int, Any]:
    """Make SIGTERM and SIGINT set `stop`; return the handlers they had."""
    if threading.current_thread() is not threading.main_thread():
        return {}  # signal handlers can only be set from the main thread

    def handle(signum: int, frame: object) -> None:
        stop.set()

    previous: dict[int, Any] = {}  # Any: whatever the handler was (callable, int, None)
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.getsignal(signum)
        signal.signal(signum, handle)
    return previous
