"""`manage.py forecast --market BTC-USDT`: the staff forecast page, as text.

Options mirror the page's query: --interval (1d), --horizon (30 steps of the interval),
--pattern=-5,1, --unit vol|fixed:<price>, --seed 1, --paths 10000, --level (repeatable).
Every bad input is a CommandError with the same message the page shows; nothing is written.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from exchange.errors import DomainError
from reporting.forecast import Forecast, forecast
from reporting.statistics.montecarlo import QUANTILES


def report_lines(result: Forecast) -> list[str]:
    """The forecast as the lines the command prints."""
    chain, stats, cal = result.chain, result.pattern, result.calibration
    lines = [
        f"Market {result.market.symbol} at {result.interval}: {result.candles} candles, "
        f"last close {result.last_close}",
        f"Unit: {result.unit_kind} = {result.unit} {result.market.quote.code} per unit",
        f"Markov order (BIC): {chain.order}; BIC by order: "
        + ", ".join(f"k={k} {bic:.1f}" for k, bic in sorted(result.bics.items())),
        f"Pattern {stats.pattern}: {stats.runs} runs, {stats.repetitions} repetitions, "
        f"longest {stats.longest_run}, history ends with {stats.trailing_repetitions}",
        f"Pattern start share: {stats.start_share:.4f} "
        f"(95% Wilson {stats.start_share_interval[0]:.4f}-{stats.start_share_interval[1]:.4f})",
    ]
    if stats.continuation is not None:
        low, high = stats.continuation_interval
        lines.append(
            f"Pattern continuation after a repetition: {stats.continuation:.4f} "
            f"(95% Wilson {low:.4f}-{high:.4f})"
        )
    for length, (runs, share, (low, high)) in stats.run_lengths.items():
        lines.append(f"Run length {length}: {runs} runs, share {share:.4f} ({low:.4f}-{high:.4f})")
    lines.append(
        f"Pattern continues all {result.horizon} steps: Monte Carlo {result.continuation_mc:.6f}"
        f" ± {result.continuation_mc_error:.6f}, exact from the chain "
        f"{result.continuation_exact:.6g}"
    )
    lines.append(
        "Fan (step: " + " / ".join(f"{int(q * 100)}%" for q in QUANTILES) + f"), "
        f"{result.paths} paths, seed {result.seed}:"
    )
    for step, prices in result.fan:
        lines.append(f"  {step}: " + " / ".join(str(p) for p in prices))
    for level, below, above in result.levels:
        lines.append(f"P(end below {level}) = {below:.4f}; P(end above {level}) = {above:.4f}")
    lines += [
        f"Calibration: walk-forward over {cal.origins} origins, horizon {cal.horizon}",
        f"  coverage 50% band: chain {cal.coverage_50[0]:.3f}, baseline {cal.coverage_50[1]:.3f}",
        f"  coverage 90% band: chain {cal.coverage_90[0]:.3f}, baseline {cal.coverage_90[1]:.3f}",
        "  PIT histogram (10 bins): " + " ".join(str(c) for c in cal.pit_histogram),
        f"  CRPS (units): chain {cal.crps[0]:.4f}, baseline {cal.crps[1]:.4f}",
        f"Verdict: {cal.verdict}",
    ]
    return lines


class Command(BaseCommand):
    help = "Print the price-pattern forecast of a market (Markov chain, Monte Carlo, backtest)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--market", required=True)
        parser.add_argument("--interval", default="1d")
        parser.add_argument("--horizon", default="30")
        parser.add_argument("--pattern", default="-5,1")
        parser.add_argument("--unit", default="vol")
        parser.add_argument("--seed", default="1")
        parser.add_argument("--paths", default="10000")
        parser.add_argument("--level", action="append", default=[])

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = forecast(
                options["market"],
                interval=options["interval"],
                horizon=options["horizon"],
                pattern=options["pattern"],
                unit=options["unit"],
                seed=options["seed"],
                paths=options["paths"],
                levels=options["level"],
            )
        except DomainError as error:
            raise CommandError(f"{error.message} [{error.code}]") from None
        for line in report_lines(result):
            self.stdout.write(line)
