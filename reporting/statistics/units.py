"""Close-to-close moves in integer units.

A fixed unit (a price step the user names, e.g. 5 USDT) keeps "fell 5 units" literal; a
volatility unit (the median absolute move of the window) makes the alphabet comparable
across markets and quiet or busy periods: a move of -5 then means "five typical moves
down". The median, not the standard deviation, so one crash does not shrink every other
move to zero units. Rounding to the nearest unit and clipping to +-max_units bounds the
alphabet (at most 2*max_units + 1 symbols), which the chain's state count depends on.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def vol_unit(closes: ArrayLike) -> float:
    """The median absolute close-to-close move (0.0 when the series never moves)."""
    moves = np.abs(np.diff(np.asarray(closes, dtype=float)))
    nonzero = moves[moves > 0]
    return float(np.median(nonzero)) if nonzero.size else 0.0


def to_units(closes: ArrayLike, unit: float, max_units: int = 10) -> NDArray[np.int64]:
    """The moves between consecutive closes in `unit`s, rounded and clipped to +-max_units."""
    if not unit > 0:
        raise ValueError("The unit must be positive.")
    moves = np.diff(np.asarray(closes, dtype=float)) / unit
    return np.clip(np.rint(moves), -max_units, max_units).astype(np.int64)
