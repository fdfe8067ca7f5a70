"""What every market-data reader shares: the market argument, limits and decimal places."""

from __future__ import annotations

from decimal import Decimal

from markets import selectors  # module, not names: markets.selectors re-exports this package
from markets.marketdata.errors import InvalidLimit
from markets.models import Market


def resolve_market(market: Market | str) -> Market:
    """A Market (used as is) or a symbol (read now); MarketNotFound for anything else."""
    if isinstance(market, Market):
        return market
    return selectors.get_market(symbol=market)  # raises MarketNotFound for a bad symbol or type


def check_limit(limit: object, *, maximum: int, field: str = "limit") -> int:
    """`limit` as an int in 1..maximum (bool and non-integers refused); InvalidLimit."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidLimit("The limit must be an integer.", field=field)
    if not 1 <= limit <= maximum:
        raise InvalidLimit(f"The limit must be between 1 and {maximum}.", field=field)
    return limit


def places(step: Decimal) -> int:
    """The decimal places of a tick or lot size (0.010000000000000000 -> 2, 10 -> 0)."""
    return max(0, -int(step.normalize().as_tuple().exponent))


def quantizer(step: Decimal) -> Decimal:
    """The exponent to quantize prices (tick) or quantities (lot) to: 0.01 for 2 places."""
    return Decimal(1).scaleb(-places(step))


def notional_quantizer(market: Market) -> Decimal:
    """The exponent of exact quote amounts (price x quantity): tick places + lot places.

    A trade's notional always fits it exactly, so quote volumes summed from trades are shown
    unrounded (the quote asset's own decimals are for balances, which settlement rounds).
    """
    return Decimal(1).scaleb(-min(18, places(market.tick_size) + places(market.lot_size)))
