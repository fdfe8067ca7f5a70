"""Parsing and validation of money amounts: pure functions, no database access.

One gate for every amount that enters a service, whatever the transport: a form string,
a JSON string, an int or a Decimal. Floats are refused outright (a binary float cannot say
0.1), and so is anything a person would not type as a plain decimal: exponents, signs,
whitespace, underscores, non-ASCII digits, NaN and Infinity.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from decimal import (
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import TYPE_CHECKING

from accounts.errors import InvalidAmount

if TYPE_CHECKING:
    from accounts.models import Asset

MAX_AMOUNT_CHARS = 40  # 18 integer digits + point + 18 decimals, with room for leading zeros
LEDGER_DECIMALS = 18  # DecimalField(36, 18): the finest unit the database stores
MAX_INTEGER_DIGITS = 18  # 36 digits minus 18 decimal places
# Python's default context keeps 28 digits; a DecimalField(36, 18) value has up to 36, so
# money arithmetic runs in a wide context that raises instead of rounding silently.
MONEY_CONTEXT = Context(prec=80, traps=[Inexact, InvalidOperation, Overflow, DivisionByZero])
_PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")  # [0-9], not \d: no Arabic/fullwidth digits


def money_context() -> AbstractContextManager[Context]:
    """`with money_context():` sums and differences of money are exact, or raise."""
    return localcontext(MONEY_CONTEXT)


def decimal_places(value: Decimal) -> int:
    """How many decimal places `value` really uses (trailing zeros do not count).

    Reads the digit tuple instead of calling normalize(), which rounds to the context's
    28 digits and would hide a 31st decimal.
    """
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # "n", "N" or "F": not a finite number
        raise ValueError(f"{value!r} is not finite")
    if exponent >= 0 or not any(digits):
        return 0
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -exponent - trailing_zeros)


def parse_amount(
    raw: object,
    *,
    asset: Asset | None = None,
    decimals: int | None = None,
    field: str = "amount",
    allow_zero: bool = False,
) -> Decimal:
    """Return `raw` as a positive Decimal with at most the asset's decimal places.

    Accepts str (plain "123" or "123.45" only), int and Decimal. The precision bound is
    `decimals`, else `asset.decimals`, else the ledger's 18. Raises InvalidAmount with a
    stable code (amount_invalid, amount_not_positive, amount_too_precise, amount_too_long,
    amount_too_large) and `field` set. Pure: safe to call before any lock is taken.
    """
    places = decimals if decimals is not None else (asset.decimals if asset else LEDGER_DECIMALS)
    value = _to_decimal(raw, field=field)
    if not value.is_finite():
        raise InvalidAmount("Amount must be a finite number.", field=field)
    if value.is_signed() or (value == 0 and not allow_zero):
        raise InvalidAmount(
            "Amount must be greater than zero.", field=field, code="amount_not_positive"
        )
    if len(value.as_tuple().digits) > MAX_AMOUNT_CHARS:
        raise InvalidAmount("Amount is too long.", field=field, code="amount_too_long")
    if decimal_places(value) > places:
        raise InvalidAmount(
            f"Amount has more than {places} decimal places.",
            field=field,
            code="amount_too_precise",
        )
    if value != 0 and value.adjusted() >= MAX_INTEGER_DIGITS:
        raise InvalidAmount("Amount is too large.", field=field, code="amount_too_large")
    if value.as_tuple().exponent > 0:  # type: ignore[operator]  # finite: exponent is an int
        value = value.quantize(Decimal(1))  # Decimal("1E+3") -> Decimal("1000")
    return value


def _to_decimal(raw: object, *, field: str) -> Decimal:
    # bool before int: True is an int, and "amount=True" is a client bug, not 1.
    if isinstance(raw, (bool, float)):
        raise InvalidAmount("Amount must be a decimal string, not a float or boolean.", field=field)
    if isinstance(raw, Decimal):
        return raw
    if isinstance(raw, int):
        if len(str(abs(raw))) > MAX_AMOUNT_CHARS:
            raise InvalidAmount("Amount is too long.", field=field, code="amount_too_long")
        return Decimal(raw)
    if not isinstance(raw, str):
        raise InvalidAmount("Amount must be a decimal string.", field=field)
    if len(raw) > MAX_AMOUNT_CHARS:  # checked first: a 10,000-char string costs nothing
        raise InvalidAmount("Amount is too long.", field=field, code="amount_too_long")
    if raw.startswith("-") and _PLAIN_DECIMAL.fullmatch(raw[1:]):
        raise InvalidAmount(
            "Amount must be greater than zero.", field=field, code="amount_not_positive"
        )
    if not _PLAIN_DECIMAL.fullmatch(raw):
        raise InvalidAmount(
            "Amount must be a plain decimal such as 12.5 (no sign, exponent or spaces).",
            field=field,
        )
    try:
        return Decimal(raw)
    except InvalidOperation as exc:  # unreachable after the regex; kept as a fence
        raise InvalidAmount("Amount is not a number.", field=field) from exc


def format_amount(value: Decimal, decimals: int) -> str:
    """`value` as plain text with the asset's `decimals` places: 0.5 BTC -> "0.50000000".

    For display only. Never rounds: a value with more places than the asset (a ledger
    rounding row) shows all of them, so what is on screen always adds up. No exponent, no
    thousands separator, "-0" shows as "0".
    """
    places = max(decimals, decimal_places(value))
    with money_context():
        exact = value.quantize(Decimal(1).scaleb(-places))
    text = format(exact, "f")
    return text[1:] if text.startswith("-") and not exact else text
