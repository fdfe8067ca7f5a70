"""The price-pattern forecast's mathematics: pure functions over integer move sequences.

The question (issue 11): "the market fell 5 units, then rose 1 unit, and this pattern
repeated; how can we predict the market a month ahead, and how probable is it?" The honest
answer has four parts, one module each:

- units: candle-close moves discretised into integer units (a fixed price unit, or a
  volatility unit = the median absolute close-to-close move over the fit window), rounded
  and clipped to +-max_units.
- markov: an empirical Markov chain of order k over the unit moves (state = the last k
  moves) with additive (Laplace) smoothing; k in 0..3 chosen by BIC (the penalty keeps a
  short history from picking a large k that merely memorises it).
- pattern: how often the pattern (default (-5, +1)) recurs in the history, its run-length
  distribution and Wilson score intervals for the proportions.
- montecarlo / calibration: seeded simulation of the chain over a horizon (quantile fan,
  end-level probabilities, the probability the pattern continues for the whole horizon,
  also exactly from the chain), and a walk-forward backtest (50%/90% band coverage, PIT
  histogram, CRPS) against a random-walk baseline that resamples historical moves.

Floats: prices are money elsewhere (Decimal at the edges, integers inside), but a forecast
is a statistic, not money: the glue (reporting.forecast) converts closes to numpy floats
here and converts displayed prices back to Decimal quantized to the market's tick. Nothing
here imports Django. Limits, said plainly: the chain is stationary and fitted to one
window; moves are additive in price (not log), so a long horizon may reach prices no market
would quote; a pattern seen a few times gives wide intervals, and the chain can only
extrapolate what the window shows. The calibration section, not the fit, is the evidence.
"""

from reporting.statistics.calibration import Calibration, backtest
from reporting.statistics.markov import MarkovChain, fit_chain, select_order
from reporting.statistics.montecarlo import (
    Simulation,
    mc_error,
    pattern_path,
    sequence_probability,
    simulate,
)
from reporting.statistics.pattern import PatternStats, pattern_stats, wilson_interval
from reporting.statistics.units import to_units, vol_unit

__all__ = [
    "Calibration",
    "MarkovChain",
    "PatternStats",
    "Simulation",
    "backtest",
    "fit_chain",
    "mc_error",
    "pattern_path",
    "pattern_stats",
    "select_order",
    "sequence_probability",
    "simulate",
    "to_units",
    "vol_unit",
    "wilson_interval",
]
