"""`manage.py check_ledger`: run the ledger invariants and the liveness checks, fail on any."""

from __future__ import annotations

from argparse import ArgumentParser, ArgumentTypeError
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.checks import run_audit


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ArgumentTypeError(f"not a number of seconds: {raw!r}") from None
    if not 0 <= value < float("inf"):
        raise ArgumentTypeError(f"must be a finite number of seconds >= 0, got {raw!r}")
    return value


class Command(BaseCommand):
    help = (
        "Check the ledger invariants (INV-1..INV-5 and registered extras) and that no work"
        " (unmatched orders, unsettled events, unpublished outbox rows) is older than"
        " --max-age; exit 1 on any violation."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--max-age",
            type=_seconds,
            default=None,
            metavar="SECONDS",
            help="liveness limit in seconds (default: settings.LIVENESS_MAX_AGE_SECONDS)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        max_age = options["max_age"]
        if max_age is None:
            max_age = float(settings.LIVENESS_MAX_AGE_SECONDS)
        report = run_audit(liveness_max_age_seconds=max_age)
        self.stdout.write(report.format())
        money = sum(len(r.violations) for r in report.results if not r.is_liveness)
        overdue = sum(len(r.violations) for r in report.results if r.is_liveness)
        problems = [f"ledger drift: {money} violation(s)"] if money else []
        if overdue:
            problems.append(f"pipeline stalled: {overdue} overdue item(s) older than {max_age:g} s")
        if problems:
            raise CommandError("; ".join(problems), returncode=1)
