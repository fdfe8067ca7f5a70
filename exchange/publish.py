"""Fan settled results out to channels groups, after the writing transaction commits.

Settlement (trading.services.settlement) and the balance services of accounts (deposits,
withdrawals) publish through here; the websocket hub (exchange.ws.hub) reads the groups.
This module imports no app, so every app may use it.

Groups: ``depth.<symbol>`` (one "depth.diff" per settled batch: ``prev_seq`` -> ``seq`` and
the levels that changed, so a client detects a gap when a message's prev_seq is not the
last seq it saw, and resyncs from a REST snapshot), ``trades.<symbol>`` ("trade", the
batch's trades) and ``user.<id>`` ("order.update" and "balance.update" for that user only).

Channels groups are at-most-once (a full channel drops messages): the sequence numbers are
what make the stream trustworthy, not the delivery. A failure to publish is logged and
never undoes or repeats settlement.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

Message = tuple[str, dict[str, Any]]  # (group, message with a "type" key)


def depth_group(symbol: str) -> str:
    return f"depth.{symbol}"


def trades_group(symbol: str) -> str:
    return f"trades.{symbol}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


async def _send_all(messages: Sequence[Message]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    results = await asyncio.gather(
        *(layer.group_send(group, message) for group, message in messages),
        return_exceptions=True,
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        logger.warning(
            "%d of %d channel messages not sent: %r", len(failed), len(results), failed[0]
        )


class _Publisher:
    """One thread with its own event loop that sends every message batch, in order.

    Settlement only enqueues (microseconds); spinning an event loop per batch with
    async_to_sync cost ~15 ms a batch. The queue is bounded: when clients or Redis are too
    slow, batches are dropped and counted (delivery is at-most-once by design).
    """

    MAX_PENDING = 10_000

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._queue: asyncio.Queue[list[Message]] | None = None
        self._ready = threading.Event()
        self._idle = threading.Condition()
        self.pending = 0
        self.dropped = 0
        # One daemon thread runs the event loop for good; if it ever fails, that is logged.
        self._thread = threading.Thread(target=self._run, name="channels-publisher", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._queue = asyncio.Queue(self.MAX_PENDING)
        self._ready.set()
        try:
            self._loop.run_until_complete(self._main())
        except BaseException:
            logger.exception("the channels publisher stopped")
            raise

    async def _main(self) -> None:
        assert self._queue is not None  # noqa: S101 - set before _ready
        while True:
            batch = await self._queue.get()
            try:
                await _send_all(batch)
            except Exception:
                logger.exception("publishing %d channel messages failed", len(batch))
            with self._idle:
                self.pending -= 1
                self._idle.notify_all()

    def _put(self, batch: list[Message]) -> None:
        assert self._queue is not None  # noqa: S101
        try:
            self._queue.put_nowait(batch)
        except asyncio.QueueFull:
            self.dropped += 1
            with self._idle:
                self.pending -= 1
                self._idle.notify_all()

    def submit(self, batch: list[Message]) -> None:
        with self._idle:
            self.pending += 1
        self._loop.call_soon_threadsafe(self._put, batch)

    def flush(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self.pending == 0, timeout)


_publisher: _Publisher | None = None
_publisher_lock = threading.Lock()


def _get_publisher() -> _Publisher:
    global _publisher  # one publisher thread per process
    if _publisher is None:
        with _publisher_lock:
            if _publisher is None:
                _publisher = _Publisher()
    return _publisher


def publish_now(messages: Sequence[Message]) -> None:
    """Hand the messages to the publisher thread; returns at once. Call after commit."""
    if messages:
        _get_publisher().submit(list(messages))


def flush_published(timeout: float = 5.0) -> bool:
    """Wait until every submitted batch was sent (tests, and graceful shutdown)."""
    return _publisher is None or _publisher.flush(timeout)


def publish_on_commit(messages: Sequence[Message]) -> None:
    """Schedule the messages for after the current transaction commits (never before)."""
    if messages:
        batch = list(messages)
        transaction.on_commit(lambda: publish_now(batch))
