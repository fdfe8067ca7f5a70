"""Template filters for showing money: exact decimals, never floats or exponents."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

from django import template

from accounts.amounts import format_amount
from accounts.models import Asset

register = template.Library()
# Rounding an estimate for display: wide enough for any DecimalField(36, 18) product, and
# allowed to round (money_context would raise on the Inexact that rounding is).
_DISPLAY_ROUNDING = Context(prec=80, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])


@register.filter
def amount(value: Decimal | None) -> str:
    """Decimal without trailing zeros or exponent: 1.50000000 -> "1.5", 1E+3 -> "1000"."""
    if value is None:
        return "0"
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


@register.filter
def asset_amount(value: Decimal | None, asset: Asset) -> str:
    """The amount with its asset's places: `{{ w.amount|asset_amount:w.asset }}` -> "0.50000000"."""
    if value is None:
        return ""
    return format_amount(value, asset.decimals)


@register.filter
def percent(value: Decimal | None) -> str:
    """A rate as a percentage without trailing zeros: Decimal("0.0015") -> "0.15%"."""
    if value is None:
        return ""
    return f"{amount(value * 100)}%"


@register.filter
def rounded_amount(value: Decimal | None, asset: Asset) -> str:
    """An estimate rounded (half-even) to its asset's places, for display: 30000.0049999
    USDT -> "30000.005000". Only for figures that are estimates, never for balances."""
    if value is None:
        return ""
    rounded = value.quantize(Decimal(1).scaleb(-asset.decimals), context=_DISPLAY_ROUNDING)
    return format_amount(rounded, asset.decimals)
