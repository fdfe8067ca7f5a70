"""`manage.py rebuild_candles --from YYYY-MM-DD [--market M ...]`: candles again from trades."""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import date, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from markets.errors import MarketNotFound
from markets.marketdata.rebuild import rebuild_candles
from markets.models import Market
from markets.selectors import get_market, list_markets


def parse_day(raw: str) -> date:
    """A calendar day written YYYY-MM-DD; CommandError for anything else."""
    try:
        return datetime.strptime(raw, "%Y-%m-%d").date()  # noqa: DTZ007 - a date, no time
    except ValueError:
        raise CommandError(f"--from must be a day written YYYY-MM-DD, got {raw!r}") from None


class Command(BaseCommand):
    help = (
        "Recompute the 1m/1h/1d candles of the given markets (default: every market) from the"
        " trades, for every interval from --from (00:00 UTC) on. Idempotent."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--market",
            action="append",
            default=[],
            metavar="SYMBOL",
            help="market symbol; repeat for several (default: all markets, unlisted too)",
        )
        parser.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD")

    def handle(self, *args: Any, **options: Any) -> None:
        start = parse_day(options["start"])
        markets = self._markets(options["market"])  # every symbol checked before any write
        for market in markets:
            rows = rebuild_candles(market=market, start=start)
            self.stdout.write(f"{market.symbol}: {rows} candle(s) rebuilt from {start}")

    def _markets(self, symbols: list[str]) -> list[Market]:
        if not symbols:
            return list(list_markets(include_unlisted=True))
        markets = []
        for symbol in dict.fromkeys(symbols):
            try:
                markets.append(get_market(symbol=symbol))
            except MarketNotFound:
                raise CommandError(f"unknown market {symbol!r}") from None
        return markets
