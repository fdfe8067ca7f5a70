"""Markets: symbol, base/quote, tick, lot, fees, status (issue 4).

A market's rules are read from its row on every order (one indexed lookup), so a staff edit
in the admin takes effect on the next order without a restart.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Asset, User

MONEY: dict[str, Any] = {"max_digits": 36, "decimal_places": 18}  # Any: field kwargs
RATE: dict[str, Any] = {"max_digits": 10, "decimal_places": 6}
ZERO = Decimal("0")


class MarketStatus(models.TextChoices):
    TRADING = "trading", _("Trading")
    CANCEL_ONLY = "cancel_only", _("Cancel only")
    HALTED = "halted", _("Halted")


class Market(models.Model):
    """A pair traded against one order book: `base` is bought and sold, priced in `quote`.

    Prices are multiples of `tick_size`, quantities multiples of `lot_size`; fees are rates
    charged in the quote asset. `price_band_pct` bounds limit prices around `last_price`
    (0 disables the band). TRADING accepts orders and cancels, CANCEL_ONLY only cancels,
    HALTED refuses both. An unlisted market (`listed` False: simulate's SIM markets, a
    market being prepared) trades like any other but no user-facing list shows it.
    """

    symbol = models.CharField(max_length=32, unique=True)
    base = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="base_markets")
    quote = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="quote_markets")
    tick_size = models.DecimalField(**MONEY)
    lot_size = models.DecimalField(**MONEY)
    min_quantity = models.DecimalField(**MONEY, default=ZERO)
    max_quantity = models.DecimalField(**MONEY)
    min_notional = models.DecimalField(**MONEY, default=ZERO)
    maker_fee = models.DecimalField(**RATE, default=ZERO)
    taker_fee = models.DecimalField(**RATE, default=ZERO)
    price_band_pct = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        default=Decimal("10"),
        help_text=_("Limit prices must lie within ±this % of the last price; 0 disables."),
    )
    status = models.CharField(
        max_length=12, choices=MarketStatus.choices, default=MarketStatus.TRADING
    )
    last_price = models.DecimalField(**MONEY, null=True, blank=True)
    listed = models.BooleanField(
        default=True, help_text=_("Shown to users; unlisted markets are for tests and staff.")
    )
    # The settlement sequence the market data (DepthLevel rows) reflects: the depth
    # snapshot's lastUpdateId. Written by settlement with every batch, in its transaction.
    book_seq = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("symbol",)
        constraints = (
            models.CheckConstraint(
                condition=~Q(base=models.F("quote")), name="market_base_ne_quote"
            ),
            models.CheckConstraint(condition=Q(tick_size__gt=0), name="market_tick_gt_0"),
            models.CheckConstraint(condition=Q(lot_size__gt=0), name="market_lot_gt_0"),
            models.CheckConstraint(condition=Q(min_quantity__gte=0), name="market_min_qty_gte_0"),
            models.CheckConstraint(
                condition=Q(max_quantity__gte=models.F("min_quantity")),
                name="market_max_qty_gte_min",
            ),
            models.CheckConstraint(
                condition=Q(min_notional__gte=0), name="market_min_notional_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(maker_fee__gte=0, maker_fee__lt=1), name="market_maker_fee_range"
            ),
            models.CheckConstraint(
                condition=Q(taker_fee__gte=0, taker_fee__lt=1), name="market_taker_fee_range"
            ),
            models.CheckConstraint(
                condition=Q(price_band_pct__gte=0, price_band_pct__lt=100),
                name="market_band_range",
            ),
            models.CheckConstraint(
                condition=Q(last_price__isnull=True) | Q(last_price__gt=0),
                name="market_last_price_gt_0",
            ),
        )

    def __str__(self) -> str:
        return self.symbol

    @property
    def is_trading(self) -> bool:
        return self.status == MarketStatus.TRADING

    @property
    def accepts_cancels(self) -> bool:
        return self.status in (MarketStatus.TRADING, MarketStatus.CANCEL_ONLY)


class FeeTier(models.Model):
    """One step of the fee schedule: users whose 30-day quote volume (in
    settings.FEE_TIER_REFERENCE_ASSET) reaches `min_volume_30d` pay these rates.

    An order pays, per side, the LOWER of its market's fee and its user's tier's fee
    (markets.fees.order_rates), fixed on the order at acceptance. Thresholds are unique, so
    a volume always falls in exactly one tier (the highest threshold it reaches).
    """

    name = models.CharField(max_length=64, unique=True)
    min_volume_30d = models.DecimalField(**MONEY, unique=True)
    maker_fee = models.DecimalField(**RATE)
    taker_fee = models.DecimalField(**RATE)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("min_volume_30d",)
        constraints = (
            models.CheckConstraint(condition=Q(min_volume_30d__gte=0), name="feetier_min_gte_0"),
            models.CheckConstraint(
                condition=Q(maker_fee__gte=0, maker_fee__lt=1), name="feetier_maker_fee_range"
            ),
            models.CheckConstraint(
                condition=Q(taker_fee__gte=0, taker_fee__lt=1), name="feetier_taker_fee_range"
            ),
        )

    def __str__(self) -> str:
        return self.name


class UserFeeTier(models.Model):
    """A user's assigned tier and the 30-day volume it was assigned from (nightly,
    reporting.tiers). `tier` None: no tier reached, the market's fees apply."""

    user = models.OneToOneField(
        User, on_delete=models.CASCADE, primary_key=True, related_name="fee_tier"
    )
    tier = models.ForeignKey(
        FeeTier, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    volume_30d = models.DecimalField(max_digits=48, decimal_places=18, default=ZERO)
    assigned_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.user_id}: {self.tier_id}"


