"""`manage.py check_ledger`: run the ledger invariants, print a report, fail on violations."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.checks import run_ledger_checks


class Command(BaseCommand):
    help = "Check the ledger invariants (INV-1..INV-5 and registered extras); exit 1 on drift."

    def handle(self, *args: Any, **options: Any) -> None:
        nested = transaction.get_connection().in_atomic_block  # e.g. called from a test
        with transaction.atomic():
            if not nested:
                # One REPEATABLE READ snapshot: every check sees the same committed state,
                # so concurrent traffic cannot produce a false positive between two queries.
                with transaction.get_connection().cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            report = run_ledger_checks()
        self.stdout.write(report.format())
        if not report.ok:
            raise CommandError(f"ledger drift: {len(report.violations)} violation(s)", returncode=1)
