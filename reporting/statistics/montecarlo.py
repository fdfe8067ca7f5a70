"""Monte Carlo paths of a fitted chain, and what they say about the horizon.

Paths are drawn with a seeded numpy Generator (the same seed, the same fan), all paths at
once per step: each path keeps its context id, draws its next symbol by inverse CDF of the
context's row, and shifts the symbol into its context. Outputs are in units (cumulative
moves from the last close); the glue turns them into prices. The Monte Carlo error of a
probability p from N paths is sqrt(p(1-p)/N) (reported beside it). The pattern's
continuation probability is also computed exactly: the continuation is one specific
sequence, and its probability under the chain is the product of the transition
probabilities along it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reporting.statistics.markov import MarkovChain

QUANTILES = (0.05, 0.25, 0.50, 0.75, 0.95)


@dataclass(frozen=True)
class Simulation:
    """Simulated unit moves, `moves[path, step]`, after the history's last close."""

    moves: NDArray[np.int64]

    @property
    def paths(self) -> int:
        return int(self.moves.shape[0])

    @property
    def cumulative(self) -> NDArray[np.int64]:
        return np.cumsum(self.moves, axis=1)

    def fan(self, quantiles: tuple[float, ...] = QUANTILES) -> NDArray[np.float64]:
        """`fan[q, step]`: the quantiles of the cumulative move after each step."""
        return np.quantile(self.cumulative, quantiles, axis=0)

    def end_probability(self, level: float, *, below: bool) -> float:
        """P(the cumulative move at the horizon is below (or above) `level` units)."""
        end = self.cumulative[:, -1]
        return float(np.mean(end < level) if below else np.mean(end > level))

    def sequence_probability(self, sequence: ArrayLike) -> float:
        """The share of paths whose moves are exactly `sequence` (the horizon's length)."""
        target = np.asarray(sequence, dtype=np.int64)
        return float(np.mean(np.all(self.moves == target[None, :], axis=1)))


def mc_error(p: float, paths: int) -> float:
    """One standard error of a Monte Carlo probability."""
    return math.sqrt(max(p * (1 - p), 0.0) / max(paths, 1))


def simulate(
    chain: MarkovChain,
    history: ArrayLike,
    horizon: int,
    paths: int,
    rng: np.random.Generator,
) -> Simulation:
    """`paths` continuations of `history` (unit moves in the chain's alphabet) for
    `horizon` steps."""
    size = len(chain.alphabet)
    modulus = size**chain.order
    symbols = np.asarray(chain.alphabet, dtype=np.int64)
    cdf = np.cumsum(chain.probs, axis=1)
    cdf[:, -1] = 1.0  # rounding must never leave a draw past the last symbol
    ctx = np.full(paths, chain.context(history), dtype=np.int64)
    out = np.empty((paths, horizon), dtype=np.int64)
    for step in range(horizon):
        draws = rng.random(paths)
        choice = (draws[:, None] >= cdf[ctx]).sum(axis=1)
        out[:, step] = symbols[choice]
        ctx = (ctx * size + choice) % modulus if chain.order else ctx
    return Simulation(out)


def pattern_path(history: ArrayLike, pattern: tuple[int, ...], horizon: int) -> list[int]:
    """The next `horizon` moves if the pattern goes on: in phase with the history's end
    (a history ending (-5, +1, -5) continues +1, -5, ...), else from the pattern's start."""
    data = [int(m) for m in np.asarray(history, dtype=np.int64)]
    size, phase = len(pattern), 0
    for done in range(size - 1, 0, -1):  # the longest pattern prefix the history ends with
        if len(data) >= done and data[-done:] == list(pattern[:done]):
            phase = done
            break
    return [pattern[(phase + i) % size] for i in range(horizon)]


def sequence_probability(chain: MarkovChain, history: ArrayLike, sequence: list[int]) -> float:
    """The chain's exact probability of `sequence` following `history` (0 when it holds a
    move the chain's alphabet lacks)."""
    if any(move not in chain.alphabet for move in sequence):
        return 0.0
    moves = [int(m) for m in np.asarray(history, dtype=np.int64)]
    probability = 1.0
    for move in sequence:
        probability *= chain.next_probabilities(moves)[move]
        moves.append(move)
    return probability
