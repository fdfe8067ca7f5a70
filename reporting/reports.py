"""The staff reports' queries: volume and fees, traders, sign-ups, funds, top users.

Every series is read from the volume summaries (`reporting.models`), never from trades: a
period wholly inside the chosen range is one monthly or yearly row, and only the range's
two edge pieces (a part of a month or a year) are summed from daily rows, so a ten-year
report reads a few hundred rows however many trades exist. The summaries hold what the
rollup has read (it runs every minute), so the last minute of trades may be missing.

Periods are built here in Python (`periods`), day by day with jdatetime for the Jalali
calendar, so labels and boundaries are the ones the summaries were written with. Amounts
stay `Decimal`; `plain` turns them into the strings charts and CSVs carry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import jdatetime
from django.conf import settings
from django.db import models
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Asset, Deposit, User, Withdrawal, WithdrawalStatus
from markets.models import Market
from reporting.models import (
    Calendar,
    MarketDailyVolume,
    MarketMonthlyVolume,
    MarketYearlyVolume,
    UserDailyVolume,
    UserMonthlyVolume,
    UserYearlyVolume,
)

ZERO = Decimal("0")
TOP_USERS = 20  # a leaderboard a page shows whole


class Granularity(models.TextChoices):
    DAY = "day", _("day")
    MONTH = "month", _("month")
    YEAR = "year", _("year")


def reporting_zone() -> ZoneInfo:
    return ZoneInfo(settings.REPORTING_TIME_ZONE)


def local_today() -> date:
    return timezone.now().astimezone(reporting_zone()).date()


def local_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, the day after end 00:00) in the reporting zone, as aware datetimes."""
    zone = reporting_zone()
    return (
        datetime.combine(start, time(), tzinfo=zone),
        datetime.combine(end + timedelta(days=1), time(), tzinfo=zone),
    )


def plain(value: Decimal) -> str:
    """A Decimal as plain digits without exponent or trailing zeros: 1.50 -> "1.5"."""
    text = format(value.normalize(), "f") if value else "0"
    return text


@dataclass(frozen=True, slots=True)
class Period:
    """A day, month or year of one calendar, clipped to the report's range.

    `whole` says the period lies entirely inside the range (so its summary row answers it);
    `year`/`month` are the calendar's numbers, the summary rows' key.
    """

    label: str
    first_day: date
    last_day: date
    year: int
    month: int
    whole: bool


def _key(day: date, granularity: Granularity, calendar: Calendar) -> tuple[int, int, int]:
    if calendar == Calendar.JALALI:
        j = jdatetime.date.fromgregorian(date=day)
        y, m, d = j.year, j.month, j.day
    else:
        y, m, d = day.year, day.month, day.day
    if granularity == Granularity.YEAR:
        return y, 0, 0
    if granularity == Granularity.MONTH:
        return y, m, 0
    return y, m, d


def _label(key: tuple[int, int, int], granularity: Granularity, calendar: Calendar) -> str:
    y, m, d = key
    sep = "/" if calendar == Calendar.JALALI else "-"
    if granularity == Granularity.YEAR:
        return f"{y:04d}"
    if granularity == Granularity.MONTH:
        return f"{y:04d}{sep}{m:02d}"
    return f"{y:04d}{sep}{m:02d}{sep}{d:02d}"


def periods(start: date, end: date, granularity: Granularity, calendar: Calendar) -> list[Period]:
    """The periods covering [start, end] in order; the first and last may be partial.

    A period is whole when the days just outside the range belong to other periods, which
    is checked with the same key function, so no month table is written by hand.
    """
    result: list[Period] = []
    day = start
    while day <= end:
        key = _key(day, granularity, calendar)
        first = day
        while (
            day + timedelta(days=1) <= end
            and _key(day + timedelta(days=1), granularity, calendar) == key
        ):
            day += timedelta(days=1)
        last = day
        whole = _key(first - timedelta(days=1), granularity, calendar) != key and (
            _key(last + timedelta(days=1), granularity, calendar) != key
        )
        result.append(
            Period(_label(key, granularity, calendar), first, last, key[0], key[1], whole)
        )
        day += timedelta(days=1)
    return result


# --- volume and fees per market


@dataclass(slots=True)
class VolumeRow:
    """One period's totals of one market (volumes in base and quote, fees in the quote)."""

    period: Period
    base_volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    trade_count: int = 0
    maker_fees: Decimal = ZERO
    taker_fees: Decimal = ZERO
    trader_count: int = 0

    @property
    def fees(self) -> Decimal:
        return self.maker_fees + self.taker_fees


