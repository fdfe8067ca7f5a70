"""format_amount and the asset_amount filter: the asset's places, never a lost digit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template import Context, Template

from accounts.amounts import format_amount
from accounts.models import Asset


@pytest.mark.parametrize(
    ("_case", "value", "decimals", "shown"),
    [
        ("column value, USDT", "60000.000000000000000000", 6, "60000.000000"),
        ("padded, BTC", "0.5", 8, "0.50000000"),
        ("no places", "5000000000.000000000000000000", 0, "5000000000"),
        ("exponent form", "1E+3", 2, "1000.00"),
        ("finer than the asset: every digit kept", "0.123456789", 6, "0.123456789"),
        ("negative zero", "-0E-18", 2, "0.00"),
        ("negative posting", "-1.5", 8, "-1.50000000"),
        (
            "36 digits",
            "999999999999999999.999999999999999999",
            18,
            "999999999999999999.999999999999999999",
        ),
    ],
)
def test_format_amount(_case: str, value: str, decimals: int, shown: str) -> None:
    assert format_amount(Decimal(value), decimals) == shown


def test_asset_amount_filter_uses_the_asset() -> None:
    template = Template(
        "{% load money %}{{ value|asset_amount:asset }}|{{ none|asset_amount:asset }}"
    )
    asset = Asset(code="BTC", name="Bitcoin", decimals=8)

    shown = template.render(Context({"value": Decimal("2"), "none": None, "asset": asset}))

    assert shown == "2.00000000|"
