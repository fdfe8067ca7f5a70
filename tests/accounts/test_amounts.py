"""parse_amount: the one gate every amount passes. Pure: no database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.amounts import decimal_places, parse_amount
from accounts.errors import InvalidAmount


@pytest.mark.parametrize(
    ("_case", "raw", "decimals", "expected"),
    [
        ("integer string", "12", 6, Decimal("12")),
        ("decimal string", "12.345678", 6, Decimal("12.345678")),
        ("trailing zeros beyond precision", "1.50000000", 1, Decimal("1.50000000")),
        ("leading zeros", "007.5", 2, Decimal("7.5")),
        ("python int", 42, 0, Decimal("42")),
        ("decimal instance", Decimal("0.00000001"), 8, Decimal("0.00000001")),
        ("decimal with positive exponent", Decimal("1E+3"), 0, Decimal("1000")),
        (
            "largest amount",
            "999999999999999999.999999999999999999",
            18,
            Decimal("999999999999999999.999999999999999999"),
        ),
    ],
)
def test_accepts_plain_amounts(_case, raw, decimals, expected):
    value = parse_amount(raw, decimals=decimals)

    assert value == expected
    assert str(value) == str(expected)


@pytest.mark.parametrize(
    ("_case", "raw", "code"),
    [
        ("negative", "-5", "amount_not_positive"),
        ("negative decimal", Decimal("-0.1"), "amount_not_positive"),
        ("negative zero", Decimal("-0"), "amount_not_positive"),
        ("zero", "0", "amount_not_positive"),
        ("zero with decimals", "0.000", "amount_not_positive"),
        ("zero int", 0, "amount_not_positive"),
        ("NaN string", "NaN", "amount_invalid"),
        ("NaN decimal", Decimal("NaN"), "amount_invalid"),
        ("signalling NaN", Decimal("sNaN"), "amount_invalid"),
        ("Infinity string", "Infinity", "amount_invalid"),
        ("inf decimal", Decimal("Infinity"), "amount_invalid"),
        ("exponent", "1e3", "amount_invalid"),
        ("negative exponent", "1E-2", "amount_invalid"),
        ("plus sign", "+5", "amount_invalid"),
        ("leading space", " 5", "amount_invalid"),
        ("trailing newline", "5\n", "amount_invalid"),
        ("non-breaking space", "5\u00a0", "amount_invalid"),
        ("arabic-indic digits", "\u0661\u0662", "amount_invalid"),
        ("fullwidth digits", "\uff11\uff12", "amount_invalid"),
        ("underscore separator", "1_000", "amount_invalid"),
        ("comma", "1,5", "amount_invalid"),
        ("hex", "0x10", "amount_invalid"),
        ("bare point", ".5", "amount_invalid"),
        ("dangling point", "5.", "amount_invalid"),
        ("empty", "", "amount_invalid"),
        ("float", 1.5, "amount_invalid"),
        ("bool", True, "amount_invalid"),
        ("none", None, "amount_invalid"),
        ("list", ["1"], "amount_invalid"),
        ("too precise for the asset", "1.1234567", "amount_too_precise"),
        ("too precise decimal", Decimal("0.0000001"), "amount_too_precise"),
        ("10,000 characters", "1" * 10_000, "amount_too_long"),
        ("41 characters", "1." + "0" * 38 + "1", "amount_too_long"),
        ("huge int", 10**50, "amount_too_long"),
        ("too large", "1" + "0" * 18, "amount_too_large"),
        (
            "decimal hiding a 31st place",
            Decimal("1.0000000000000000000000000000001"),
            "amount_too_precise",
        ),
    ],
)
def test_rejects_with_a_stable_code(_case, raw, code):
    with pytest.raises(InvalidAmount) as caught:
        parse_amount(raw, decimals=6, field="quantity")

    assert caught.value.code == code
    assert caught.value.field == "quantity"


def test_asset_decimals_bound_precision():
    class FakeAsset:
        decimals = 0

    with pytest.raises(InvalidAmount) as caught:
        parse_amount("1.5", asset=FakeAsset())  # type: ignore[arg-type]

    assert caught.value.code == "amount_too_precise"
    assert parse_amount("15", asset=FakeAsset()) == Decimal("15")  # type: ignore[arg-type]


def test_zero_only_when_allowed():
    assert parse_amount("0", allow_zero=True) == Decimal("0")


def test_decimal_places_ignores_trailing_zeros_without_rounding():
    assert decimal_places(Decimal("1.500")) == 1
    assert decimal_places(Decimal("100")) == 0
    assert decimal_places(Decimal("0.000")) == 0
    assert decimal_places(Decimal("1.0000000000000000000000000000001")) == 31
