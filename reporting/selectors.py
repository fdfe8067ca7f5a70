"""Volume over any range of local days, from the summaries plus the trades not rolled up yet.

`volume(market=, user=, start=, end=, calendar=)` answers with the same numbers as a raw SUM
over the trades of the local days start..end (inclusive), whatever the rollup has done:

- whole years of `calendar` inside the range read their yearly row, whole months their
  monthly row, the remaining days their day rows (at most ~60 day rows at the two edges);
- a day is *open* when a trade of it has a seq after the market's `VolumeCursor` (not
  rolled up yet: today's last minute, a late-settled trade, or everything before the
  first rollup). Open days are summed from their trades, and no month or year containing
  one is used (its row would miss those trades);
- the cursor, the open days and the sums are read in ONE statement (its own snapshot, so a
  rollup committing meanwhile cannot count a trade twice), prepared once per connection.
  The cover of the range has to be chosen before the statement runs, so it is chosen for
  the open days the market had at its previous call in this process (a guess, never
  trusted): the statement also returns the open days it saw, and the answer is kept only
  if every one of them was summed from its trades; otherwise the statement runs again with
  the cover for the days just seen. When the trades after the cursor fill more than one
  page (a rollup far behind), the open days are paged first and the sum follows, all in one
  REPEATABLE READ transaction. `market=None` reads every market in one REPEATABLE READ
  snapshot. Called inside an open transaction, it runs in that transaction instead.

Distinct trader counts do not add across rows, so the totals carry none; read them per
period from the summary models. `market=None` answers per market (a dict symbol ->
totals), because the quote assets, and so volumes and fees, differ between markets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from accounts.models import User
from exchange.db import PreparedStatement
from exchange.pgarray import int_array
from markets.marketdata.common import resolve_market
from markets.models import Market
from reporting.calendars import (
    ONE_DAY,
    Period,
    day_bounds,
    day_start,
    local_day,
    month_of,
    reporting_zone,
    year_of,
)
from reporting.errors import (
    InvalidCalendar,
    InvalidDate,
    InvalidRange,
    InvalidUser,
    RangeTooLong,
    UserNotFound,
)
from reporting.models import Calendar
from trading.models import Order, Trade

# "Huge": more than 100 years of days. The answer stays a few dozen rows either way; the
# bound keeps the per-day planning loop and the open-day scan of a bad request small.
MAX_RANGE_DAYS = 36_525
MIN_DATE = date(1900, 1, 1)  # jdatetime's range and the exchange's lifetime both fit
MAX_DATE = date(2999, 12, 31)
ZERO = Decimal("0")


@dataclass(frozen=True, slots=True)
class MarketVolume:
    """A market's totals over a range; fees in the market's quote asset."""

    base_volume: Decimal
    quote_volume: Decimal
    trade_count: int
    maker_fees: Decimal
    taker_fees: Decimal


@dataclass(frozen=True, slots=True)
class UserVolume:
    """One user's side of a market's trades over a range; a self-trade counts both sides."""

    base_volume: Decimal
    quote_volume: Decimal
    trade_count: int
    fees_paid: Decimal


Totals = MarketVolume | UserVolume


@dataclass(frozen=True, slots=True)
class _Plan:
    years: list[int]
    months: list[tuple[int, int]]
    days: list[date]
    raw: list[date]  # the open days: summed from their trades


def validate_range(*, start: object, end: object, calendar: object = "gregorian") -> str:
    """Check a report's range and calendar (dates, not datetimes; start <= end; at most
    MAX_RANGE_DAYS days); returns the calendar. Reporting's other readers use it too."""
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, datetime) or not isinstance(value, date):
            raise InvalidDate(f"{name} must be a date (YYYY-MM-DD).", field=name)
        if not MIN_DATE <= value <= MAX_DATE:
            raise InvalidDate(f"{name} must lie between {MIN_DATE} and {MAX_DATE}.", field=name)
    if start > end:  # type: ignore[operator]  # both are dates: checked above
        raise InvalidRange("The range ends before it starts.", field="end")
    if (end - start).days + 1 > MAX_RANGE_DAYS:  # type: ignore[operator]
        raise RangeTooLong(f"A range may cover at most {MAX_RANGE_DAYS} days.", field="end")
    if not isinstance(calendar, str) or calendar not in Calendar.values:
        raise InvalidCalendar('The calendar must be "gregorian" or "jalali".', field="calendar")
    return calendar


