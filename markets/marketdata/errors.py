"""Errors of the market-data selectors, each with a stable machine `code` and the field."""

from __future__ import annotations

from exchange.errors import DomainError


class InvalidInterval(DomainError):
    """Not one of the candle intervals (1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M)."""

    code = "interval_invalid"


class InvalidLimit(DomainError):
    """A limit that is not an integer within the selector's range."""

    code = "limit_invalid"


class InvalidRange(DomainError):
    """A start or end time that is not a time, or a start after the end."""

    code = "range_invalid"


class InvalidTradeId(DomainError):
    """A trade id that is not a non-negative integer."""

    code = "trade_id_invalid"