SUMS = ("base_volume", "quote_volume", "trade_count", "maker_fees", "taker_fees")


def _whole_rows(
    market: Market, granularity: Granularity, calendar: Calendar, whole: Sequence[Period]
) -> dict[tuple[int, int], dict[str, Any]]:
    """Summary rows of the whole months or years, by (year, month); month is 0 for years."""
    if not whole:
        return {}
    fields = (*SUMS, "trader_count", "year")
    if granularity == Granularity.MONTH:
        years = {p.year for p in whole}
        monthly = MarketMonthlyVolume.objects.filter(
            market=market, calendar=calendar, year__in=years
        ).values(*fields, "month")
        return {(r["year"], r["month"]): r for r in monthly}
    yearly = MarketYearlyVolume.objects.filter(
        market=market, calendar=calendar, year__in=[p.year for p in whole]
    ).values(*fields)
    return {(r["year"], 0): r for r in yearly}


def volume_series(
    *, market: Market, start: date, end: date, granularity: Granularity, calendar: Calendar
) -> list[VolumeRow]:
    """Per period of [start, end]: the market's volumes, trades, fees and distinct traders."""
    spans = periods(start, end, granularity, calendar)
    rows = [VolumeRow(p) for p in spans]
    if granularity == Granularity.DAY:
        daily = MarketDailyVolume.objects.filter(market=market, day__range=(start, end))
        by_day = {r["day"]: r for r in daily.values(*SUMS, "trader_count", "day")}
        for row in rows:
            _fill(row, by_day.get(row.period.first_day))
        return rows
    whole = [p for p in spans if p.whole]
    stored = _whole_rows(market, granularity, calendar, whole)
    for row in rows:
        if row.period.whole:
            _fill(row, stored.get((row.period.year, row.period.month)))
        else:
            _fill(row, _daily_sum(market, row.period))
    return rows


def _fill(row: VolumeRow, values: dict[str, Any] | None) -> None:
    if values:
        for name in (*SUMS, "trader_count"):
            setattr(row, name, values[name] or getattr(row, name))


def _daily_sum(market: Market, period: Period) -> dict[str, Any]:
    """An edge piece summed from daily rows; distinct traders from the per-user rows."""
    days = (period.first_day, period.last_day)
    totals = MarketDailyVolume.objects.filter(market=market, day__range=days).aggregate(
        **{name: Sum(name) for name in SUMS}
    )
    totals["trader_count"] = (
        UserDailyVolume.objects.filter(market=market, day__range=days)
        .values("user_id")
        .distinct()
        .count()
    )
    return totals


@dataclass(frozen=True, slots=True)
class MarketTotal:
    market: Market
    base_volume: Decimal
    quote_volume: Decimal
    trade_count: int
    fees: Decimal


def market_totals(*, start: date, end: date) -> list[MarketTotal]:
    """Every market's totals over [start, end] (each in its own assets), busiest first."""
    sums = (
        MarketDailyVolume.objects.filter(day__range=(start, end))
        .values("market_id")
        .annotate(
            base=Sum("base_volume"),
            quote=Sum("quote_volume"),
            trades=Sum("trade_count"),
            maker=Sum("maker_fees"),
            taker=Sum("taker_fees"),
        )
    )
    markets = Market.objects.select_related("base", "quote").in_bulk()
    totals = [
        MarketTotal(
            markets[s["market_id"]], s["base"], s["quote"], s["trades"], s["maker"] + s["taker"]
        )
        for s in sums
    ]
    return sorted(totals, key=lambda t: (-t.trade_count, t.market.symbol))


# --- people: active traders, sign-ups, top users


@dataclass(slots=True)
class CountRow:
    period: Period
    count: int = 0


def active_traders(
    *,
    market: Market | None,
    start: date,
    end: date,
    granularity: Granularity,
    calendar: Calendar,
) -> list[CountRow]:
    """Distinct users with a trade in each period (in `market`, or in any market)."""
    spans = periods(start, end, granularity, calendar)
    rows = [CountRow(p) for p in spans]
    scope = Q(market=market) if market is not None else Q()
    if granularity == Granularity.DAY:
        counts = (
            UserDailyVolume.objects.filter(scope, day__range=(start, end))
            .values("day")
            .annotate(n=Count("user_id", distinct=True))
        )
        by_day = {c["day"]: c["n"] for c in counts}
        for row in rows:
            row.count = by_day.get(row.period.first_day, 0)
        return rows
    whole = [p for p in spans if p.whole]
    if granularity == Granularity.MONTH:
        stored = (
            UserMonthlyVolume.objects.filter(
                scope, calendar=calendar, year__in={p.year for p in whole}
            )
            .values("year", "month")
            .annotate(n=Count("user_id", distinct=True))
        )
        by_key = {(c["year"], c["month"]): c["n"] for c in stored}
    else:
        yearly = (
            UserYearlyVolume.objects.filter(
                scope, calendar=calendar, year__in=[p.year for p in whole]
            )
            .values("year")
            .annotate(n=Count("user_id", distinct=True))
        )
        by_key = {(c["year"], 0): c["n"] for c in yearly}
    for row in rows:
        if row.period.whole:
            row.count = by_key.get((row.period.year, row.period.month), 0)
        else:
            days = (row.period.first_day, row.period.last_day)
            row.count = (
                UserDailyVolume.objects.filter(scope, day__range=days)
                .values("user_id")
                .distinct()
                .count()
            )
    return rows


