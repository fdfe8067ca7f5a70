"""The per-market matching loop: input stream -> engine -> output stream, one owner at a time.

It runs in trading.loops' shell (shutdown flag, lease, bounds, stop reasons); this module
is its step: read a bounded batch with a short BLOCK, so it never sleeps unboundedly.

Per batch: XREAD up to BATCH_SIZE commands after the loop's offset, skip commands whose cid
(outbox id) was already applied, apply the rest to the engine, and append all the events of
the batch as ONE output entry through the lease's fenced XADD (token check + XADD in one
Lua script: a deposed owner cannot write). Entries always hold whole commands, so
settlement, which commits whole entries, never commits half of a command's events.

Recovery: the loop restores the newest snapshot and replays the input after its offset.
The engine is deterministic, so replay regenerates the same events with the same seqs;
events with seq <= the output stream's tail are already there and are not written again.
If Redis was flushed the state is rebuilt from PostgreSQL (trading.recovery).

Market status: placements read while the market is CANCEL_ONLY or HALTED are rejected
(``market_cancel_only`` / ``market_halted``, the codes place_order gives), also those queued
before staff changed the status; cancels and reductions go through. The loop reads the
status once per non-empty batch. The gate in force is part of the loop's state (snapshots
carry it) and a change is snapshotted before any command is decided under it, so a replay
decides every placement as the original run did, whatever the status has become since.

The entries in and out, and every key of a market, are trading.streams' format.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, close_old_connections, connection
from redis.exceptions import RedisError, ResponseError

from markets.models import Market, MarketStatus
from markets.selectors import get_current_market
from trading.background import Worker
from trading.dbsession import use_loop_session_limits
from trading.engine.commands import BadCommand, PlaceOrder, command_from_dict
from trading.lease import Lease, LeaseLost
from trading.loops import run_loop
from trading.models import EngineSnapshot, SettlementCursor
from trading.recovery import (
    FrozenState,
    LoopState,
    freeze_state,
    load_latest_state,
    oldest_kept_offset,
    rebuild_from_database,
    save_snapshot,
)
from trading.redis import get_redis
from trading.streams import (
    SEQ,
    SETTLEMENT_GROUP,
    consumed_key,
    decode_command_entry,
    encode_command,
    encode_events_entry,
    events_from_raw,
    input_stream,
    output_stream,
    ready_key,
    snapshot_request_key,
    stream_tail_seq,
)

logger = logging.getLogger(__name__)

# Hundreds per XREAD: amortises the Redis round trip and the fenced XADD, while one batch
# (~1 ms of engine time per 100 commands) keeps the lease renewal and stop checks prompt.
BATCH_SIZE = 500
# Short enough that a stop or a lost lease is noticed within a tenth of a second.
BLOCK_MS = 100
SNAPSHOT_EVERY_COMMANDS = 50_000
SNAPSHOT_EVERY_SECONDS = 30.0
# Trim the input stream up to the oldest kept snapshot's offset (tests that replay the whole
# stream into a reference engine turn this off).
TRIM_INPUT = True

# The rejection code of a placement under each status; "" lets it through. The codes are
# those place_order raises (trading.validation), so a client sees one code either way.
_GATES: dict[str, str] = {
    MarketStatus.TRADING: "",
    MarketStatus.CANCEL_ONLY: "market_cancel_only",
    MarketStatus.HALTED: "market_halted",
}


@dataclass
class LoopResult:
    """What a loop run did (for tests, the simulate command and logs)."""

    symbol: str
    owned: bool = False
    token: int = 0
    commands: int = 0
    events_written: int = 0
    stopped_by: str = ""


class _SnapshotWriter:
    """Writes snapshots to PostgreSQL on its own thread, off the matching hot path.

    Holds at most one pending snapshot: a newer one replaces it, so a slow database never
    makes the loop buffer state. A database or Redis error skips that snapshot (the next
    one is due soon) and the writer lives on with a fresh connection (trading.background).
    """

    def __init__(self, *, market_id: int, symbol: str) -> None:
        self.market_id = market_id
        self.symbol = symbol
        self._worker = Worker(
            f"snapshots-{symbol}",
            self._step,
            keep_going_on=(DatabaseError, RedisError),
            # Lambdas: ``connection.close`` would bind the creating thread's connection.
            after_error=lambda: connection.close(),
            on_start=use_loop_session_limits,
            on_exit=lambda: connection.close(),
        )
        self._start()

    def _start(self) -> None:
        self._queue: queue.Queue[tuple[FrozenState, int] | None] = queue.Queue(maxsize=1)
        self._worker.start()

    def submit(self, frozen: FrozenState, token: int) -> None:
        with contextlib.suppress(queue.Empty):
            self._queue.get_nowait()
        self._queue.put((frozen, token))

    def close(self, *, discard: bool = False) -> None:
        """Stop the thread; with ``discard`` drop a pending snapshot (we lost the lease)."""
        if discard:
            with contextlib.suppress(queue.Empty):
                self._queue.get_nowait()
        # A dead thread (logged) is not woken: a put into its full queue would wait forever.
        self._worker.stop(timeout=30, wake=self._put_sentinel)

    def _put_sentinel(self) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=30)

    def save_now(self, frozen: FrozenState, token: int) -> None:
        """Store ``frozen`` before returning, with no older snapshot stored after it.

        Restore takes the newest snapshot by insertion, so the thread is stopped first (a
        pending snapshot is dropped, one being stored completes) and started again after.
        """
        self.close(discard=True)
        if self._worker.is_alive():
            raise RuntimeError(f"the snapshot writer of {self.symbol} did not stop")
        save_snapshot(market_id=self.market_id, frozen=frozen, fence_token=token)
        self._start()

    def _step(self) -> bool:
        item = self._queue.get()
        if item is None:
            return False
        frozen, token = item
        save_snapshot(market_id=self.market_id, frozen=frozen, fence_token=token)
        offset = oldest_kept_offset(market_id=self.market_id)
        if offset and TRIM_INPUT:  # no kept snapshot replays from before it
            get_redis().xtrim(input_stream(self.symbol), minid=offset)
        return True


def _fence_floor(market: Market) -> int:
    cursor, _ = SettlementCursor.objects.get_or_create(market=market)
    last = EngineSnapshot.objects.filter(market=market).order_by("-fence_token").first()
    return max(cursor.fence_token, last.fence_token if last else 0)


def restore_state(*, market: Market, lease: Lease) -> tuple[LoopState, bool]:
    """(state, rebuilt) for a new owner (see module docstring); called with the lease held.

    ``rebuilt`` means the engine was rebuilt from PostgreSQL: its seqs continue from the
    settlement cursor, and older output entries (if any survive) are fenced by settlement.
    """
    client: Any = get_redis()  # Any: redis-py types stream replies as a union of decode modes
    generation = client.get(ready_key(market.symbol))
    if generation is not None:
        restored = load_latest_state(market_id=market.pk, min_token=int(generation))
        if restored is not None:
            return restored, False
    # Redis lost the streams, this market never ran, or no snapshot is usable:
    # PostgreSQL is the truth. The tail is read before PostgreSQL: every command before it
    # is either settled or among the unsettled rows read after.
    tail = client.xrevrange(input_stream(market.symbol), count=1)
    state = rebuild_from_database(
        market=market, token=lease.token, input_offset=tail[0][0].decode() if tail else "0-0"
    )
    state.gate = _GATES.get(get_current_market(market_id=market.pk).status, "market_halted")
    try:
        client.xgroup_create(output_stream(market.symbol), SETTLEMENT_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):  # the group already exists
            raise
    resent = _apply_unsettled(state, market=market, lease=lease)
    save_snapshot(market_id=market.pk, frozen=freeze_state(state), fence_token=lease.token)
    client.set(ready_key(market.symbol), lease.token)
    logger.warning(
        "market %s (re)initialised from PostgreSQL at seq %s; %s unsettled commands re-applied",
        market.symbol,
        state.engine.seq,
        resent,
    )
    return state, True


def _apply_unsettled(state: LoopState, *, market: Market, lease: Lease) -> int:
    """Apply the rebuild's unsettled commands, in acceptance (outbox) order, ahead of
    anything in the input stream, and write their events; return how many.

    They must come first: a command published while the book was being rebuilt (or, on a
    market that settled nothing yet, every command since a flush) is newer than all of them,
    and a cancel applied before its own placement would find no order and be lost. Their
    cids join the applied window, so the stream's copies of them are skipped; the snapshot
    stored right after holds their effect, so a restart never needs them from the stream.
    """
    entries = [
        (
            b"unsettled",
            {k.encode(): v.encode() for k, v in encode_command(row.pk, row.payload).items()},
        )
        for row in state.resend
    ]
    state.resend = []
    for start in range(0, len(entries), BATCH_SIZE):
        events = _apply_entries(state, entries[start : start + BATCH_SIZE], 0)
        _write_events(lease, market, events, progress=state.input_offset)
    return len(entries)


def _write_events(lease: Lease, market: Market, events: list[list[Any]], *, progress: str) -> None:
    """Append one batch's events as one output entry (fenced) and record the input offset."""
    lease.fenced_write(
        stream=output_stream(market.symbol),
        fields=encode_events_entry(events, token=lease.token) if events else None,
        progress_key=consumed_key(market.symbol),
        progress=progress,
    )


