"""Group commit for order acceptance: many validated orders, one durable transaction.

`place_order` validates in the caller's thread and hands the request to `accept`. With
settings.ACCEPT_BATCHING (the default) that queues it for this process's `AcceptBatcher`:
one background thread (trading.background.Worker) with its own database connection that
takes every request queued so far (up to MAX_BATCH) and applies them together through
`accept_write.apply_batch`, as if they had been applied one after the other in arrival
order. Without batching, or inside a transaction (tests), the request is a batch of one,
applied in the caller's thread through the same function.

After commit: one pipelined XADD of the batch's commands (outbox id order, i.e. arrival
order) and one UPDATE marking them published (outbox.publish_outbox); a Redis failure
leaves them to the sweeper. Then each caller's future gets its Order or DomainError.

If the batch transaction fails as a whole (a client_order_id inserted concurrently by
another process, a lost connection), each request is applied again as a batch of its own,
so one bad request cannot fail the others.

The thread starts on first use, exits after IDLE_EXIT_SECONDS without work (closing its
connection), and a forked child builds its own batcher (the parent's thread does not
survive a fork, so the pid is checked on every submit).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from trading.background import Worker
from trading.models import Order, OutboxEntry
from trading.services.accept_write import AcceptRequest, Outcome, apply_batch
from trading.services.outbox import publish_outbox

__all__ = ["AcceptBatcher", "AcceptRequest", "accept", "get_batcher", "stop_batcher"]

logger = logging.getLogger(__name__)

# At most this many orders per transaction: large enough that the per-transaction costs
# (COMMIT's fsync, round trips, planning) vanish per order, small enough that one batch's
# statements and lock set stay short (a batch of 256 commits in a few ms).
MAX_BATCH = 256
# An idle batcher thread exits after this long and closes its connection (restarted lazily).
IDLE_EXIT_SECONDS = 30.0


def accept(request: AcceptRequest) -> Order:
    """Accept one validated order durably and send its command; raise its DomainError.

    Through the batcher with ACCEPT_BATCHING outside a transaction; otherwise as a batch of
    one here. Either way the same transaction code (accept_write.apply_batch) runs.
    """
    if settings.ACCEPT_BATCHING and not connection.in_atomic_block:
        return get_batcher().submit(request).result()
    outcomes, entries = apply_batch([request])
    if connection.in_atomic_block:  # a test's transaction: publish only if it commits
        transaction.on_commit(lambda: publish_outbox(entries=entries))
    else:
        publish_outbox(entries=entries)
    outcome = outcomes[0]
    if isinstance(outcome, Order):
        return outcome
    raise outcome


@dataclass(slots=True)
class BatchStats:
    """What this process's batcher has done (tests and benchmarks read it)."""

    batches: int = 0
    orders: int = 0
    largest: int = 0
    fallbacks: int = 0


class AcceptBatcher:
    """A queue of accept requests and the background thread that applies them in batches."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.stats = BatchStats()
        self._cond = threading.Condition()
        self._pending: deque[AcceptRequest] = deque()
        self._worker: Worker | None = None
        self._running = False  # under _cond: a thread will still take from _pending
        self._stopping = False

    def submit(self, request: AcceptRequest) -> Future[Order]:
        """Queue the request (starting the thread if needed); return its future."""
        with self._cond:
            self._pending.append(request)
            if self._running and self._worker is not None and self._worker.is_alive():
                self._cond.notify()
            else:
                # A fresh Worker: the previous thread may still be closing its connection
                # after deciding (under _cond) to exit, and Worker.start would wait for it.
                self._running, self._stopping = True, False
                self._worker = Worker("accept-batcher", self._step, on_exit=_close_connection)
                self._worker.start()
        return request.future

    def stop(self) -> None:
        """Let the thread finish what is queued, then exit and close its connection."""
        worker = self._worker
        if worker is not None:
            worker.stop(wake=self._wake_to_stop)

    def _wake_to_stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def _take(self) -> list[AcceptRequest] | None:
        with self._cond:
            while not self._pending:
                if self._stopping or not self._cond.wait(timeout=IDLE_EXIT_SECONDS):
                    if self._pending:
                        break
                    self._running = False
                    return None
            n = min(len(self._pending), MAX_BATCH)
            return [self._pending.popleft() for _ in range(n)]

    def _step(self) -> bool:
        batch = self._take()
        if batch is None:
            return False
        try:
            self._apply(batch)
        except BaseException as exc:  # never leave a caller waiting forever
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            logger.exception("accept batch of %d failed after its outcomes", len(batch))
        return True

    def _apply(self, batch: list[AcceptRequest]) -> None:
        stats = self.stats
        stats.batches += 1
        stats.orders += len(batch)
        stats.largest = max(stats.largest, len(batch))
        try:
            outcomes, entries = apply_batch(batch)
        except Exception:
            logger.info("accept batch of %d failed; applying one by one", len(batch), exc_info=True)
            stats.fallbacks += 1
            _one_by_one(batch)
            return
        _settle(batch, outcomes, entries)


def _close_connection() -> None:
    # Looked up on the worker's own thread: `connection.close` bound in the submitting
    # thread would be that thread's connection.
    connection.close()


def _one_by_one(batch: Sequence[AcceptRequest]) -> None:
    if connection.connection is not None and not connection.is_usable():
        connection.close()  # a lost connection: the fallback reconnects
    for request in batch:
        try:
            outcomes, entries = apply_batch([request])
        except Exception as exc:
            request.future.set_exception(exc)
        else:
            _settle([request], outcomes, entries)


def _settle(
    batch: Sequence[AcceptRequest], outcomes: Sequence[Outcome], entries: Sequence[OutboxEntry]
) -> None:
    """After commit: send the commands, then hand each caller its outcome."""
    publish_outbox(entries=entries)
    for request, outcome in zip(batch, outcomes, strict=True):
        if isinstance(outcome, Order):
            request.future.set_result(outcome)
        else:
            request.future.set_exception(outcome)


_batcher: AcceptBatcher | None = None
_batcher_lock = threading.Lock()


def get_batcher() -> AcceptBatcher:
    """This process's batcher, built on first use and again in a forked child."""
    global _batcher
    pid = os.getpid()
    batcher = _batcher
    if batcher is None or batcher.pid != pid:
        with _batcher_lock:
            if _batcher is None or _batcher.pid != pid:
                _batcher = AcceptBatcher()
            batcher = _batcher
    return batcher


def stop_batcher() -> None:
    """Stop this process's batcher thread, if any (tests, before the database goes away)."""
    if _batcher is not None and _batcher.pid == os.getpid():
        _batcher.stop()
