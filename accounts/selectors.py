"""Reads of the accounts app: balances, the ledger, deposits and withdrawals.

Views, APIs and reporting read through here; nothing here writes. Ownership is part of
every per-user selector: another user's id looks exactly like a missing one (NotFound).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet

from accounts.errors import NotFound, UnknownAsset
from accounts.models import (
    ZERO,
    Asset,
    Balance,
    Deposit,
    Posting,
    User,
    Withdrawal,
    WithdrawalLimit,
    WithdrawalStatus,
)


@dataclass(frozen=True, slots=True)
class Holding:
    """What a user holds of one asset (zeros when they never had any)."""

    asset_code: str
    available: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.available + self.locked


def get_asset(*, code: str) -> Asset:
    """The active-or-not asset with this code (case-insensitive); UnknownAsset otherwise."""
    if not isinstance(code, str) or not 0 < len(code) <= 12:
        raise UnknownAsset("Unknown asset.", field="asset")
    asset = Asset.objects.filter(code__iexact=code).first()
    if asset is None:
        raise UnknownAsset("Unknown asset.", field="asset")
    return asset


def list_assets(*, active_only: bool = True) -> QuerySet[Asset]:
    """Assets ordered by code."""
    assets = Asset.objects.all()
    return assets.filter(is_active=True) if active_only else assets


def get_balance(*, user: User, asset: Asset) -> Holding:
    """The user's available and locked amounts of one asset (zeros if no row yet)."""
    row = Balance.objects.filter(user=user, asset=asset).values_list("available", "locked").first()
    available, locked = row if row is not None else (ZERO, ZERO)
    return Holding(asset_code=asset.code, available=available, locked=locked)


def list_balances(*, user: User) -> QuerySet[Balance]:
    """The user's balance rows with their assets, ordered by asset code."""
    return Balance.objects.filter(user=user).select_related("asset").order_by("asset__code")


def list_ledger(*, user: User) -> QuerySet[Posting]:
    """The user's postings, newest first, with entry and asset loaded."""
    return (
        Posting.objects.filter(balance__user=user).select_related("entry", "asset").order_by("-pk")
    )


def list_deposits(*, user: User) -> QuerySet[Deposit]:
    """The user's credited deposits, newest first."""
    return Deposit.objects.filter(user=user).select_related("asset").order_by("-pk")


def list_withdrawals(*, user: User) -> QuerySet[Withdrawal]:
    """The user's withdrawals, newest first."""
    return Withdrawal.objects.filter(user=user).select_related("asset").order_by("-pk")


def get_withdrawal_for_user(*, user: User, withdrawal_id: object) -> Withdrawal:
    """One of the user's withdrawals; NotFound for a missing id or someone else's."""
    if isinstance(withdrawal_id, bool) or not isinstance(withdrawal_id, int):
        raise NotFound("No such withdrawal.", field="withdrawal_id")
    withdrawal = (
        Withdrawal.objects.filter(pk=withdrawal_id, user=user).select_related("asset").first()
    )
    if withdrawal is None:
        raise NotFound("No such withdrawal.", field="withdrawal_id")
    return withdrawal


def list_open_withdrawals() -> QuerySet[Withdrawal]:
    """Staff queue: pending and approved withdrawals, oldest first."""
    return (
        Withdrawal.objects.filter(status__in=(WithdrawalStatus.PENDING, WithdrawalStatus.APPROVED))
        .select_related("user", "asset")
        .order_by("pk")
    )


def find_withdrawal_limit(*, asset: Asset, kyc_level: int) -> Decimal | None:
    """The daily limit for a KYC level, or None (None means: not allowed to withdraw)."""
    return (
        WithdrawalLimit.objects.filter(asset=asset, kyc_level=kyc_level)
        .values_list("daily_amount", flat=True)
        .first()
    )
