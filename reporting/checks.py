"""The invariant "volume summaries == the sum of the trades they cover", checked, never repaired.

Two checks per market:

- *days*: every closed day's market and user rows equal the aggregation of that day's
  trades (a missing or extra row counts). A day is closed when none of its trades has a
  seq after the market's `VolumeCursor`; open days are the rollup's next work and skipped.
  `samples=None` checks every day that has a row or a trade (a full scan of the trades:
  seconds on a big database, what `check_volumes` does by default); `samples=N` checks N
  random row days plus the days of N random trades (cheap: the ledger audit's variant).
- *periods*: every month and year row (both calendars) equals the sum of its child rows
  (days for a month, months for a year) with the distinct trader count of its user rows,
  and exactly the periods containing a day row exist. Always all: a few hundred rows.

With both, a month or year row equals the raw sum of its trades. Fix what they report with
`rollup_volumes --from DATE`.
"""

from __future__ import annotations

import random
from datetime import date

from django.db import connection

from accounts.checks import MAX_LISTED, CheckResult
from markets.models import Market
from reporting import sql
from reporting.calendars import day_bounds, local_day, periods_of
from reporting.models import (
    MarketDailyVolume,
    MarketMonthlyVolume,
    MarketYearlyVolume,
    UserDailyVolume,
    UserMonthlyVolume,
    UserYearlyVolume,
    VolumeCursor,
)
from trading.models import Order, Trade

AUDIT_SAMPLES = 10  # days per market for the ledger audit: a few index range scans

_MARKET_COLS = (*sql.MARKET_SUMS, "trader_count")
_USER_COLS = sql.USER_SUMS


def check_volumes(*, samples: int | None = None, seed: int | None = None) -> list[CheckResult]:
    """Both checks for every market; see the module docstring."""
    rng = random.Random(seed)  # noqa: S311 (sampling, not secrets)  # noqa: S311 (sampling, not secrets; a seed reproduces it)
    days_found: list[str] = []
    periods_found: list[str] = []
    for market in Market.objects.order_by("pk"):
        days_found.extend(_check_days(market, samples, rng))
        periods_found.extend(_check_periods(market))
    return [
        CheckResult("volume days == their trades", days_found[:MAX_LISTED]),
        CheckResult("volume months and years == their days", periods_found[:MAX_LISTED]),
    ]


def check_volumes_sampled() -> list[str]:
    """LEDGER_EXTRA_CHECKS entry: the sampled checks, one line per violation."""
    return [
        f"{result.name}: {line}"
        for result in check_volumes(samples=AUDIT_SAMPLES)
        for line in result.violations
    ]


def _trade_days(market_id: int, *, after: int = 0, picks: list[int] | None = None) -> set[date]:
    """Local days of the market's trades after seq `after` (or of the trades at `picks`)."""
    table = Trade._meta.db_table
    with connection.cursor() as cursor:
        if picks is None:
            cursor.execute(
                "SELECT DISTINCT date_trunc('minute', created_at) FROM {t}"
                " WHERE market_id = %s AND seq > %s".replace("{t}", table),
                [market_id, after],
            )
        else:
            cursor.execute(
                "SELECT (SELECT created_at FROM {t} WHERE market_id = %s AND seq >= r"
                " ORDER BY seq LIMIT 1) FROM unnest(%s::bigint[]) AS r".replace("{t}", table),
                [market_id, picks],
            )
        moments = [row[0] for row in cursor.fetchall() if row[0] is not None]
    days = {local_day(m) for m in moments}
    if picks is None:  # minute buckets may straddle a local midnight
        days |= {local_day(m.replace(second=59, microsecond=999_999)) for m in moments}
    return days


def _check_days(market: Market, samples: int | None, rng: random.Random) -> list[str]:
    cursor_row = VolumeCursor.objects.filter(market=market).first()
    after = cursor_row.last_trade_seq if cursor_row else 0
    open_days = _trade_days(market.pk, after=after)
    row_days = sorted(
        set(MarketDailyVolume.objects.filter(market=market).values_list("day", flat=True))
        | set(UserDailyVolume.objects.filter(market=market).values_list("day", flat=True))
    )
    if samples is None:
        days = set(row_days) | _trade_days(market.pk)
    else:
        days = set(rng.sample(row_days, min(samples, len(row_days))))
        seqs = Trade.objects.filter(market=market, seq__lte=after).values_list("seq", flat=True)
        top = seqs.order_by("-seq").first()
        if top is not None:
            picks = [rng.randint(1, top) for _ in range(samples)]
            days |= _trade_days(market.pk, picks=picks)
    found: list[str] = []
    for day in sorted(days - open_days):
        found.extend(_compare_day(market, day))
    return found


