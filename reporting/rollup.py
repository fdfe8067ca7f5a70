"""Roll trades up into the volume summaries: `rollup` (beat, every minute) and `rebuild`.

Per market, under the lock of its `VolumeCursor` row (SELECT ... FOR UPDATE, held to the
end of the transaction, so two rollups of one market run one after the other and the second
finds nothing left), one pass:

1. reads the next bounded batch of trades after the cursor (`seq > last_trade_seq`,
   at most `ROLLUP_BATCH`),
2. finds the local days they were stamped in,
3. recomputes those days' user and market rows from *all* trades of those days,
4. recomputes the months and years (both calendars) containing them from the day rows,
5. advances the cursor to the batch's last seq.

A batch that stops inside a day leaves that day to the pass that finishes it (a trade of
it lies after the cursor, so readers treat it as open), so catching up a day of a million
trades recomputes it once, not once per batch.

Step 3 is a recomputation (upsert, stale rows deleted), never an increment: a re-run, an
overlapping run, a late-settled trade (a higher seq on an old day) and a corrected trade
followed by `rebuild` all end with the rows an aggregation of the trades gives. A trade of
an affected day with a seq past the batch is counted now and again (idempotently) by the
pass that reaches it. All of it is set-based SQL (`reporting.sql`): a day of a million
trades is a handful of GROUP BYs, never Python per trade.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from markets.marketdata.common import resolve_market
from markets.models import Market
from reporting import sql
from reporting.calendars import Period, day_bounds, days_between, local_day, periods_of
from reporting.models import MarketDailyVolume, VolumeCursor
from trading.models import Order, Trade

# Trades per pass: one pass is one transaction holding the cursor lock; 200k trades keep
# it to a few seconds while a day of a million trades still catches up in five passes.
ROLLUP_BATCH = 200_000
# Passes per market per call: the beat task runs every minute and must end well inside it
# even when a market is catching up; what is left waits for the next run.
MAX_PASSES = 10
# Days per statement of a rebuild: bounds each statement while the whole rebuild of a
# market stays one transaction (readers see the old rows or the new, never a mix).
REBUILD_CHUNK_DAYS = 92


def rollup(market: Market | str | None = None) -> int:
    """Roll up the trades after each market's cursor; returns how many trades were read.

    `market` is a Market, a symbol (MarketNotFound if unknown) or None for every market.
    Safe to run at any time, concurrently with itself and with settlement.
    """
    markets = _markets(market)
    total = 0
    for item in markets:
        for _ in range(MAX_PASSES):
            consumed = _rollup_pass(item.pk)
            total += consumed
            if consumed < ROLLUP_BATCH:
                break
    return total


def rebuild(start: date, market: Market | str | None = None) -> int:
    """Recompute every day row from local day `start` on, and their months and years.

    For a correction (a trade edited or removed by hand): the trades are the truth, the
    rows follow. Returns the number of days recomputed. Per market one transaction under
    the cursor lock; rows of days that no longer have trades are deleted. The cursor does
    not move: trades after it are rolled up again, harmlessly, by the next `rollup`.
    """
    total = 0
    for item in _markets(market):
        with transaction.atomic(durable=True), connection.cursor() as cursor:
            _lock_cursor(cursor, item.pk)
            last = _last_day(cursor, item.pk, start)
            days = days_between(start, last) if last >= start else []
            for n in range(0, len(days), REBUILD_CHUNK_DAYS):
                _recompute_days(cursor, item.pk, days[n : n + REBUILD_CHUNK_DAYS])
            total += len(days)
    return total


def _markets(market: Market | str | None) -> list[Market]:
    if market is None:
        return list(Market.objects.order_by("pk"))
    return [resolve_market(market)]


def _tables() -> dict[str, str]:
    return {"trades": Trade._meta.db_table, "orders": Order._meta.db_table}


def _lock_cursor(cursor: CursorWrapper, market_id: int) -> int:
    """Create the market's cursor row if missing, lock it, return its seq."""
    VolumeCursor.objects.bulk_create(
        [VolumeCursor(market_id=market_id, last_trade_seq=0)], ignore_conflicts=True
    )
    row = VolumeCursor.objects.select_for_update().get(market_id=market_id)
    return row.last_trade_seq


