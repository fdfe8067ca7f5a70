"""Reads of the accounts app: balances, the ledger, deposits and withdrawals.

Views, APIs and reporting read through here; nothing here writes. Ownership is part of
every per-user selector: another user's id looks exactly like a missing one (NotFound).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from accounts.amounts import money_context
from accounts.errors import NotFound, UnknownAsset
from accounts.models import (
    ZERO,
    ApiKey,
    Asset,
    Balance,
    Deposit,
    KycLevel,
    Posting,
    User,
    WebhookEndpoint,
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


@dataclass(frozen=True, slots=True)
class LevelLimit:
    """One asset's daily withdrawal limit at the user's KYC level and at the next one.

    None for a limit means no limit row: withdrawing that asset is not allowed at that level.
    `used_today` counts what the withdrawal service counts against the limit: today's (UTC)
    requests that were not rejected, fees excluded.
    """

    asset: Asset
    daily_amount: Decimal | None
    next_daily_amount: Decimal | None
    used_today: Decimal

    @property
    def left_today(self) -> Decimal:
        if self.daily_amount is None:
            return ZERO
        return max(self.daily_amount - self.used_today, ZERO)


def next_kyc_level(level: int) -> int | None:
    """The KYC level above `level`, or None at the highest."""
    higher = [value for value in KycLevel.values if value > level]
    return min(higher) if higher else None


def withdrawn_today(*, user: User) -> dict[int, Decimal]:
    """Per asset id, the amount of the user's withdrawals requested today (UTC) and not
    rejected: the sum the service's daily-limit check compares with the limit."""
    day_start = timezone.make_aware(datetime.combine(timezone.now().date(), time.min))
    rows = (
        Withdrawal.objects.filter(user=user, created_at__gte=day_start)
        .exclude(status=WithdrawalStatus.REJECTED)
        .values("asset_id")
        .annotate(total=Sum("amount"))
        .values_list("asset_id", "total")
    )
    return {asset_id: total or ZERO for asset_id, total in rows}


def list_level_limits(*, user: User) -> list[LevelLimit]:
    """The daily withdrawal limits of every active asset at the user's level and the next,
    with today's used amount. Three queries whatever the number of assets."""
    level = user.kyc_level
    following = next_kyc_level(level)
    levels = [level] if following is None else [level, following]
    amounts = {
        (asset_id, kyc_level): daily
        for asset_id, kyc_level, daily in WithdrawalLimit.objects.filter(
            kyc_level__in=levels
        ).values_list("asset_id", "kyc_level", "daily_amount")
    }
    used = withdrawn_today(user=user)
    return [
        LevelLimit(
            asset=asset,
            daily_amount=amounts.get((asset.pk, level)),
            next_daily_amount=None if following is None else amounts.get((asset.pk, following)),
            used_today=used.get(asset.pk, ZERO),
        )
        for asset in list_assets()
    ]


def count_active_api_keys(*, user: User) -> int:
    """The user's API keys that are neither revoked nor expired."""
    return (
        ApiKey.objects.filter(user=user, revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .count()
    )


def count_webhook_endpoints(*, user: User) -> tuple[int, int]:
    """(all, active) of the user's webhook endpoints."""
    counts = WebhookEndpoint.objects.filter(user=user).aggregate(
        total=Count("pk"), active=Count("pk", filter=Q(is_active=True))
    )
    return counts["total"], counts["active"]


def estimate_value(
    *, asset_code: str, amount: Decimal, quote_code: str, prices: Mapping[str, Decimal]
) -> Decimal | None:
    """`amount` of `asset_code` in `quote_code` at `prices` (base code -> last price in the
    quote): the quote itself counts 1:1, an asset without a price is None. Exact: no
    rounding here, the template rounds for display."""
    if asset_code == quote_code:
        return amount
    price = prices.get(asset_code)
    if price is None:
        return None
    with money_context():  # 36 x 36 digits fit in its 80: exact, or it raises
        return amount * price
