"""Celery tasks of the trading app: thin shells that start loops or call one service.

The two loop tasks run for as long as their loop owns the market; they go to the
"matching" queue so that long-running loops never starve short tasks. They are acked on
start (acks_late=False): a redelivery after the broker's visibility timeout would only
start a second loop that finds the lease taken and returns, but there is no reason to
invite it. The lease watchdog (beat) restarts any loop that died.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready, worker_shutting_down

from markets.models import Market, MarketStatus
from trading import deadman
from trading.lease import is_lease_live
from trading.liveness import run_periodic_audit
from trading.loops import SHUTDOWN
from trading.matching import run_matching_loop
from trading.redis import get_redis
from trading.services.outbox import sweep_outbox as sweep_outbox_rows
from trading.settlement_loop import run_settlement_loop
from trading.streams import lease_starting_key, snapshot_request_key

logger = logging.getLogger(__name__)

LOOP_QUEUE = "matching"
# A dispatched loop task takes a moment to reach its lease; don't dispatch another meanwhile.
# The task clears the mark as soon as it has tried its lease, so this only bounds how long
# a task lost on its way (a worker killed with it queued) delays the next dispatch.
START_GRACE_SECONDS = 3
ACTIVE_STATUSES = (MarketStatus.TRADING, MarketStatus.CANCEL_ONLY)


@worker_ready.connect
def _start_deadman_sweeper(**_: object) -> None:
    # Every worker process sweeps dead-man's switches (trading.deadman) every 0.2 s; a beat
    # task could not meet its one-second promise, and SKIP LOCKED claims let them share.
    deadman.start_sweeper()


@worker_shutting_down.connect
def _stop_loops(**_: object) -> None:
    # Warm shutdown waits for running tasks: the loops must notice and return.
    SHUTDOWN.set()
    deadman.stop_sweeper(timeout=5.0)


@shared_task(acks_late=False, ignore_result=True)
def matching_loop_task(symbol: str) -> None:
    """Run the market's matching loop until shutdown or lease loss (see trading.matching)."""
    result = run_matching_loop(symbol, on_lease_tried=lambda: _started("matching", symbol))
    logger.info("matching loop %s ended: %s", symbol, result)


@shared_task(acks_late=False, ignore_result=True)
def settlement_loop_task(symbol: str) -> None:
    """Run the market's settlement consumer until shutdown or lease loss."""
    result = run_settlement_loop(symbol, on_lease_tried=lambda: _started("settlement", symbol))
    logger.info("settlement loop %s ended: %s", symbol, result)


def _started(role: str, symbol: str) -> None:
    # The watchdog may dispatch again: this task holds the lease now, or someone else does.
    get_redis().delete(lease_starting_key(role, symbol))


@shared_task(ignore_result=True)
def sweep_outbox() -> None:
    """Beat: re-send outbox rows that never reached their input stream."""
    sweep_outbox_rows()


@shared_task(ignore_result=True)
def snapshot_books() -> None:
    """Beat: ask every running matching loop to snapshot at its next batch boundary.

    The loop itself serialises its state (only it has a consistent view) and a writer
    thread stores it, so the hot path never waits on PostgreSQL.
    """
    client = get_redis()
    for symbol in Market.objects.filter(status__in=ACTIVE_STATUSES).values_list(
        "symbol", flat=True
    ):
        client.set(snapshot_request_key(symbol), 1, ex=300)


def _start_if_dead(role: str, symbol: str) -> bool:
    client = get_redis()
    if is_lease_live(role=role, symbol=symbol, client=client):
        return False
    if not client.set(lease_starting_key(role, symbol), 1, nx=True, ex=START_GRACE_SECONDS):
        return False
    task = matching_loop_task if role == "matching" else settlement_loop_task
    task.apply_async(args=[symbol], queue=LOOP_QUEUE)
    return True


@shared_task(ignore_result=True)
def lease_watchdog() -> None:
    """Beat: every TRADING / CANCEL_ONLY market gets a live matching and settlement loop.

    Reads the markets table each run, so a market created or resumed by staff gets its
    loops within one beat period, without restarting anything. Runs every half second: with
    the lease TTL (trading.lease) that bounds a market's pause after its loop died.
    """
    for symbol in Market.objects.filter(status__in=ACTIVE_STATUSES).values_list(
        "symbol", flat=True
    ):
        for role in ("matching", "settlement"):
            if _start_if_dead(role, symbol):
                logger.info("watchdog started the %s loop of %s", role, symbol)


@shared_task(ignore_result=True)
def audit_exchange() -> None:
    """Beat: the money invariants and the liveness checks, each violation logged loudly."""
    run_periodic_audit()