def _compare_day(market: Market, day: date) -> list[str]:
    start, end = day_bounds(day)
    trades = Trade.objects.filter(market=market, created_at__gte=start, created_at__lt=end)
    expected_market: dict[str, object] = dict.fromkeys(_MARKET_COLS, 0)
    expected_users: dict[int, dict[str, object]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            _DAY_TRUTH.replace("{t}", Trade._meta.db_table).replace("{o}", Order._meta.db_table),
            {"m": market.pk, "s": start, "e": end},
        )
        for user_id, base, quote, count, fees in cursor.fetchall():
            expected_users[user_id] = dict(zip(_USER_COLS, (base, quote, count, fees), strict=True))
    if trades.exists():
        market_sums = _MARKET_TRUTH(trades)
        expected_market = {**market_sums, "trader_count": len(expected_users)}
    stored = MarketDailyVolume.objects.filter(market=market, day=day).values(*_MARKET_COLS).first()
    found = []
    if (stored or None) != (expected_market if trades.exists() else None):
        found.append(f"{market.symbol} {day}: market row {stored} != trades {expected_market}")
    users = {
        row.pop("user_id"): row
        for row in UserDailyVolume.objects.filter(market=market, day=day).values(
            "user_id", *_USER_COLS
        )
    }
    if users != expected_users:
        found.append(f"{market.symbol} {day}: user rows differ from the trades")
    return found


def _MARKET_TRUTH(trades: object) -> dict[str, object]:  # noqa: N802 (a query, named as one)
    from django.db.models import Count, Sum

    sums = trades.aggregate(  # type: ignore[attr-defined]
        base_volume=Sum("quantity"),
        quote_volume=Sum("quote_quantity"),
        trade_count=Count("id"),
        maker_fees=Sum("maker_fee"),
        taker_fees=Sum("taker_fee"),
    )
    return dict(sums)


# One row per user: that user's sides of the day's trades (as reporting.sql.USER_DAYS).
_DAY_TRUTH = """
SELECT o.user_id, sum(t.quantity), sum(t.quote_quantity), count(*),
       sum(CASE WHEN t.maker_order_id = o.id THEN t.maker_fee ELSE t.taker_fee END)
FROM {t} t JOIN {o} o ON o.id IN (t.buy_order_id, t.sell_order_id)
WHERE t.market_id = %(m)s AND t.created_at >= %(s)s AND t.created_at < %(e)s
GROUP BY o.user_id
"""


def _check_periods(market: Market) -> list[str]:
    found: list[str] = []
    days = list(MarketDailyVolume.objects.filter(market=market).values_list("day", flat=True))
    user_days = UserDailyVolume.objects.filter(market=market)
    months, years = periods_of(days)
    stored_months = {
        (r.calendar, r.year, r.month) for r in MarketMonthlyVolume.objects.filter(market=market)
    }
    stored_years = {(r.calendar, r.year) for r in MarketYearlyVolume.objects.filter(market=market)}
    if stored_months != {(p.calendar, p.year, p.month) for p in months}:
        found.append(f"{market.symbol}: the month rows are not the months of the day rows")
    if stored_years != {(p.calendar, p.year) for p in years}:
        found.append(f"{market.symbol}: the year rows are not the years of the day rows")
    for period in sorted(months | years):
        in_period = {"day__gte": period.first_day, "day__lte": period.last_day}
        expected = _sums(MarketDailyVolume.objects.filter(market=market, **in_period))
        expected["trader_count"] = (
            user_days.filter(**in_period).values("user_id").distinct().count()
        )
        model = MarketYearlyVolume if period.month == 0 else MarketMonthlyVolume
        keys = {"calendar": period.calendar, "year": period.year}
        if period.month:
            keys["month"] = period.month  # type: ignore[assignment]
        row = model.objects.filter(market=market, **keys).values(*_MARKET_COLS).first()
        if row != expected:
            found.append(f"{market.symbol} {period}: market row {row} != its days {expected}")
        user_model = UserYearlyVolume if period.month == 0 else UserMonthlyVolume
        stored_users = {
            r.pop("user_id"): r
            for r in user_model.objects.filter(market=market, **keys).values("user_id", *_USER_COLS)
        }
        if stored_users != _user_sums(user_days.filter(**in_period)):
            found.append(f"{market.symbol} {period}: user rows differ from their days")
    return found


def _sums(rows: object) -> dict[str, object]:
    from django.db.models import Sum

    return dict(rows.aggregate(**{c: Sum(c) for c in sql.MARKET_SUMS}))  # type: ignore[attr-defined]


def _user_sums(rows: object) -> dict[int, dict[str, object]]:
    from django.db.models import Sum

    grouped = rows.values("user_id").annotate(  # type: ignore[attr-defined]
        **{f"s_{c}": Sum(c) for c in _USER_COLS}
    )
    return {g["user_id"]: {c: g[f"s_{c}"] for c in _USER_COLS} for g in grouped}
