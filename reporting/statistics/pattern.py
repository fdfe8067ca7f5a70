"""How often a move pattern (default (-5, +1)) recurs, and how long its runs last.

A run is a maximal stretch of consecutive whole repetitions of the pattern, found greedily
left to right (a run of 3 is the pattern three times back to back). Reported: the number of
runs, the share of positions that start a repetition, the run-length distribution, and the
empirical continuation probability (after a whole repetition, is the next one whole too?).
Proportions carry Wilson score intervals (95%): unlike the normal approximation they stay
inside [0, 1] and are honest for the small counts a rare pattern gives; a bootstrap would
need many runs to resample, which a rare pattern does not have.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

Interval = tuple[float, float]


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> Interval:
    """The Wilson score interval of successes/trials ((0, 1) when there are no trials)."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class PatternStats:
    """The pattern's record in a move history."""

    pattern: tuple[int, ...]
    moves: int
    runs: int
    repetitions: int
    start_share: float
    start_share_interval: Interval
    run_lengths: dict[int, tuple[int, float, Interval]]  # length -> (runs, share, interval)
    continuation: float | None
    continuation_interval: Interval
    longest_run: int
    trailing_repetitions: int  # whole repetitions the history ends with


def _repetitions_at(moves: list[int], pattern: tuple[int, ...], i: int) -> int:
    size, count = len(pattern), 0
    while moves[i + count * size : i + (count + 1) * size] == list(pattern):
        count += 1
    return count


def pattern_stats(moves: ArrayLike, pattern: tuple[int, ...]) -> PatternStats:
    """The record of `pattern` (non-empty) in `moves`."""
    if not pattern:
        raise ValueError("The pattern must not be empty.")
    data = [int(m) for m in np.asarray(moves, dtype=np.int64)]
    size, runs, starts = len(pattern), [], 0
    i = 0
    while i + size <= len(data):
        reps = _repetitions_at(data, pattern, i)
        if reps:
            runs.append(reps)
            starts += reps
            i += reps * size
        else:
            i += 1
    positions = max(len(data) - size + 1, 0)
    lengths = Counter(runs)
    run_lengths = {
        length: (n, n / len(runs), wilson_interval(n, len(runs)))
        for length, n in sorted(lengths.items())
    }
    # Each whole repetition is followed by another (success) or not (a run's end), except a
    # repetition at the very end of the history, whose follower is unknown.
    trailing = 0
    while len(data) >= (trailing + 1) * size and data[
        len(data) - (trailing + 1) * size : len(data) - trailing * size
    ] == list(pattern):
        trailing += 1
    followed = sum(runs) - len(runs)
    trials = sum(runs) - (1 if trailing and runs and data[-size:] == list(pattern) else 0)
    return PatternStats(
        pattern=tuple(pattern),
        moves=len(data),
        runs=len(runs),
        repetitions=sum(runs),
        start_share=starts / positions if positions else 0.0,
        start_share_interval=wilson_interval(starts, positions),
        run_lengths=run_lengths,
        continuation=followed / trials if trials > 0 else None,
        continuation_interval=wilson_interval(followed, trials),
        longest_run=max(runs, default=0),
        trailing_repetitions=trailing,
    )
