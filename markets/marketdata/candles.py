"""Candles (klines): the stored 1m/1h/1d rows, and every other interval aggregated from them.

Being built (issue #10): `candles` is filled in by the candles work.
"""

from __future__ import annotations

from typing import Any


def candles(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - replaced in this issue
    raise NotImplementedError