def volume(
    *,
    market: Market | str | None,
    user: User | None = None,
    start: date,
    end: date,
    calendar: str = "gregorian",
) -> Totals | dict[str, Totals]:
    """Totals over local days start..end inclusive (see the module docstring).

    Returns MarketVolume (or UserVolume with `user`) for one market, or for `market=None`
    a dict symbol -> totals over every market (zeros for a market without trades). Bad
    input raises a DomainError (InvalidDate, InvalidRange, RangeTooLong, InvalidCalendar,
    MarketNotFound, InvalidUser, UserNotFound); the selector writes nothing. One statement
    per market when the open days are those of the market's previous call.
    """
    calendar = validate_range(start=start, end=end, calendar=calendar)
    if market is not None:
        item = resolve_market(market)
        with connection.cursor() as cursor:
            return _totals(cursor, item.pk, _user_id(user), start, end, calendar)
    user_id = _user_id(user)
    nested = transaction.get_connection().in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if not nested:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        if user_id is not None and not User.objects.filter(pk=user_id).exists():
            raise UserNotFound("No such user.", field="user")  # with no market, none would
        return {
            item.symbol: _totals(cursor, item.pk, user_id, start, end, calendar)
            for item in Market.objects.order_by("pk")
        }


def _user_id(user: object) -> int | None:
    """The user's id (its existence is checked by the statement that reads its totals)."""
    if user is None:
        return None
    if not isinstance(user, User) or user.pk is None:
        raise InvalidUser("user must be a saved user.", field="user")
    return int(user.pk)


# market id -> the open days its last statement saw in this process: the guess the next
# call's cover is planned for. Only ever a guess (the statement checks it), so a stale or
# lost entry costs one more statement, never a wrong answer.
_open_guess: dict[int, frozenset[date]] = {}
# Tries of the guess-and-check statement before the paged, transactional read. Two do it
# unless a rollup commits between them; a third is for that race.
_ATTEMPTS = 3


def _totals(
    cursor: CursorWrapper, market_id: int, user_id: int | None, start: date, end: date, cal: str
) -> Totals:
    zone = reporting_zone()
    guess = _open_guess.get(market_id, frozenset())
    for _ in range(_ATTEMPTS):
        plan = _plan(start, end, cal, guess)
        row = _run(cursor, market_id, user_id, cal, plan, zone)
        if row[-2] >= _OPEN_PAGE:  # more trades after the cursor than one page: paged read
            break
        guess = _open_guess[market_id] = _days_of(row[-1] or (), zone)
        if all(day in plan.raw for day in guess if start <= day <= end):
            return _answer(row, user_id)
    return _totals_paged(cursor, market_id, user_id, start, end, cal, zone)


def _totals_paged(
    cursor: CursorWrapper,
    market_id: int,
    user_id: int | None,
    start: date,
    end: date,
    cal: str,
    zone: ZoneInfo,
) -> Totals:
    """The open days read page by page, then the sum, in one REPEATABLE READ snapshot."""
    nested = transaction.get_connection().in_atomic_block
    with transaction.atomic():
        if not nested:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        plan = _plan(start, end, cal, _open_days(cursor, market_id, start, end))
        return _answer(_run(cursor, market_id, user_id, cal, plan, zone), user_id)


def _run(
    cursor: CursorWrapper,
    market_id: int,
    user_id: int | None,
    cal: str,
    plan: _Plan,
    zone: ZoneInfo,
) -> tuple[Any, ...]:  # Any: the row (sums[, user exists], page size, minutes)
    bounds = [day_bounds(day, zone) for day in plan.raw]
    params = {
        "market_id": market_id,
        "user_id": user_id,
        "calendar": cal,
        "years": int_array(plan.years),
        "month_years": int_array([y for y, _ in plan.months]),
        "month_numbers": int_array([m for _, m in plan.months]),
        "days": _array(day.isoformat() for day in plan.days),
        "starts": _array(_utc(s) for s, _ in bounds),
        "ends": _array(_utc(e) for _, e in bounds),
    }
    _VOLUME[user_id is not None, bool(plan.raw)].execute(cursor, params)
    return tuple(cursor.fetchone())


def _answer(row: Sequence[Any], user_id: int | None) -> Totals:  # Any: the statement's row
    if user_id is None:
        return MarketVolume(row[0], row[1], int(row[2]), row[3], row[4])
    if not row[4]:
        raise UserNotFound("No such user.", field="user")
    return UserVolume(row[0], row[1], int(row[2]), row[3])


