"""`manage.py assign_fee_tiers [--day YYYY-MM-DD]`: assign every user's fee tier now.

What the nightly beat task does (reporting.tiers.assign_fee_tiers), for staff who changed
the tier thresholds and do not want to wait for the night. `--day` is the local day whose
30 previous closed days count (default: today in REPORTING_TIME_ZONE). Idempotent.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reporting.tiers import assign_fee_tiers


class Command(BaseCommand):
    help = "Assign each user's fee tier from their 30-day volume (what beat does nightly)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--day", default=None, help="local day, YYYY-MM-DD (default today)")

    def handle(self, *args: Any, **options: Any) -> None:
        # Any: argparse's options.
        day = None
        if options["day"] is not None:
            try:
                day = date.fromisoformat(options["day"])
            except ValueError as exc:
                raise CommandError("--day must be a date, YYYY-MM-DD.") from exc
        written = assign_fee_tiers(day)
        self.stdout.write(f"fee tiers assigned: {written} user(s)")
