"""The shell both per-market loops run in: shutdown, lease, bounds and stop reasons.

Shape (STYLE.md 3.6, like healthchecks' sendalerts): a plain function that runs until a
shutdown flag is set (signals, Celery's worker shutdown), its lease is lost, or a bound
(``max_seconds``, ``idle_exit_seconds``: tests, simulate, short workers) is hit. Each turn
renews the lease if due and runs the loop's step, which reads one bounded batch with a
short BLOCK, so the loop never sleeps unboundedly.

A loop supplies a ``LoopBody``: ``start`` (with the lease held: restore state, create
groups), ``step`` (one batch; True when it did work, which resets the idle clock),
``stopping`` (a graceful stop: e.g. the last snapshot) and ``close`` (always, also when
``start`` failed half-way; told whether the lease was lost, so nothing more is written).
The shell owns everything else: the loop database session limits (trading.dbsession),
acquiring the lease (a market owned by a live loop returns at once, ``owned`` False), the
heartbeat, ``gc.freeze`` once set up (see GC_NOTE), the stop reason and releasing the
lease. A step that finds its streams gone raises ``LeaseLost`` as well: the loop stops and
its successor rebuilds.

Stop reasons: "shutdown", "max_seconds", "idle", "lease_lost".

GC_NOTE: a full (generation 2) collection scans every tracked object: with Django, the
process's modules and a restored book that is ~100k objects, measured 3-5 full collections
per 10 s of benchmark and up to 120 ms each on a loaded box, a pause every command queued
behind it pays. The loops freeze what exists once set up, so later full collections only
scan what was allocated since (settlement's longest: 123 -> 15 ms). Frozen objects are
still freed by reference counting.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from trading.dbsession import end_loop_session_limits, use_loop_session_limits
from trading.lease import Lease, LeaseLost

logger = logging.getLogger(__name__)

SHUTDOWN = threading.Event()

STOP_SHUTDOWN = "shutdown"
STOP_MAX_SECONDS = "max_seconds"
STOP_IDLE = "idle"
STOP_LEASE_LOST = "lease_lost"


def install_signal_handlers() -> None:
    """SIGTERM/SIGINT set the shutdown flag (main thread only, e.g. a management command)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: SHUTDOWN.set())


class LoopBody(Protocol):
    def start(self, lease: Lease) -> None: ...

    def step(self, now: float) -> bool: ...

    def stopping(self) -> None: ...

    def close(self, *, lease_lost: bool) -> None: ...


@dataclass
class LoopOutcome:
    """What the shell did: whether it owned the market, with which token, why it stopped."""

    owned: bool = False
    token: int = 0
    stopped_by: str = ""


def run_loop(
    body: LoopBody,
    *,
    role: str,
    symbol: str,
    floor: Callable[[], int] | None = None,
    stop: threading.Event | None = None,
    max_seconds: float | None = None,
    idle_exit_seconds: float | None = None,
    on_lease_tried: Callable[[], None] | None = None,
) -> LoopOutcome:
    """Own the (role, symbol) lease and run ``body`` until a stop reason (module docstring).

    ``floor`` gives the lowest acceptable fencing token (read with the session limits on);
    ``on_lease_tried`` runs once the lease was tried, owned or not. Never runs a step after
    losing the lease.
    """
    stop = stop or SHUTDOWN
    outcome = LoopOutcome()
    use_loop_session_limits()
    lease = Lease(role=role, symbol=symbol)
    owned = lease.acquire(floor=floor() if floor is not None else 0)
    if on_lease_tried is not None:
        on_lease_tried()
    if not owned:
        end_loop_session_limits()
        return outcome
    outcome.owned, outcome.token = True, lease.token
    lease.start_heartbeat()
    try:
        body.start(lease)
        gc.freeze()  # see GC_NOTE
        began = last_activity = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if max_seconds is not None and now - began > max_seconds:
                outcome.stopped_by = STOP_MAX_SECONDS
                break
            if idle_exit_seconds is not None and now - last_activity > idle_exit_seconds:
                outcome.stopped_by = STOP_IDLE
                break
            lease.renew_if_due()
            if body.step(now):
                last_activity = now
        else:
            outcome.stopped_by = STOP_SHUTDOWN
        body.stopping()
    except LeaseLost:
        outcome.stopped_by = STOP_LEASE_LOST
        logger.warning("%s loop of %s lost its lease; it writes nothing more", role, symbol)
    finally:
        try:
            body.close(lease_lost=outcome.stopped_by == STOP_LEASE_LOST)
        finally:
            lease.release()
            end_loop_session_limits()
    return outcome


__all__ = ["SHUTDOWN", "LoopBody", "LoopOutcome", "install_signal_handlers", "run_loop"]