def _array(items: Iterable[str]) -> str:
    """A ``{a,b}`` literal of ISO dates or instants (no character that needs quoting)."""
    return "{" + ",".join(items) + "}"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _days_of(minutes: Iterable[datetime], zone: ZoneInfo) -> frozenset[date]:
    """The local days the given minutes touch (a minute can straddle a local midnight)."""
    days: set[date] = set()
    for minute in minutes:
        days.add(local_day(minute, zone))
        days.add(local_day(minute + timedelta(seconds=59, microseconds=999_999), zone))
    return frozenset(days)


def _open_days(cursor: CursorWrapper, market_id: int, start: date, end: date) -> set[date]:
    """Local days in start..end with a trade after the market's rollup cursor."""
    first, last = day_start(start), day_start(end + ONE_DAY)
    # The cursor first, then the trades after it, page by page in seq order: ORDER BY seq
    # LIMIT keeps the planner on the (market, seq) index, so the scan is as long as the
    # rollup's lag, never as long as the range. (Without it the planner, whose seq
    # statistics are over all markets, took the (market, created_at) index for every
    # market but the one with the highest seqs and read the whole range: 0.5-1 s for a
    # year of a 3 M-trade market in bench.volumes.)
    cursor.execute(
        "SELECT last_trade_seq FROM reporting_volumecursor WHERE market_id = %s", [market_id]
    )
    row = cursor.fetchone()
    after = row[0] if row else 0
    sql = _OPEN_MINUTES.replace("{trades}", Trade._meta.db_table)
    days: set[date] = set()
    while True:
        cursor.execute(
            sql,
            {"m": market_id, "after": after, "first": first, "last": last, "page": _OPEN_PAGE},
        )
        rows = cursor.fetchall()
        last_seq, size = next((r[0], r[1]) for r in rows if r[2] is None)
        days.update(_days_of((r[2] for r in rows if r[2] is not None), reporting_zone()))
        if size < _OPEN_PAGE:
            break
        after = last_seq
    return {day for day in days if start <= day <= end}


def _plan(start: date, end: date, cal: str, open_days: Iterable[date]) -> _Plan:
    """Greedy cover of start..end: whole closed years, then whole closed months, then days.

    Walks month by month: a year starts on a month's first day, so only those are checked,
    and the days of a month not taken whole go in one step (two calendar look-ups a month).
    """
    open_days = {day for day in open_days if start <= day <= end}
    plan = _Plan([], [], [], [])
    day = start
    while day <= end:
        year = _year_of(day, cal)
        if year.first_day == day and year.last_day <= end and not _touches(open_days, year):
            plan.years.append(year.year)
            day = year.last_day + ONE_DAY
            continue
        month = _month_of(day, cal)
        if month.first_day == day and month.last_day <= end and not _touches(open_days, month):
            plan.months.append((month.year, month.month))
            day = month.last_day + ONE_DAY
            continue
        stop = min(month.last_day, end)
        while day <= stop:
            (plan.raw if day in open_days else plan.days).append(day)
            day += ONE_DAY
    return plan


# Pure functions of (day, calendar), and jdatetime's conversions cost about as much as the
# whole statement (cProfile of bench.volumes); the month starts a plan steps through repeat
# from call to call. 4096 entries: over ten years of days in each calendar.
_year_of = lru_cache(maxsize=4096)(year_of)
_month_of = lru_cache(maxsize=4096)(month_of)


def _touches(open_days: Iterable[date], period: Period) -> bool:
    return any(period.first_day <= day <= period.last_day for day in open_days)


_OPEN_PAGE = 50_000
# One page of the trades after the cursor: a head row (the page's last seq, its size, NULL),
# then (NULL, NULL, minute) for the distinct minutes of its trades inside the range.
_OPEN_MINUTES = """
WITH page AS MATERIALIZED (
    SELECT t.seq, t.created_at FROM {trades} t
    WHERE t.market_id = %(m)s AND t.seq > %(after)s
    ORDER BY t.seq LIMIT %(page)s
)
SELECT (SELECT max(seq) FROM page), (SELECT count(*) FROM page), NULL::timestamptz
UNION ALL
SELECT DISTINCT NULL::bigint, NULL::bigint, date_trunc('minute', created_at) FROM page
WHERE created_at >= %(first)s AND created_at < %(last)s
"""
_RANGES = "unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[]) AS r(s, e)"


