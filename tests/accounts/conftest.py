"""Accounts fixtures: assets by code, 2FA, limits, the journal-based hold source.

The ledger auditor after every database test (opt-out: `ledger_drift`) is in tests/conftest.py.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

from accounts.models import (
    Asset,
    KycLevel,
    Posting,
    User,
    WithdrawalLimit,
)


def enable_totp(user: User) -> Authenticator:
    """Give the user a TOTP authenticator, stored the way allauth stores one (encrypted)."""
    return TOTP.activate(user, generate_totp_secret()).instance


@pytest.fixture
def usdt(assets: dict[str, Asset]) -> Asset:
    """USDT, 6 decimals, min withdrawal 10, fee 1."""
    asset = assets["USDT"]
    Asset.objects.filter(pk=asset.pk).update(
        min_withdrawal=Decimal("10"), withdrawal_fee=Decimal("1")
    )
    asset.refresh_from_db()
    return asset


@pytest.fixture
def btc(assets: dict[str, Asset]) -> Asset:
    """BTC, 8 decimals, no fee, no minimum."""
    return assets["BTC"]


@pytest.fixture
def limits(usdt: Asset, btc: Asset) -> None:
    """Daily limits: USDT 1,000 / 50,000 / 1,000,000 by KYC level; BTC 10 at every level."""
    for level, amount in [
        (KycLevel.EMAIL_VERIFIED, "1000"),
        (KycLevel.IDENTITY, "50000"),
        (KycLevel.FULL, "1000000"),
    ]:
        WithdrawalLimit.objects.create(asset=usdt, kyc_level=level, daily_amount=Decimal(amount))
    for value in KycLevel.values:
        WithdrawalLimit.objects.create(asset=btc, kyc_level=value, daily_amount=Decimal("10"))


@pytest.fixture
def alice_2fa(alice: User) -> User:
    """Alice with TOTP set up."""
    enable_totp(alice)
    return alice


def order_holds_from_journal() -> dict[tuple[int, int], Decimal]:
    """A hold source for tests without trading: what order holds and releases left locked."""
    from django.db.models import Sum

    from accounts.models import EntryKind

    rows = (
        Posting.objects.filter(
            bucket="locked",
            entry__kind__in=[EntryKind.ORDER_HOLD, EntryKind.ORDER_RELEASE],
            balance__user__isnull=False,
        )
        .values("balance__user_id", "asset_id")
        .annotate(total=Sum("amount"))
    )
    return {(row["balance__user_id"], row["asset_id"]): row["total"] for row in rows}


@pytest.fixture
def order_holds(settings: Any) -> None:
    """Register the journal-based order hold source with the auditor (INV-5)."""
    settings.LEDGER_HOLD_SOURCES = [
        *settings.LEDGER_HOLD_SOURCES,
        "tests.accounts.conftest.order_holds_from_journal",
    ]
