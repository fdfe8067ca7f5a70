"""An empirical Markov chain of order k over integer unit moves.

State = the last k moves (k = 0 is the iid model: the moves' frequencies). Transition
probabilities are counts plus an additive (Laplace) `alpha` per symbol, so a context seen
once does not claim certainty and an unseen context falls back to uniform. The order is
chosen by BIC over k in 0..3 on the same predicted moves (every order is scored from move
3 on, so the likelihoods are comparable); the parameter count is (symbols - 1) per context
actually seen, the usual count for a sparse empirical chain. BIC rather than held-out
likelihood because the histories are short (a few hundred daily candles): a held-out slice
would be shorter still, and its score noisier than the penalty's bias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

MAX_ORDER = 3


@dataclass(frozen=True)
class MarkovChain:
    """A fitted chain: `probs[context, j]` = P(next = alphabet[j] | context)."""

    order: int
    alphabet: tuple[int, ...]
    probs: NDArray[np.float64]
    counts: NDArray[np.float64]
    log_likelihood: float
    observations: int
    parameters: int

    @property
    def bic(self) -> float:
        """-2 log L + parameters * ln(observations): lower is better."""
        return -2.0 * self.log_likelihood + self.parameters * math.log(max(self.observations, 1))

    def index(self, move: int) -> int:
        """The alphabet position of `move`; ValueError when the chain never saw it."""
        return self.alphabet.index(int(move))

    def context(self, history: ArrayLike) -> int:
        """The context id of the last `order` moves of `history` (symbols outside the
        alphabet are ValueError)."""
        moves = list(np.asarray(history, dtype=np.int64)[len(np.asarray(history)) - self.order :])
        if len(moves) < self.order:
            raise ValueError("The history is shorter than the chain's order.")
        size = len(self.alphabet)
        ctx = 0
        for move in moves:
            ctx = ctx * size + self.index(int(move))
        return ctx

    def next_probabilities(self, history: ArrayLike) -> dict[int, float]:
        """P(next move) after `history`, as {move: probability}."""
        row = self.probs[self.context(history)]
        return {move: float(p) for move, p in zip(self.alphabet, row, strict=True)}


def _encode(moves: NDArray[np.int64], alphabet: tuple[int, ...]) -> NDArray[np.int64]:
    lookup = {move: i for i, move in enumerate(alphabet)}
    return np.fromiter((lookup[int(m)] for m in moves), dtype=np.int64, count=len(moves))


def fit_chain(
    moves: ArrayLike,
    order: int,
    *,
    alpha: float = 0.5,
    alphabet: tuple[int, ...] | None = None,
    start: int | None = None,
) -> MarkovChain:
    """Fit the order-`order` chain to `moves`, scoring the moves from `start` (default:
    `order`) on. `alphabet` defaults to the moves seen (sorted); pass a larger one to give
    unseen symbols (e.g. a pattern's) the smoothing mass."""
    data = np.asarray(moves, dtype=np.int64)
    if not 0 <= order <= MAX_ORDER:
        raise ValueError(f"The order must be in 0..{MAX_ORDER}.")
    first = order if start is None else start
    if first < order or len(data) <= first:
        raise ValueError("Too few moves for this order.")
    symbols = tuple(sorted({int(m) for m in data} | set(alphabet or ())))
    size = len(symbols)
    idx = _encode(data, symbols)
    contexts = np.zeros(len(data), dtype=np.int64)  # contexts[t] = the last `order` before t
    ctx, modulus = 0, size**order
    for t in range(len(data)):
        contexts[t] = ctx
        ctx = (ctx * size + int(idx[t])) % modulus if order else 0
    counts = np.zeros((modulus, size))
    np.add.at(counts, (contexts[first:], idx[first:]), 1.0)
    probs = (counts + alpha) / (counts.sum(axis=1, keepdims=True) + alpha * size)
    loglik = float(np.log(probs[contexts[first:], idx[first:]]).sum())
    seen = int((counts.sum(axis=1) > 0).sum())
    return MarkovChain(
        order=order,
        alphabet=symbols,
        probs=probs,
        counts=counts,
        log_likelihood=loglik,
        observations=len(data) - first,
        parameters=seen * (size - 1),
    )


def select_order(
    moves: ArrayLike,
    *,
    alpha: float = 0.5,
    alphabet: tuple[int, ...] | None = None,
    max_order: int = MAX_ORDER,
) -> tuple[MarkovChain, dict[int, float]]:
    """The lowest-BIC chain over k in 0..max_order, and every order's BIC (for display)."""
    fits = [
        fit_chain(moves, k, alpha=alpha, alphabet=alphabet, start=max_order)
        for k in range(max_order + 1)
    ]
    best = min(fits, key=lambda chain: chain.bic)
    return best, {chain.order: chain.bic for chain in fits}
