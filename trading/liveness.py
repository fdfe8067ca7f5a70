"""Liveness checks for the auditor: work the pipeline accepted but has not finished in time.

The money invariants (accounts.checks, trading.holds) hold even when nothing moves, so a
stalled matching loop, settlement consumer or outbox sweeper leaves the ledger "clean". These
checks see the stall itself: each returns one line per market with how many items wait and
how old the oldest is. Registered in settings.LIVENESS_CHECKS (accounts never imports
trading); each takes `max_age_seconds` and costs one SQL statement whatever the number of
markets, plus, for the output streams, one Redis pipeline.

- accepted_but_unmatched: orders NEW with no `accepted_seq` (the engine has not applied
  the placement, or its acceptance was not settled) created more than N s ago;
- matched_but_unsettled: output-stream entries with events after the market's settlement
  cursor, written more than N s ago (stream id time, the Redis clock);
- outbox_unpublished: outbox rows that have not reached their input stream after N s.

`run_periodic_audit` is the production auditor (a Celery beat task): the money invariants
and these checks in one snapshot, every violation logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from redis.exceptions import RedisError

from accounts.checks import LedgerReport, run_audit
from markets.models import Market
from trading.models import Order, OrderStatus, OutboxEntry
from trading.redis import get_redis
from trading.streams import entry_last_seq, entry_token, output_stream

StreamEntry = tuple[bytes, dict[bytes, bytes]]

logger = logging.getLogger(__name__)


def run_periodic_audit() -> LedgerReport:
    """Run the money invariants and the liveness checks; log each violation, return the report.

    CRITICAL for a money invariant (the books are wrong), ERROR for liveness (work is
    overdue: a loop, the sweeper or a worker is stuck). The limit is
    settings.LIVENESS_MAX_AGE_SECONDS.
    """
    report = run_audit(liveness_max_age_seconds=float(settings.LIVENESS_MAX_AGE_SECONDS))
    for result in report.results:
        level = logging.ERROR if result.is_liveness else logging.CRITICAL
        for violation in result.violations:
            logger.log(level, "audit: %s: %s", result.name, violation)
    return report


def accepted_but_unmatched(max_age_seconds: float) -> list[str]:
    """Markets with orders accepted (NEW, no accepted_seq) more than `max_age_seconds` ago."""
    now = timezone.now()
    rows = (
        Order.objects.filter(
            status=OrderStatus.NEW,
            accepted_seq__isnull=True,
            created_at__lt=now - timedelta(seconds=max_age_seconds),
        )
        .values("market__symbol")
        .annotate(count=Count("id"), oldest=Min("created_at"), first=Min("id"))
        .order_by("market__symbol")
    )
    return [
        f"{row['market__symbol']}: {row['count']} order(s) accepted but not matched after"
        f" {max_age_seconds:g} s, oldest {_age(now - row['oldest'])} (order #{row['first']})"
        for row in rows
    ]


def outbox_unpublished(max_age_seconds: float) -> list[str]:
    """Markets with outbox rows still unpublished more than `max_age_seconds` after writing."""
    now = timezone.now()
    rows = (
        OutboxEntry.objects.filter(
            published_at__isnull=True,
            created_at__lt=now - timedelta(seconds=max_age_seconds),
        )
        .values("market__symbol")
        .annotate(count=Count("id"), oldest=Min("created_at"), first=Min("id"))
        .order_by("market__symbol")
    )
    return [
        f"{row['market__symbol']}: {row['count']} outbox row(s) not published after"
        f" {max_age_seconds:g} s, oldest {_age(now - row['oldest'])} (row #{row['first']})"
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class _Cursor:
    symbol: str
    last_seq: int
    fence_token: int

    def is_unsettled(self, entry: StreamEntry) -> bool:
        """Settlement still owes this entry: events after the cursor, not from a deposed owner."""
        fields = entry[1]
        last = entry_last_seq(fields)
        if last is None:
            return False
        return last > self.last_seq and entry_token(fields) >= self.fence_token


def matched_but_unsettled(max_age_seconds: float) -> list[str]:
    """Markets whose output stream holds events after the settlement cursor older than N s.

    The cursors are read first (one query), then the streams (one pipeline): an entry
    written after the cursors were read is too young to count, so the order of the two
    reads cannot make a false alarm.
    """
    cursors = [
        _Cursor(symbol, last_seq or 0, fence or 0)
        for symbol, last_seq, fence in Market.objects.order_by("symbol").values_list(
            "symbol", "settlement_cursor__last_seq", "settlement_cursor__fence_token"
        )
    ]
    if not cursors:
        return []
    client: Any = get_redis()  # Any: redis-py types stream replies as a union of decode modes
    try:
        seconds, micros = client.time()
        now_ms = seconds * 1000 + micros // 1000
        cutoff_ms = now_ms - int(max_age_seconds * 1000)
        pipe = client.pipeline(transaction=False)
        for cursor in cursors:
            # The newest entry older than the cutoff: seqs grow with stream ids, so if it is
            # settled, every older entry is too.
            pipe.xrevrange(output_stream(cursor.symbol), max=str(cutoff_ms - 1), min="-", count=1)
        newest_old = pipe.execute()
        found = []
        for cursor, reply in zip(cursors, newest_old, strict=True):
            if reply and cursor.is_unsettled(reply[0]):
                found.append(_describe_unsettled(client, cursor, reply[0], now_ms, max_age_seconds))
    except RedisError as exc:
        return [f"the output streams cannot be read: {exc}"]
    return found


def _describe_unsettled(
    client: Any, cursor: _Cursor, newest_old: StreamEntry, now_ms: int, max_age_seconds: float
) -> str:
    last = entry_last_seq(newest_old[1]) or 0
    oldest_ms = _oldest_unsettled_ms(client, cursor, newest_old)
    return (
        f"{cursor.symbol}: {last - cursor.last_seq} event(s) (seq {cursor.last_seq + 1}..{last})"
        f" matched but not settled after {max_age_seconds:g} s,"
        f" oldest {_age(timedelta(milliseconds=now_ms - oldest_ms))}"
        f" (settlement cursor at seq {cursor.last_seq})"
    )


def _oldest_unsettled_ms(client: Any, cursor: _Cursor, newest_old: StreamEntry) -> int:
    """Stream time of the first unsettled entry, found by bisecting stream times.

    Entries are in seq order, so "the first entry at or after time t is unsettled" is
    false, then true as t grows: about log2(stream span in ms) single-entry reads, and only
    for a market that is already failing the check.
    """
    stream = output_stream(cursor.symbol)

    def first_from(start: str) -> StreamEntry | None:
        reply = client.xrange(stream, min=start, max="+", count=1)
        return reply[0] if reply else None

    first = first_from("-")
    if first is None or cursor.is_unsettled(first):
        return _ms(first or newest_old)
    low, high = _ms(first), _ms(newest_old) + 1  # at low: settled; at high: unsettled
    while high - low > 1:
        middle = (low + high) // 2
        probe = first_from(f"{middle}-0")
        if probe is None or cursor.is_unsettled(probe):
            high = middle
        else:
            low = middle
    # Only the millisecond matters: the boundary is within `low` or is the next entry.
    last_at_low = client.xrevrange(stream, max=str(low), min=str(low), count=1)
    if last_at_low and cursor.is_unsettled(last_at_low[0]):
        return low
    after = first_from(f"{low + 1}-0")
    return _ms(after or newest_old)


def _ms(entry: StreamEntry) -> int:
    return int(entry[0].split(b"-", 1)[0])


def _age(delta: timedelta) -> str:
    return f"{max(delta.total_seconds(), 0.0):.1f} s"