def _follow_market_status(
    state: LoopState, *, market_id: int, writer: _SnapshotWriter, token: int, suppress_upto: int
) -> None:
    """Set the gate for the next batch from the market's status (module docstring).

    While replaying (events up to ``suppress_upto`` are written already) the restored gate
    stays: those commands must be decided as they were. A new gate is snapshotted before the
    batch is applied; if that fails the error stops the loop before it decides anything
    under the new gate. If the status cannot be read, the gate stays: the status lives in
    the same database, so it cannot change unseen either.
    """
    if state.engine.seq < suppress_upto:
        return
    try:
        status = get_current_market(market_id=market_id).status
    except DatabaseError:
        logger.warning("market %s: status unreadable, placements gate stays", market_id)
        close_old_connections()
        return
    gate = _GATES.get(status, "market_halted")  # an unknown status refuses: the safe side
    if gate != state.gate:
        state.gate = gate
        writer.save_now(freeze_state(state), token)
        logger.warning("market %s: placements gate now %r", market_id, gate or "open")


def _apply_entries(
    state: LoopState, entries: list[tuple[bytes, dict[bytes, bytes]]], suppress_upto: int
) -> list[list[Any]]:
    """Apply a batch to the engine; return the events to write (seq > suppress_upto)."""
    engine = state.engine
    out: list[list[Any]] = []
    applied = state.applied
    gate = state.gate
    for _entry_id, fields in entries:
        try:
            cid, data = decode_command_entry(fields)
        except (ValueError, KeyError):
            logger.error("undecodable input entry %r", fields)
            continue
        if cid is not None:
            if cid in applied:
                continue  # a sweeper re-send of a command already applied
            state.remember(cid)
        command_type = data.get("type", "") if isinstance(data, dict) else ""
        try:
            command = command_from_dict(data)
        except BadCommand as exc:
            raw = [
                engine.rejection_for(
                    order_id=exc.order_id, account_id=exc.account_id, reason=exc.reason
                )
            ]
        else:
            if gate and type(command) is PlaceOrder:
                # Like any rejection: the next seq, nothing else changes; settlement ends
                # the order and releases its hold.
                raw = [
                    engine.rejection_for(
                        order_id=command.order_id, account_id=command.account_id, reason=gate
                    )
                ]
            else:
                raw = engine.apply_raw(command)
        if raw and raw[-1][SEQ] > suppress_upto:
            out.extend(e for e in events_from_raw(raw, command_type) if e[SEQ] > suppress_upto)
    return out


