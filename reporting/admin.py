"""Staff pages for the volume summaries: read-only, because only the rollup writes them
(a wrong row is fixed by `rollup_volumes --from`, never by hand)."""

from __future__ import annotations

from django.contrib import admin

from exchange.admin import ReadOnlyAdmin
from reporting.models import (
    MarketDailyVolume,
    MarketMonthlyVolume,
    MarketYearlyVolume,
    UserDailyVolume,
    UserMonthlyVolume,
    UserYearlyVolume,
    VolumeCursor,
)

_MARKET_TOTALS = ("base_volume", "quote_volume", "trade_count", "maker_fees", "taker_fees")
_USER_TOTALS = ("base_volume", "quote_volume", "trade_count", "fees_paid")


@admin.register(VolumeCursor)
class VolumeCursorAdmin(ReadOnlyAdmin):
    list_display = ("market", "last_trade_seq", "updated_at")
    list_select_related = ("market",)


@admin.register(MarketDailyVolume)
class MarketDailyVolumeAdmin(ReadOnlyAdmin):
    list_display = ("market", "day", *_MARKET_TOTALS, "trader_count")
    list_filter = ("market",)
    list_select_related = ("market",)
    date_hierarchy = "day"
    ordering = ("-day", "market")


@admin.register(MarketMonthlyVolume)
class MarketMonthlyVolumeAdmin(ReadOnlyAdmin):
    list_display = (
        "market",
        "calendar",
        "year",
        "month",
        "first_day",
        "last_day",
        *_MARKET_TOTALS,
        "trader_count",
    )
    list_filter = ("calendar", "market")
    list_select_related = ("market",)
    ordering = ("-first_day", "calendar", "market")


@admin.register(MarketYearlyVolume)
class MarketYearlyVolumeAdmin(ReadOnlyAdmin):
    list_display = (
        "market",
        "calendar",
        "year",
        "first_day",
        "last_day",
        *_MARKET_TOTALS,
        "trader_count",
    )
    list_filter = ("calendar", "market")
    list_select_related = ("market",)
    ordering = ("-first_day", "calendar", "market")


@admin.register(UserDailyVolume)
class UserDailyVolumeAdmin(ReadOnlyAdmin):
    list_display = ("user", "market", "day", *_USER_TOTALS)
    list_filter = ("market",)
    search_fields = ("user__email",)
    list_select_related = ("user", "market")
    date_hierarchy = "day"
    ordering = ("-day", "market")


@admin.register(UserMonthlyVolume)
class UserMonthlyVolumeAdmin(ReadOnlyAdmin):
    list_display = ("user", "market", "calendar", "year", "month", *_USER_TOTALS)
    list_filter = ("calendar", "market")
    search_fields = ("user__email",)
    list_select_related = ("user", "market")
    ordering = ("-first_day", "calendar", "market")


@admin.register(UserYearlyVolume)
class UserYearlyVolumeAdmin(ReadOnlyAdmin):
    list_display = ("user", "market", "calendar", "year", *_USER_TOTALS)
    list_filter = ("calendar", "market")
    search_fields = ("user__email",)
    list_select_related = ("user", "market")
    ordering = ("-first_day", "calendar", "market")
