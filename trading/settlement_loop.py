"""The per-market settlement consumer: output stream -> settle_batch -> XACK.

Reads the market's output stream through the consumer group "settlement" (XREADGROUP,
bounded COUNT, short BLOCK), keeps what it read in a buffer ordered by stream id (= the
order the matching loop wrote it), and settles the contiguous prefix after the cursor in one
transaction. Entries are acknowledged only after that transaction commits, so a consumer
killed mid-batch leaves them pending.

Pending entries of other consumers: each owner reads under its own consumer name (host, pid,
thread and token), and takes over every other consumer's pending entries with XAUTOCLAIM:
when it starts, and again whenever its buffer has a hole or the stream is quiet, at most
every CLAIM_EVERY_SECONDS. A consumer that died, or a deposed one that read entries before
it noticed (a stopped process, a Redis flush that gave two owners the same stream), so
never strands an entry: the owner settles it again, harmlessly, because settle_batch drops
seqs it has seen. A hole that no claim fills was settled by someone else (that deposed owner,
in its last moments): the owner then re-reads the cursor and goes on from there.
XAUTOCLAIM rather than one shared consumer name, because a shared name
would let a deposed owner still reading with ">" take new entries the owner then never
sees until it re-reads its whole pending list; per-owner names also tell an operator who
holds what (XINFO CONSUMERS). Consumers left with nothing pending are deleted at start.

One consumer per market at a time (its own lease, role "settlement"); the cursor row lock
keeps two consumers correct anyway, the lease just keeps them from fighting.

Database errors (a restart, a session killed by the loops' limits, see trading.dbsession)
leave the buffer as it is: the connection is closed and the batch retried after a short
pause, so settlement resumes by itself when PostgreSQL is back, and a deposed owner finds
out at its next lease check.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, close_old_connections, connection
from redis.exceptions import ResponseError

from markets.models import Market
from trading.lease import Lease, owner_label
from trading.loops import run_loop
from trading.models import Order, OrderStatus, OutboxEntry, SettlementCursor
from trading.redis import get_redis
from trading.services.settlement import SequenceGap, settle_batch
from trading.streams import (
    SETTLEMENT_GROUP,
    EventsEntry,
    consumed_key,
    decode_events_entry,
    input_stream,
    output_stream,
    stream_tail_seq,
)

logger = logging.getLogger(__name__)

GROUP = SETTLEMENT_GROUP
# Entries per XREADGROUP. An entry holds one matching batch (a few to ~500 commands); when
# settlement lags, bigger transactions amortise its fixed per-batch statements, and
# MAX_BATCH_EVENTS bounds how big one gets.
READ_COUNT = 64
MAX_BATCH_EVENTS = 20_000
BLOCK_MS = 100
# Django's connection health check (a SELECT 1) at most this often, not per batch: at
# hundreds of batches a second it was one round trip in eight.
CONNECTION_CHECK_SECONDS = 1.0
# Trim settled entries from the output stream every this many batches.
TRIM_EVERY = 50
# How often a hole or a quiet stream makes the owner claim other consumers' pending
# entries: a stranded entry waits at most this long, and a claim costs one round trip.
CLAIM_EVERY_SECONDS = 0.25
# Pause after a database error before retrying the batch (PostgreSQL restarting).
DB_RETRY_SECONDS = 0.2

StreamEntry = tuple[bytes, dict[bytes, bytes]]


@dataclass
class EntryBuffer:
    """Entries read but not yet settled, by stream id; hands out the settleable prefix."""

    last_seq: int
    fence: int = 0
    entries: dict[bytes, EventsEntry] = field(default_factory=dict)

    def add(self, stream_entries: list[StreamEntry]) -> None:
        for entry_id, fields in stream_entries:
            if entry_id in self.entries:
                continue
            decoded = decode_events_entry(fields)
            if decoded is not None:
                self.entries[entry_id] = decoded

    def ready(self) -> tuple[list[bytes], list[tuple[int, list[Any]]]]:
        """(ids, entries) of the prefix that continues the cursor without a hole."""
        ids: list[bytes] = []
        batch: list[tuple[int, list[Any]]] = []
        expected = self.last_seq + 1
        size = 0
        for entry_id in sorted(self.entries, key=_id_key):
            token, first, last, events = self.entries[entry_id]
            size += len(events)
            if size > MAX_BATCH_EVENTS and ids:
                break
            if token < self.fence:  # a deposed generation's entry: acked, never applied
                ids.append(entry_id)
                batch.append((token, events))
                continue
            if first > expected:
                break  # a hole: wait for the missing entry (or its redelivery)
            ids.append(entry_id)
            batch.append((token, events))
            expected = max(expected, last + 1)
        return ids, batch

    def settled(self, ids: list[bytes], last_seq: int, fence: int = 0) -> None:
        for entry_id in ids:
            del self.entries[entry_id]
        self.last_seq = max(self.last_seq, last_seq)
        self.fence = max(self.fence, fence)


def _id_key(entry_id: bytes) -> tuple[int, int]:
    ms, _, n = entry_id.partition(b"-")
    return int(ms), int(n or 0)


def ensure_group(client: Any, stream: str) -> None:
    try:
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


@dataclass
class SettlementLoopResult:
    symbol: str
    owned: bool = False
    applied: int = 0
    duplicates: int = 0
    fenced: int = 0
    batches: int = 0
    gaps: int = 0
    db_errors: int = 0
    last_seq: int = 0
    stopped_by: str = ""


def is_caught_up(market: Market) -> bool:
    """Every command sent to the market was applied and every event written is settled.

    Unpublished outbox rows count as not caught up (the sweeper will send them), and so
    does a placement PostgreSQL has not seen matched: after Redis lost its streams they
    look empty, and settled, until the rebuilt loop has re-applied what they held.
    """
    if OutboxEntry.objects.filter(market=market, published_at__isnull=True).exists():
        return False
    if Order.objects.filter(
        market=market, status=OrderStatus.NEW, accepted_seq__isnull=True
    ).exists():
        return False
    client: Any = get_redis()  # Any: redis-py types stream replies as a union of decode modes
    last_in = client.xrevrange(input_stream(market.symbol), count=1)
    if last_in and client.get(consumed_key(market.symbol)) != last_in[0][0]:
        return False
    tail = stream_tail_seq(client, market.symbol)
    cursor = SettlementCursor.objects.filter(market=market).first()
    return (cursor.last_seq if cursor else 0) >= tail


def _claim_pending(client: Any, stream: str, consumer: str) -> list[StreamEntry]:
    """Take over every pending entry: with the lease held, their consumers are dead or
    deposed (ours are taken again too, harmlessly: the buffer skips what it holds)."""
    claimed: list[StreamEntry] = []
    start = "0-0"
    while True:
        reply = client.xautoclaim(
            stream, GROUP, consumer, min_idle_time=0, start_id=start, count=500
        )
        next_start, entries = reply[0], reply[1]
        claimed.extend(e for e in entries if e[1])
        if next_start in (b"0-0", "0-0") or not entries:
            return claimed
        start = next_start


def _catch_up_with_cursor(buffer: EntryBuffer, cursor: SettlementCursor) -> None:
    """Move the buffer's view up to the cursor and fence as PostgreSQL has them now."""
    cursor.refresh_from_db(fields=["last_seq", "fence_token"])
    buffer.last_seq = max(buffer.last_seq, cursor.last_seq)
    buffer.fence = max(buffer.fence, cursor.fence_token)