def _rollup_pass(market_id: int) -> int:
    """One bounded batch of one market (see the module docstring); trades read."""
    tables = _tables()
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        after = _lock_cursor(cursor, market_id)
        params = {"market_id": market_id, "after": after, "limit": ROLLUP_BATCH}
        cursor.execute(sql.BATCH_END.format(**tables), params)
        upto, consumed = cursor.fetchone()
        if upto is None:
            return 0
        cursor.execute(sql.BATCH_MINUTES.format(**tables), {**params, "upto": upto})
        days = _days_of_minutes(row[0] for row in cursor.fetchall())
        # The day of the next trade after the batch is recomputed by the pass that reads
        # that trade; doing it now too would recompute a million-trade day once per batch.
        # Meanwhile that trade (seq > cursor) makes the day open for the selector and the
        # checks, so nobody reads its stale row.
        cursor.execute(sql.NEXT_TRADE_TIME.format(**tables), {**params, "upto": upto})
        following = cursor.fetchone()
        if following is not None:
            days.discard(local_day(following[0]))
        _recompute_days(cursor, market_id, sorted(days))
        VolumeCursor.objects.filter(market_id=market_id).update(
            last_trade_seq=upto, updated_at=timezone.now()
        )
    return int(consumed)


def _days_of_minutes(minutes: Iterable[datetime]) -> set[date]:
    """Local days a set of minute buckets touch (a bucket may straddle a local midnight)."""
    days: set[date] = set()
    for minute in minutes:
        days.add(local_day(minute))
        days.add(local_day(minute + timedelta(seconds=59, microseconds=999_999)))
    return days


def _recompute_days(cursor: CursorWrapper, market_id: int, days: Sequence[date]) -> None:
    """Recompute the day rows of `days` and every month and year containing them."""
    if not days:
        return
    tables = _tables()
    bounds = [day_bounds(day) for day in days]
    params: dict[str, Any] = {  # Any: ints and lists, as psycopg takes them
        "market_id": market_id,
        "days": list(days),
        "starts": [start for start, _ in bounds],
        "ends": [end for _, end in bounds],
    }
    cursor.execute(sql.USER_DAYS.format(**tables), params)
    cursor.execute(sql.MARKET_DAYS.format(**tables), params)
    months, years = periods_of(days)
    cursor.execute(sql.USER_MONTHS, _period_params(market_id, months))
    cursor.execute(sql.MARKET_MONTHS, _period_params(market_id, months))
    cursor.execute(sql.USER_YEARS, _period_params(market_id, years))
    cursor.execute(sql.MARKET_YEARS, _period_params(market_id, years))


def _period_params(market_id: int, periods: Iterable[Period]) -> dict[str, Any]:
    # Any: a mix of ints, strings and lists of them, as psycopg takes them
    ordered = sorted(periods)
    return {
        "market_id": market_id,
        "calendars": [p.calendar for p in ordered],
        "years": [p.year for p in ordered],
        "months": [p.month for p in ordered],
        "firsts": [p.first_day for p in ordered],
        "lasts": [p.last_day for p in ordered],
    }


def _last_day(cursor: CursorWrapper, market_id: int, start: date) -> date:
    """The last local day a rebuild from `start` must cover: the last trade's or row's."""
    cursor.execute(sql.TRADE_SPAN.format(**_tables()), [market_id])
    _, last_trade = cursor.fetchone()
    candidates = [start - timedelta(days=1)]
    if last_trade is not None:
        candidates.append(local_day(last_trade))
    last_row = (
        MarketDailyVolume.objects.filter(market_id=market_id)
        .order_by("-day")
        .values_list("day", flat=True)
        .first()
    )
    if last_row is not None:
        candidates.append(last_row)
    return max(candidates)