class CandleInterval(models.TextChoices):
    """The intervals stored by settlement; every other one is aggregated from these."""

    MINUTE = "1m", "1m"
    HOUR = "1h", "1h"
    DAY = "1d", "1d"


VOLUME: dict[str, Any] = {"max_digits": 48, "decimal_places": 18}  # sums of MONEY amounts


class Candle(models.Model):
    """One stored interval of one market's trades (UTC), written by settlement in the same
    transaction as the trades it counts (markets.sql.candle_upsert), so it never disagrees
    with the trades table. Intervals without a trade have no row.

    open and close are the prices of the interval's first and last trade by trade id (the
    trade's per-market sequence); the taker-buy volumes count trades whose taker bought.
    """

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="+", db_index=False)
    interval = models.CharField(max_length=3, choices=CandleInterval.choices)
    open_time = models.DateTimeField()
    open = models.DecimalField(**MONEY)
    high = models.DecimalField(**MONEY)
    low = models.DecimalField(**MONEY)
    close = models.DecimalField(**MONEY)
    volume = models.DecimalField(**VOLUME)
    quote_volume = models.DecimalField(**VOLUME)
    trade_count = models.BigIntegerField()
    taker_buy_volume = models.DecimalField(**VOLUME)
    taker_buy_quote_volume = models.DecimalField(**VOLUME)
    first_trade_id = models.BigIntegerField()
    last_trade_id = models.BigIntegerField()

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=["market", "interval", "open_time"], name="candle_market_interval_time"
            ),
            models.CheckConstraint(
                condition=Q(trade_count__gt=0, first_trade_id__lte=models.F("last_trade_id")),
                name="candle_has_trades",
            ),
        )

    def __str__(self) -> str:
        return f"{self.market_id} {self.interval} {self.open_time:%Y-%m-%d %H:%M}"


class DepthLevel(models.Model):
    """One price level of a market's order book as settlement last saw it: the engine's total
    at that price after the event `Market.book_seq` names. Written in settlement's transaction
    (markets.sql.depth_upsert / depth_delete) from the engine's absolute level totals, so
    the levels and `book_seq` always describe the same instant; an empty level has no row.
    """

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="+", db_index=False)
    side = models.CharField(max_length=4)  # "buy" (bids) or "sell" (asks)
    price = models.DecimalField(**MONEY)
    quantity = models.DecimalField(**MONEY)

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=["market", "side", "price"], name="depthlevel_market_side_price"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="depthlevel_quantity_gt_0"),
            models.CheckConstraint(condition=Q(side__in=["buy", "sell"]), name="depthlevel_side"),
        )

    def __str__(self) -> str:
        return f"{self.market_id} {self.side} {self.price}"