def _bucket(counts: Iterable[tuple[date, int]], spans: Sequence[Period]) -> list[CountRow]:
    rows = [CountRow(p) for p in spans]
    index = {
        p.first_day + timedelta(days=i): n
        for n, p in enumerate(spans)
        for i in range((p.last_day - p.first_day).days + 1)
    }
    for day, count in counts:
        if day in index:
            rows[index[day]].count += count
    return rows


def sign_ups(
    *, start: date, end: date, granularity: Granularity, calendar: Calendar
) -> list[CountRow]:
    """New accounts per period, by the local day they joined."""
    low, high = local_bounds(start, end)
    per_day = (
        User.objects.filter(date_joined__gte=low, date_joined__lt=high)
        .annotate(day=TruncDate("date_joined", tzinfo=reporting_zone()))
        .values("day")
        .annotate(n=Count("id"))
        .order_by()
    )
    return _bucket(
        ((c["day"], c["n"]) for c in per_day), periods(start, end, granularity, calendar)
    )


@dataclass(frozen=True, slots=True)
class TopUser:
    user_id: int
    email: str
    quote_volume: Decimal
    base_volume: Decimal
    trade_count: int
    fees_paid: Decimal


def top_users(*, market: Market, start: date, end: date, limit: int = TOP_USERS) -> list[TopUser]:
    """The users with the largest quote volume in `market` over [start, end]."""
    sums = (
        UserDailyVolume.objects.filter(market=market, day__range=(start, end))
        .values("user_id", "user__email")
        .annotate(
            quote=Sum("quote_volume"),
            base=Sum("base_volume"),
            trades=Sum("trade_count"),
            fees=Sum("fees_paid"),
        )
        .order_by("-quote", "user_id")[:limit]
    )
    return [
        TopUser(s["user_id"], s["user__email"], s["quote"], s["base"], s["trades"], s["fees"])
        for s in sums
    ]


# --- funds: deposits and withdrawals per asset


@dataclass(slots=True)
class FundsRow:
    asset: Asset
    deposit_count: int = 0
    deposited: Decimal = ZERO
    withdrawal_count: int = 0
    withdrawn: Decimal = ZERO
    withdrawal_fees: Decimal = ZERO
    pending_count: int = 0
    pending: Decimal = ZERO


def funds(*, start: date, end: date) -> list[FundsRow]:
    """Per asset over [start, end]: deposits credited, withdrawals completed (amount and
    fee) and withdrawals still pending or approved (requested in the range)."""
    low, high = local_bounds(start, end)
    rows = {a.pk: FundsRow(a) for a in Asset.objects.order_by("code")}
    deposits = (
        Deposit.objects.filter(created_at__gte=low, created_at__lt=high)
        .values("asset_id")
        .annotate(n=Count("id"), total=Sum("amount"))
    )
    for d in deposits:
        row = rows[d["asset_id"]]
        row.deposit_count, row.deposited = d["n"], d["total"]
    done = (
        Withdrawal.objects.filter(
            status=WithdrawalStatus.COMPLETED, completed_at__gte=low, completed_at__lt=high
        )
        .values("asset_id")
        .annotate(n=Count("id"), total=Sum("amount"), fees=Sum("fee"))
    )
    for w in done:
        row = rows[w["asset_id"]]
        row.withdrawal_count, row.withdrawn, row.withdrawal_fees = w["n"], w["total"], w["fees"]
    open_ = (
        Withdrawal.objects.filter(
            status__in=(WithdrawalStatus.PENDING, WithdrawalStatus.APPROVED),
            created_at__gte=low,
            created_at__lt=high,
        )
        .values("asset_id")
        .annotate(n=Count("id"), total=Sum("amount"))
    )
    for o in open_:
        row = rows[o["asset_id"]]
        row.pending_count, row.pending = o["n"], o["total"]
    return list(rows.values())
