"""24 h rolling tickers from candles and the depth book.

Being built (issue #10): `ticker` and `tickers` are filled in by the ticker work.
"""

from __future__ import annotations

from typing import Any


def ticker(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - replaced in this issue
    raise NotImplementedError


def tickers(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - replaced in this issue
    raise NotImplementedError