class _MatchingBody:
    """The matching loop's steps, run by trading.loops.run_loop."""

    def __init__(self, market: Market, result: LoopResult) -> None:
        self.market = market
        self.symbol = market.symbol
        self.result = result
        self.client: Any = get_redis()  # Any: redis-py types stream replies as a union
        self.writer: _SnapshotWriter | None = None
        self.since_snapshot = 0
        self.in_stream = input_stream(self.symbol)
        self.request_key = snapshot_request_key(self.symbol)

    def start(self, lease: Lease) -> None:
        self.lease = lease
        self.state, rebuilt = restore_state(market=self.market, lease=lease)
        # After a restore, replay regenerates events already written: skip those. After a
        # rebuild the seqs restart at the cursor and settlement fences what came before.
        self.suppress_upto = 0 if rebuilt else stream_tail_seq(self.client, self.symbol)
        self.writer = _SnapshotWriter(market_id=self.market.pk, symbol=self.symbol)
        close_old_connections()
        self.last_snapshot_at = time.monotonic()

    def step(self, now: float) -> bool:
        state, lease, writer, result = self.state, self.lease, self.writer, self.result
        assert writer is not None  # noqa: S101 - set by start
        try:
            response = self.client.xread(
                {self.in_stream: state.input_offset}, count=BATCH_SIZE, block=BLOCK_MS
            )
        except ResponseError as exc:
            if "UNBLOCKED" not in str(exc):
                raise
            # The stream vanished under XREAD: Redis was flushed. The successor rebuilds.
            logger.warning("matching loop of %s: its streams vanished (Redis flushed)", self.symbol)
            raise LeaseLost(lease.key) from exc
        if response:
            entries = response[0][1]
            _follow_market_status(
                state,
                market_id=self.market.pk,
                writer=writer,
                token=lease.token,
                suppress_upto=self.suppress_upto,
            )
            events = _apply_entries(state, entries, self.suppress_upto)
            offset = entries[-1][0].decode()
            _write_events(lease, self.market, events, progress=offset)
            result.events_written += len(events)
            state.input_offset = offset
            result.commands += len(entries)
            self.since_snapshot += len(entries)
        since = self.since_snapshot
        due = since >= SNAPSHOT_EVERY_COMMANDS or (
            since and now - self.last_snapshot_at >= SNAPSHOT_EVERY_SECONDS
        )
        if due or (since and self.client.getdel(self.request_key)):
            writer.submit(freeze_state(state), lease.token)
            self.since_snapshot, self.last_snapshot_at = 0, now
        return bool(response)

    def stopping(self) -> None:
        if self.since_snapshot and self.writer is not None:
            # A graceful stop leaves the successor a short replay.
            self.writer.submit(freeze_state(self.state), self.lease.token)

    def close(self, *, lease_lost: bool) -> None:
        if self.writer is not None:
            self.writer.close(discard=lease_lost)


def run_matching_loop(
    symbol: str,
    *,
    stop: threading.Event | None = None,
    max_seconds: float | None = None,
    idle_exit_seconds: float | None = None,
    on_lease_tried: Callable[[], None] | None = None,
) -> LoopResult:
    """Own a market's matching until stopped, the lease is lost, or a time bound is hit.

    Returns at once (owned=False) if another live loop owns the market. Never writes after
    losing the lease. ``max_seconds`` / ``idle_exit_seconds`` bound test and command runs.
    """
    result = LoopResult(symbol=symbol)
    market = Market.objects.select_related("base", "quote").get(symbol=symbol)
    outcome = run_loop(
        _MatchingBody(market, result),
        role="matching",
        symbol=symbol,
        floor=lambda: _fence_floor(market),
        stop=stop,
        max_seconds=max_seconds,
        idle_exit_seconds=idle_exit_seconds,
        on_lease_tried=on_lease_tried,
    )
    result.owned, result.token, result.stopped_by = outcome.owned, outcome.token, outcome.stopped_by
    return result
