"""Walk-forward calibration of the chain against a random-walk baseline.

At each origin t (evenly spaced, at most `origins` of them, each with at least `min_fit`
moves before it) the chain of the chosen order is refitted to moves[:t] only, and both
models forecast the sum of the next `horizon` moves (in units) with `paths` draws:
- the chain: simulate() from moves[:t];
- the baseline: a random walk whose steps are resampled iid from moves[:t] (the chain of
  order 0 without smoothing, i.e. the empirical move distribution).
Scores against the realised sum: the PIT (the forecast CDF at the outcome, at the mid-point
of its jump because the moves are discrete; uniform when calibrated) in a 10-bin histogram;
coverage of the central 50% and 90% bands (nominal 0.5 and 0.9), read from the same mid-PIT
(inside the 50% band = PIT in [0.25, 0.75]): inclusive sample quantiles would count every
outcome on a band's edge atom as covered and over-cover a discrete forecast, while a
randomised PIT would score a perfect point forecast at 50%; and the CRPS of each ensemble
(E|X - y| - E|X - X'|/2, lower is better). The verdict compares the mean CRPS difference
with twice its standard error over the origins: the chain "beats" the baseline only when
the difference is clearly below zero; otherwise the sentence says it is no better. The
origins overlap when horizon > step, so the standard error is optimistic: a caution, said
in the output. Calibration is in units, so the price unit's rounding is not scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reporting.statistics.markov import fit_chain
from reporting.statistics.montecarlo import simulate


@dataclass(frozen=True)
class Calibration:
    """The backtest's scores (model first, baseline second where paired)."""

    origins: int
    horizon: int
    coverage_50: tuple[float, float]
    coverage_90: tuple[float, float]
    pit_histogram: tuple[int, ...]
    crps: tuple[float, float]
    crps_difference_se: float
    beats_baseline: bool
    verdict: str


def crps_ensemble(samples: NDArray[np.float64], outcome: float) -> float:
    """The CRPS of an ensemble at `outcome` (the sorted-sample form of E|X-y| - E|X-X'|/2)."""
    x = np.sort(samples)
    n = len(x)
    spread = float(np.sum((2 * np.arange(1, n + 1) - n - 1) * x)) / (n * n)
    return float(np.mean(np.abs(x - outcome))) - spread


def _scores(samples: NDArray[np.float64], outcome: float) -> tuple[bool, bool, float, float]:
    pit = float(np.mean(samples < outcome) + 0.5 * np.mean(samples == outcome))
    return (
        bool(0.25 <= pit <= 0.75),
        bool(0.05 <= pit <= 0.95),
        pit,
        crps_ensemble(samples, outcome),
    )


def backtest(
    moves: ArrayLike,
    order: int,
    horizon: int,
    *,
    paths: int = 400,
    origins: int = 40,
    min_fit: int = 50,
    alpha: float = 0.5,
    seed: int = 1,
) -> Calibration:
    """The walk-forward scores of the order-`order` chain over `moves` (ValueError when
    the history leaves no origin)."""
    data = np.asarray(moves, dtype=np.int64)
    last = len(data) - horizon
    if last < min_fit:
        raise ValueError("Too little history to backtest this horizon.")
    points = sorted(set(np.linspace(min_fit, last, num=min(origins, last - min_fit + 1))))
    rng = np.random.default_rng(seed)
    model: list[tuple[bool, bool, float, float]] = []
    base: list[tuple[bool, bool, float, float]] = []
    for t in (int(p) for p in points):
        past, outcome = data[:t], float(data[t : t + horizon].sum())
        chain = fit_chain(past, min(order, t - 1), alpha=alpha)
        model.append(
            _scores(
                simulate(chain, past, horizon, paths, rng).cumulative[:, -1].astype(float), outcome
            )
        )
        steps = rng.choice(past, size=(paths, horizon), replace=True)
        base.append(_scores(steps.sum(axis=1).astype(float), outcome))
    diff = np.array([m[3] - b[3] for m, b in zip(model, base, strict=True)])
    se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else math.inf
    crps = (float(np.mean([m[3] for m in model])), float(np.mean([b[3] for b in base])))
    beats = bool(diff.mean() < -2 * se) if math.isfinite(se) else False
    if beats:
        verdict = (
            f"The chain beats the random-walk baseline: mean CRPS {crps[0]:.3f} against "
            f"{crps[1]:.3f} units over {len(diff)} origins (difference beyond 2 standard errors)."
        )
    else:
        verdict = (
            f"The chain is no better than the random-walk baseline: mean CRPS {crps[0]:.3f} "
            f"against {crps[1]:.3f} units over {len(diff)} origins (difference within 2 "
            "standard errors); treat the pattern as noise for forecasting."
        )
    pits = np.array([m[2] for m in model])
    histogram = np.histogram(pits, bins=10, range=(0.0, 1.0))[0]
    return Calibration(
        origins=len(diff),
        horizon=horizon,
        coverage_50=(float(np.mean([m[0] for m in model])), float(np.mean([b[0] for b in base]))),
        coverage_90=(float(np.mean([m[1] for m in model])), float(np.mean([b[1] for b in base]))),
        pit_histogram=tuple(int(c) for c in histogram),
        crps=crps,
        crps_difference_se=se,
        beats_baseline=beats,
        verdict=verdict,
    )
