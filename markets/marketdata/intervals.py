"""The kline intervals: names, UTC bucket alignment, and the stored interval each is built from.

Binance's names, case-sensitive (``1m`` a minute, ``1M`` a month). Settlement stores 1m, 1h
and 1d rows (markets.models.Candle); every other interval is aggregated from the finest
stored one that divides it: 3m..30m from 1m, 2h..12h from 1h, 3d, 1w and 1M from 1d.

Alignment (UTC, as Binance's; see markets.marketdata.candles for the sources): every
fixed-length interval is a multiple of its length since the Unix epoch (1970-01-01T00:00Z,
so minutes and hours align to the hour and the day, and 3d buckets to days 0, 3, 6, ... since
the epoch), except 1w, which opens on Monday 00:00 (the epoch was a Thursday, so weeks are
counted from 1970-01-05); 1M is the calendar month. The same rule is written twice on
purpose, once in Python (`floor`, `shift`: the bucket list, gap filling) and once in SQL
(`sql_bucket`: the aggregation), and the tests check both against a third, independent one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from markets.marketdata.errors import InvalidInterval

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MONDAY_EPOCH = datetime(1970, 1, 5, tzinfo=UTC)  # the first Monday after the epoch
MILLISECOND = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Interval:
    """One kline interval: fixed `length` from `origin`, or the calendar month (length None)."""

    name: str
    source: str  # the stored interval it is aggregated from: "1m", "1h" or "1d"
    length: timedelta | None
    origin: datetime = EPOCH

    def floor(self, moment: datetime) -> datetime:
        """The open time of the bucket containing `moment` (aware)."""
        moment = moment.astimezone(UTC)
        if self.length is None:
            return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return moment - (moment - self.origin) % self.length

    def ceil(self, moment: datetime) -> datetime:
        """The first open time at or after `moment`."""
        opened = self.floor(moment)
        return opened if opened == moment else self.shift(opened, 1)

    def shift(self, open_time: datetime, buckets: int) -> datetime:
        """The open time `buckets` (may be negative) after the bucket opening at `open_time`."""
        if self.length is not None:
            return open_time + buckets * self.length
        months = open_time.year * 12 + open_time.month - 1 + buckets
        return open_time.replace(year=months // 12, month=months % 12 + 1)

    def close_time(self, open_time: datetime) -> datetime:
        """Binance's close time: the next bucket's open minus one millisecond."""
        return self.shift(open_time, 1) - MILLISECOND

    def sql_bucket(self, column: str = "open_time") -> str:
        """The SQL expression of the bucket open time of a timestamptz `column`.

        Built from this module's constants only (never from input), so it is safe to embed.
        """
        if self.length is None:
            return f"date_trunc('month', {column}, 'UTC')"
        seconds = int(self.length.total_seconds())
        return (
            f"date_bin(interval '{seconds} seconds', {column}, "
            f"timestamptz '{self.origin.isoformat()}')"
        )


_MINUTE, _HOUR, _DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
INTERVALS: dict[str, Interval] = {
    interval.name: interval
    for interval in (
        *(Interval(f"{n}m", "1m", n * _MINUTE) for n in (1, 3, 5, 15, 30)),
        *(Interval(f"{n}h", "1h", n * _HOUR) for n in (1, 2, 4, 6, 8, 12)),
        Interval("1d", "1d", _DAY),
        Interval("3d", "1d", 3 * _DAY),
        Interval("1w", "1d", 7 * _DAY, MONDAY_EPOCH),
        Interval("1M", "1d", None),
    )
}


def parse_interval(value: object) -> Interval:
    """The Interval named `value` (exactly, case-sensitive); InvalidInterval otherwise."""
    found = INTERVALS.get(value) if isinstance(value, str) else None
    if found is None:
        raise InvalidInterval(
            "The interval must be one of " + ", ".join(INTERVALS) + ".", field="interval"
        )
    return found
