"""`manage.py seed_history`: days of real trading on the demo markets, at past times.

    python manage.py seed_history --days 2 --step 15 --seed 1

Needs seed_demo's markets. Orders go through the real services and loops with the clock
shifted to each slot (trading.history explains how and why); a market that already has a
trade is left as it is, so running it again adds nothing.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from markets.models import Market
from trading.history import PROFILES, HistoryReport, seed_history

MAX_DAYS = 366
MINUTES_PER_DAY = 24 * 60


def _whole(raw: object, *, option: str, low: int, high: int) -> int:
    try:
        value = int(str(raw))
    except ValueError:
        raise CommandError(f"{option} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise CommandError(f"{option} must be between {low} and {high}, got {value}")
    return value


class Command(BaseCommand):
    help = (
        "Trade a history on the demo markets through the real pipeline, clock shifted into the"
        " past: --days of --step-minute slots ending now. Markets with trades are skipped."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--days", default="2", help="days of history (default 2)")
        parser.add_argument("--step", default="15", help="minutes per slot (default 15)")
        parser.add_argument("--seed", default="1", help="the price walk's seed (default 1)")
        parser.add_argument(
            "--no-inline",
            dest="inline",
            action="store_false",
            help="rely on running workers for the loops instead of threads of this command",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = _whole(options["days"], option="--days", low=1, high=MAX_DAYS)
        step = _whole(options["step"], option="--step", low=1, high=MINUTES_PER_DAY)
        seed = _whole(options["seed"], option="--seed", low=0, high=2**31 - 1)
        if days * MINUTES_PER_DAY < step:
            raise CommandError(f"--step {step} is longer than --days {days}")
        markets = list(Market.objects.filter(symbol__in=PROFILES).select_related("base", "quote"))
        missing = sorted(set(PROFILES) - {market.symbol for market in markets})
        if missing:
            raise CommandError(f"demo markets missing ({', '.join(missing)}): run seed_demo")
        try:
            report = seed_history(
                markets=markets, days=days, step_minutes=step, seed=seed, inline=options["inline"]
            )
        except TimeoutError as exc:
            raise CommandError(f"history stopped: {exc}") from exc
        self._print(report)

    def _print(self, report: HistoryReport) -> None:
        for market in report.markets:
            if market.skipped:
                self.stdout.write(f"[history] {market.symbol}: has trades already, left as it is")
                continue
            refused = f", refused {dict(market.refused)}" if market.refused else ""
            span = f" from {market.first:%Y-%m-%d %H:%M} to {market.last:%Y-%m-%d %H:%M} UTC"
            self.stdout.write(
                f"[history] {market.symbol}: {market.placed} orders, {market.trades} trades"
                f"{span if market.first and market.last else ''}{refused}"
            )
        if report.slots:
            self.stdout.write(
                f"[history] {report.trades} trades in {report.slots} slots"
                f" in {report.elapsed:.1f} s"
            )