def _volume_sql(*, user: bool, raw: bool) -> str:
    """The cursor's first page of later trades, and the sum over year, month and day rows
    (and with `raw` the open days' trades), in one statement: the sums (and, for a user,
    whether the user exists), then the page's size and its distinct minutes.

    ORDER BY seq LIMIT keeps the page on the (market, seq) index (see `_open_days`); the
    limit is a literal so that a generic plan estimates it as a custom plan does. Each open
    day is read by a LATERAL range scan of the (market, created_at) index, fenced by OFFSET
    0 so that the planner cannot flatten it into a join: joined to an unnest of unknown
    length, it guessed a hash join over the whole trades table (0.8 s on a 10 M-trade
    market for a range with no open day at all, measured by bench.volumes). The open days'
    branch is a statement of its own: a generic plan of it is estimated at 10 days of
    16,000 trades (300,000, over jit_above_cost: 230 ms of JIT compiling per call, seen
    with EXPLAIN), so PostgreSQL keeps planning it per call, while the statement without
    it, the usual one, settles on a generic plan and is no longer planned at all.
    """
    trades, orders, users = Trade._meta.db_table, Order._meta.db_table, User._meta.db_table
    if user:
        cols = "base_volume, quote_volume, trade_count, fees_paid"
        prefix, who = "reporting_user", " AND user_id = %(user_id)s"
        trades_sql = f"""
            SELECT t.quantity, t.quote_quantity, 1,
                   CASE WHEN t.maker_order_id = o.id THEN t.maker_fee ELSE t.taker_fee END
            FROM {_RANGES} CROSS JOIN LATERAL (
                SELECT * FROM {trades} t1 WHERE t1.market_id = %(market_id)s
                  AND t1.created_at >= r.s AND t1.created_at < r.e OFFSET 0) t
            JOIN {orders} o ON o.id IN (t.buy_order_id, t.sell_order_id)
                 AND o.user_id = %(user_id)s"""  # noqa: S608 (table names only)
        names = "a, b, c, d"
        extra = f", EXISTS (SELECT 1 FROM {users} WHERE id = %(user_id)s)"  # noqa: S608
    else:
        cols = "base_volume, quote_volume, trade_count, maker_fees, taker_fees"
        prefix, who = "reporting_market", ""
        trades_sql = f"""
            SELECT t.quantity, t.quote_quantity, 1, t.maker_fee, t.taker_fee
            FROM {_RANGES} CROSS JOIN LATERAL (
                SELECT * FROM {trades} t1 WHERE t1.market_id = %(market_id)s
                  AND t1.created_at >= r.s AND t1.created_at < r.e OFFSET 0) t"""  # noqa: S608
        names = "a, b, c, d, e"
        extra = ""
    sums = ", ".join(f"coalesce(sum({n}), 0)" for n in names.split(", "))
    return f"""
    WITH page AS MATERIALIZED (
        SELECT t.created_at FROM {trades} t
        WHERE t.market_id = %(market_id)s
          AND t.seq > coalesce((SELECT c.last_trade_seq FROM reporting_volumecursor c
                                WHERE c.market_id = %(market_id)s), 0)
        ORDER BY t.seq LIMIT {_OPEN_PAGE}
    ), x({names}) AS (
        SELECT {cols} FROM {prefix}yearlyvolume
        WHERE market_id = %(market_id)s{who} AND calendar = %(calendar)s
          AND year = ANY(%(years)s::int[])
        UNION ALL
        SELECT {cols} FROM {prefix}monthlyvolume
        WHERE market_id = %(market_id)s{who} AND calendar = %(calendar)s
          AND (year, month) IN (SELECT * FROM unnest(%(month_years)s::int[],
                                                     %(month_numbers)s::int[]))
        UNION ALL
        SELECT {cols} FROM {prefix}dailyvolume
        WHERE market_id = %(market_id)s{who} AND day = ANY(%(days)s::date[])
        {"UNION ALL " + trades_sql if raw else ""}
    )
    SELECT {sums}{extra}, (SELECT count(*) FROM page),
           (SELECT array_agg(DISTINCT date_trunc('minute', created_at)) FROM page)
    FROM x
    """  # noqa: S608 (only the constants above are interpolated, never input)


# Prepared (exchange.db): planning the statement cost about as much as running it.
# Keyed by (for a user, with open days).
_VOLUME = {
    (user, raw): PreparedStatement(
        f"reporting_{'user' if user else 'market'}_volume{'_raw' if raw else ''}",
        _volume_sql(user=user, raw=raw),
    )
    for user in (False, True)
    for raw in (False, True)
}
