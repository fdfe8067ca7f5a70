"""What a trader sees of their fees: their tier, the schedule, their 30-day volume, the rates
each market charges them, and their own volume per market (the user's fees page).

Read-only. The 30-day volume is computed the way the nightly assignment computes it
(reporting.tiers.thirty_day_volumes over the 30 closed local days before today), so the page
says what the next assignment will decide; the tier in force is the one assigned last.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings

from accounts.models import User
from markets.fees import order_rates
from markets.models import FeeTier, Market, MarketStatus, UserFeeTier
from reporting.calendars import local_today
from reporting.selectors import UserVolume, volume
from reporting.tiers import WINDOW_DAYS, thirty_day_volumes

ZERO = Decimal("0")


@dataclass(frozen=True, slots=True)
class MarketFees:
    """One market's rates: its own, and what this user pays (the lower per side)."""

    market: Market
    maker_fee: Decimal
    taker_fee: Decimal
    your_maker_fee: Decimal
    your_taker_fee: Decimal
    volume: UserVolume

    @property
    def discounted(self) -> bool:
        return (self.your_maker_fee, self.your_taker_fee) != (self.maker_fee, self.taker_fee)


@dataclass(frozen=True, slots=True)
class FeeOverview:
    reference_asset: str
    tiers: list[FeeTier]
    tier: FeeTier | None  # in force now (assigned last)
    assigned_volume: Decimal | None  # the 30-day volume it was assigned from
    assigned_at: datetime | None
    volume_30d: Decimal  # the 30 closed days before today, as the next assignment counts
    window_start: date
    window_end: date  # inclusive
    next_tier: FeeTier | None  # the next threshold above volume_30d
    to_next_tier: Decimal | None
    markets: list[MarketFees]


def fee_overview(user: User, today: date | None = None) -> FeeOverview:
    """The fees page of `user`: a handful of queries whatever their history."""
    today = today or local_today()
    tiers = list(FeeTier.objects.order_by("min_volume_30d"))
    assigned = UserFeeTier.objects.select_related("tier").filter(user=user).first()
    tier = assigned.tier if assigned is not None else None
    volume_30d = thirty_day_volumes(today, user.pk).get(user.pk, ZERO)
    next_tier = next((t for t in tiers if t.min_volume_30d > volume_30d), None)
    window_start = today - timedelta(days=WINDOW_DAYS)
    own = volume(market=None, user=user, start=window_start, end=today)
    if not isinstance(own, dict):  # unreachable: market=None answers one totals per market
        raise TypeError("volume(market=None) must answer per market")
    rates = None if tier is None else (tier.maker_fee, tier.taker_fee)
    markets = []
    for market in Market.objects.exclude(status=MarketStatus.HALTED).order_by("symbol"):
        maker, taker = order_rates(
            market_maker=market.maker_fee, market_taker=market.taker_fee, tier=rates
        )
        totals = own.get(market.symbol)
        markets.append(
            MarketFees(
                market=market,
                maker_fee=market.maker_fee,
                taker_fee=market.taker_fee,
                your_maker_fee=maker,
                your_taker_fee=taker,
                volume=totals
                if isinstance(totals, UserVolume)
                else UserVolume(ZERO, ZERO, 0, ZERO),
            )
        )
    return FeeOverview(
        reference_asset=settings.FEE_TIER_REFERENCE_ASSET,
        tiers=tiers,
        tier=tier,
        assigned_volume=assigned.volume_30d if assigned is not None else None,
        assigned_at=assigned.assigned_at if assigned is not None else None,
        volume_30d=volume_30d,
        window_start=window_start,
        window_end=today - timedelta(days=1),
        next_tier=next_tier,
        to_next_tier=None if next_tier is None else next_tier.min_volume_30d - volume_30d,
        markets=markets,
    )
