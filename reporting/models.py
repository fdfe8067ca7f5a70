"""Volume summaries (issue 11): per market and per user, by local day, month and year.

Every row is derived from `trading.Trade` by `reporting.rollup` and can be recomputed
from it at any time (`rebuild`), so none of these tables is a source of truth: they exist
so that reads over months and years touch a handful of rows instead of millions of trades.

A *day* is a local day of `settings.REPORTING_TIME_ZONE`; months and years are sets of
whole local days in one of two calendars (Gregorian or Jalali), stored with their
`first_day` and `last_day` so readers never have to convert calendars in SQL. Volumes and
fees are in the market's own assets (base and quote), numeric(48,18): a year of a busy
market's quote volume overflows the trade table's numeric(36,18).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from markets.models import Market

VOLUME: dict[str, Any] = {"max_digits": 48, "decimal_places": 18}  # Any: field kwargs
ZERO = Decimal("0")


class Calendar(models.TextChoices):
    GREGORIAN = "gregorian", _("Gregorian")
    JALALI = "jalali", _("Jalali (Solar Hijri)")


class VolumeCursor(models.Model):
    """How far the rollup has read one market's trades (`Trade.seq`, unique per market).

    The rollup locks this row (SELECT ... FOR UPDATE) for its whole transaction, which is
    what makes two concurrent rollups of one market safe: the second waits, then sees the
    first one's cursor and has nothing left to do.
    """

    market = models.OneToOneField(
        Market, on_delete=models.CASCADE, primary_key=True, related_name="volume_cursor"
    )
    last_trade_seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = (
            models.CheckConstraint(
                condition=Q(last_trade_seq__gte=0), name="volume_cursor_seq_gte_0"
            ),
        )

    def __str__(self) -> str:
        return f"{self.market_id} @ {self.last_trade_seq}"


class _MarketTotals(models.Model):
    """The totals a market row carries; fees in the market's quote asset."""

    base_volume = models.DecimalField(**VOLUME, default=ZERO)
    quote_volume = models.DecimalField(**VOLUME, default=ZERO)
    trade_count = models.BigIntegerField(default=0)
    maker_fees = models.DecimalField(**VOLUME, default=ZERO)
    taker_fees = models.DecimalField(**VOLUME, default=ZERO)
    trader_count = models.IntegerField(default=0)

    class Meta:
        abstract = True


class _UserTotals(models.Model):
    """One user's side of a market's trades: `fees_paid` is the fee of that user's side."""

    base_volume = models.DecimalField(**VOLUME, default=ZERO)
    quote_volume = models.DecimalField(**VOLUME, default=ZERO)
    trade_count = models.BigIntegerField(default=0)
    fees_paid = models.DecimalField(**VOLUME, default=ZERO)

    class Meta:
        abstract = True


def _non_negative(prefix: str, fields: tuple[str, ...]) -> tuple[models.CheckConstraint, ...]:
    """CHECK (field >= 0) for each field: a negative volume can only be a rollup bug."""
    return tuple(
        models.CheckConstraint(condition=Q(**{f"{name}__gte": 0}), name=f"{prefix}_{name}_gte_0")
        for name in fields
    )


MARKET_FIELDS = (
    "base_volume",
    "quote_volume",
    "trade_count",
    "maker_fees",
    "taker_fees",
    "trader_count",
)
USER_FIELDS = ("base_volume", "quote_volume", "trade_count", "fees_paid")


def _period_checks(prefix: str, *, monthly: bool) -> tuple[models.CheckConstraint, ...]:
    checks = [
        models.CheckConstraint(condition=Q(last_day__gte=F("first_day")), name=f"{prefix}_days")
    ]
    if monthly:
        checks.append(
            models.CheckConstraint(
                condition=Q(month__gte=1, month__lte=12), name=f"{prefix}_month_1_12"
            )
        )
    return tuple(checks)


class MarketDailyVolume(_MarketTotals):
    """One market's totals over one local day; the unique key is the selector's index."""

    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=["market", "day"], name="mdv_market_day"),
            *_non_negative("mdv", MARKET_FIELDS),
        )

    def __str__(self) -> str:
        return f"{self.market_id} {self.day}"


class UserDailyVolume(_UserTotals):
    """One user's side of one market's trades over one local day."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=["user", "market", "day"], name="udv_user_market_day"),
            *_non_negative("udv", USER_FIELDS),
        )
        # The rollup recomputes a market's days (and months from them): (market, day).
        indexes = (models.Index(fields=["market", "day"], name="udv_market_day"),)

    def __str__(self) -> str:
        return f"{self.user_id} {self.market_id} {self.day}"


class MarketMonthlyVolume(_MarketTotals):
    """One market's totals over one month (whole local days first_day..last_day)."""

    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="+", db_index=False)
    calendar = models.CharField(max_length=16, choices=Calendar.choices)
    year = models.IntegerField()
    month = models.IntegerField()
    first_day = models.DateField()
    last_day = models.DateField()

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=["market", "calendar", "year", "month"], name="mmv_market_cal_month"
            ),
            *_non_negative("mmv", MARKET_FIELDS),
            *_period_checks("mmv", monthly=True),
        )

    def __str__(self) -> str:
        return f"{self.market_id} {self.calendar} {self.year}-{self.month:02d}"


class MarketYearlyVolume(_MarketTotals):
    """One market's totals over one year (whole local days first_day..last_day)."""

    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="+", db_index=False)
    calendar = models.CharField(max_length=16, choices=Calendar.choices)
    year = models.IntegerField()
    first_day = models.DateField()
    last_day = models.DateField()

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=["market", "calendar", "year"], name="myv_market_cal_year"
            ),
            *_non_negative("myv", MARKET_FIELDS),
            *_period_checks("myv", monthly=False),
        )

    def __str__(self) -> str:
        return f"{self.market_id} {self.calendar} {self.year}"


class UserMonthlyVolume(_UserTotals):
    """One user's side of one market's trades over one month."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="+", db_index=False)
    calendar = models.CharField(max_length=16, choices=Calendar.choices)
    year = models.IntegerField()
    month = models.IntegerField()
    first_day = models.DateField()
    last_day = models.DateField()

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=["user", "market", "calendar", "year", "month"],
                name="umv_user_market_cal_month",
            ),
            *_non_negative("umv", USER_FIELDS),
            *_period_checks("umv", monthly=True),
        )
        indexes = (
            models.Index(fields=["market", "calendar", "year", "month"], name="umv_market_month"),
        )

    def __str__(self) -> str:
        return f"{self.user_id} {self.market_id} {self.calendar} {self.year}-{self.month:02d}"


class UserYearlyVolume(_UserTotals):
    """One user's side of one market's trades over one year."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="+", db_index=False)
    calendar = models.CharField(max_length=16, choices=Calendar.choices)
    year = models.IntegerField()
    first_day = models.DateField()
    last_day = models.DateField()

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=["user", "market", "calendar", "year"], name="uyv_user_market_cal_year"
            ),
            *_non_negative("uyv", USER_FIELDS),
            *_period_checks("uyv", monthly=False),
        )
        indexes = (models.Index(fields=["market", "calendar", "year"], name="uyv_market_year"),)

    def __str__(self) -> str:
        return f"{self.user_id} {self.market_id} {self.calendar} {self.year}"
