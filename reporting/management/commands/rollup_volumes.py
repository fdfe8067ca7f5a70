"""`manage.py rollup_volumes --from YYYY-MM-DD [--market SYMBOL]`: rebuild the summaries.

For a correction: recompute every day row from that local day on (and their months and
years, both calendars) from the trades. Bad input is a CommandError and changes nothing.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.errors import DomainError
from markets.marketdata.common import resolve_market
from reporting.rollup import rebuild
from reporting.selectors import validate_range


class Command(BaseCommand):
    help = "Recompute the volume summaries from a local day on (all markets or one)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD")
        parser.add_argument("--market", default=None, help="a market symbol (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        # Any: argparse's options.
        try:
            start = date.fromisoformat(options["start"])
        except ValueError as exc:
            raise CommandError(f"--from must be a date (YYYY-MM-DD): {options['start']!r}") from exc
        try:
            validate_range(start=start, end=start)
            market = resolve_market(options["market"]) if options["market"] else None
        except DomainError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc
        days = rebuild(start, market)
        scope = market.symbol if market else "every market"
        self.stdout.write(f"rebuilt {days} market-days from {start} for {scope}")
