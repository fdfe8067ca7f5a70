"""Business-rule errors of the markets app, each with a stable machine `code`."""

from __future__ import annotations

from exchange.errors import DomainError, NotFound


class MarketNotFound(NotFound):
    """No market with that symbol or id."""

    code = "market_not_found"


class InvalidMarketRules(DomainError):
    """A staff edit would leave the market's rules inconsistent."""

    code = "market_rules_invalid"


class InvalidFeeTier(DomainError):
    """A staff edit of the fee schedule is out of range or collides with another tier."""

    code = "fee_tier_invalid"
