"""Recent trades of a market, by trade id (the per-market sequence) or time.

`trade_table()` is market data's one reach into trading's tables: markets may not import
trading (an import-linter contract: trading builds on markets), but the trades settlement
writes are what candles are checked and rebuilt against and what recent trades are. The
model is looked up by name through the app registry, so a renamed table or field fails
loudly here rather than in a string of SQL elsewhere.

Being built (issue #10): `recent_trades` is filled in by the trades work.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db import models


def trade_model() -> type[models.Model]:
    """trading's Trade model (settlement's trade rows)."""
    return apps.get_model("trading", "Trade")


def trade_table() -> str:
    """The trades table's name, for market data's set-based SQL."""
    return str(trade_model()._meta.db_table)


def recent_trades(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - replaced in this issue
    raise NotImplementedError
