"""`manage.py check_volumes [--samples N] [--seed S]`: summaries against their trades.

Every closed day by default (a full scan of the trades); `--samples N` checks N random days
per market. ok/FAILED per check, exit status 1 on a failure. Read-only, in one REPEATABLE
READ snapshot so live settlement and rollups cannot make the two sides disagree.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from reporting.checks import check_volumes


class Command(BaseCommand):
    help = "Check the volume summaries against the trades (all closed days, or a sample)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--samples", type=int, default=None, help="days per market")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        # Any: argparse's options.
        samples = options["samples"]
        if samples is not None and samples < 1:
            raise CommandError("--samples must be a positive integer.")
        nested = transaction.get_connection().in_atomic_block
        with transaction.atomic():
            if not nested:
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            results = check_volumes(samples=samples, seed=options["seed"])
        for result in results:
            self.stdout.write(f"{'ok' if result.ok else 'FAILED'}: {result.name}")
            for line in result.violations:
                self.stdout.write(f"  {line}")
        if not all(result.ok for result in results):
            raise SystemExit(1)