def _drop_idle_consumers(client: Any, stream: str, consumer: str) -> None:
    """Delete consumers with nothing pending (earlier owners), keeping the group readable."""
    for info in client.xinfo_consumers(stream, GROUP):
        name = info["name"]
        name = name.decode() if isinstance(name, bytes) else name
        if name != consumer and not info["pending"]:
            client.xgroup_delconsumer(stream, GROUP, name)


class _SettlementBody:
    """The settlement consumer's steps, run by trading.loops.run_loop."""

    def __init__(self, market: Market, result: SettlementLoopResult) -> None:
        self.market = market
        self.symbol = market.symbol
        self.result = result
        self.client: Any = get_redis()  # Any: redis-py types stream replies as a union
        self.stream = output_stream(self.symbol)

    def start(self, lease: Lease) -> None:
        self.consumer = f"{owner_label()}:{lease.token}"
        self.cursor, _ = SettlementCursor.objects.get_or_create(market=self.market)
        self.buffer = EntryBuffer(last_seq=self.cursor.last_seq, fence=self.cursor.fence_token)
        ensure_group(self.client, self.stream)
        self.buffer.add(_claim_pending(self.client, self.stream, self.consumer))
        _drop_idle_consumers(self.client, self.stream, self.consumer)
        self.checked_at = self.claimed_at = time.monotonic()

    def step(self, now: float) -> bool:
        client, stream, consumer, result = self.client, self.stream, self.consumer, self.result
        try:
            reply = client.xreadgroup(
                GROUP, consumer, {stream: ">"}, count=READ_COUNT, block=BLOCK_MS
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                raise
            # Redis lost the stream (FLUSHDB): what we buffered is gone with it.
            ensure_group(client, stream)
            self.buffer = EntryBuffer(last_seq=self.buffer.last_seq, fence=self.buffer.fence)
            return False
        buffer = self.buffer
        if reply:
            buffer.add(reply[0][1])
        ids, entries = buffer.ready()
        if (not reply or not ids) and now - self.claimed_at >= CLAIM_EVERY_SECONDS:
            # A hole, or nothing new: an entry may sit with a dead or deposed consumer.
            buffer.add(_claim_pending(client, stream, consumer))
            self.claimed_at = now
            ids, entries = buffer.ready()
            if not ids and buffer.entries:
                # Still a hole: another consumer may have settled (and acked) the missing
                # entries, e.g. a deposed owner in its last moments after a flush. The
                # cursor says so; what it covers settles as duplicates.
                _catch_up_with_cursor(buffer, self.cursor)
                ids, entries = buffer.ready()
        if not ids:
            if buffer.entries:
                result.gaps += 1
            return bool(reply)
        if now - self.checked_at >= CONNECTION_CHECK_SECONDS:
            close_old_connections()
            self.checked_at = now
        try:
            settled = settle_batch(market_id=self.market.pk, entries=entries)
        except DatabaseError as exc:
            # Nothing was written (the transaction rolled back); the buffer still holds the
            # batch. A fresh connection next time; a lost lease stops us first.
            logger.warning("settlement of %s: database error, retrying: %s", self.symbol, exc)
            result.db_errors += 1
            connection.close()
            time.sleep(DB_RETRY_SECONDS)
            return bool(reply)
        except SequenceGap as gap:  # our view of the cursor (or fence) was stale
            logger.warning("settlement of %s: %s", self.symbol, gap)
            self.cursor.refresh_from_db()
            self.buffer = EntryBuffer(
                last_seq=self.cursor.last_seq,
                fence=self.cursor.fence_token,
                entries=buffer.entries,
            )
            result.gaps += 1
            time.sleep(BLOCK_MS / 1000)  # bounded: the hole needs a redelivery anyway
            return bool(reply)
        client.xack(stream, GROUP, *ids)
        buffer.settled(ids, settled.last_seq, settled.fence_token)
        result.batches += 1
        result.applied += settled.applied
        result.duplicates += settled.duplicates
        result.fenced += settled.fenced
        result.last_seq = buffer.last_seq
        if result.batches % TRIM_EVERY == 0:
            client.xtrim(stream, minid=ids[-1].decode())
        return True

    def stopping(self) -> None:
        pass

    def close(self, *, lease_lost: bool) -> None:
        pass


def run_settlement_loop(
    symbol: str,
    *,
    stop: threading.Event | None = None,
    max_seconds: float | None = None,
    idle_exit_seconds: float | None = None,
    on_lease_tried: Callable[[], None] | None = None,
) -> SettlementLoopResult:
    """Settle a market's output stream until stopped, the lease is lost or a bound is hit."""
    result = SettlementLoopResult(symbol=symbol)
    market = Market.objects.get(symbol=symbol)
    outcome = run_loop(
        _SettlementBody(market, result),
        role="settlement",
        symbol=symbol,
        stop=stop,
        max_seconds=max_seconds,
        idle_exit_seconds=idle_exit_seconds,
        on_lease_tried=on_lease_tried,
    )
    result.owned, result.stopped_by = outcome.owned, outcome.stopped_by
    return result
