"""Recent trades of a market, by trade id (the per-market sequence) or time.

Being built (issue #10): `recent_trades` is filled in by the trades work.
"""

from __future__ import annotations

from typing import Any


def recent_trades(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - replaced in this issue
    raise NotImplementedError
