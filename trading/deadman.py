"""The dead-man's switch (countdownCancelAll): a partner's heartbeat that cancels on silence.

An API key arms a countdown on one market; every renewal replaces the deadline with
now + countdown; 0 disarms it. When a deadline passes without a renewal, every open order
of the key's user in that market is cancelled (trading.services.orders.cancel_all), by a
sweeper that polls every SWEEP_INTERVAL_SECONDS, so the cancel commands are written well
within a second of the deadline (the engine and settlement then take a few milliseconds).

Semantics (Binance futures' countdownCancelAll, Deribit's cancel-on-disconnect):
- One switch per (API key, market): two bots of one account, each with its own key, keep
  their own heartbeats; either lapsing cancels the account's orders in that market.
- A renewal that arrives after the deadline does not rescue the orders: the lapsed switch
  fires first (in that request, if no sweeper has claimed it yet), then the new countdown
  starts. A disarm (0) after the deadline likewise fires first.
- Firing clears the deadline: the switch stays disarmed until the partner arms it again.
- A halted market cannot take cancels: its lapsed switch is retried every HALTED_RETRY
  until the market resumes (then the orders are cancelled), and logged each time.

Storage and concurrency: one PostgreSQL row per switch (trading.models.DeadmanSwitch),
deadlines in the database's clock (web servers arm, workers sweep: one clock for both). A
sweep claims due rows with one UPDATE over a `FOR UPDATE SKIP LOCKED` subquery that sets
`claimed_until`, commits, cancels, then clears the claim: any number of sweepers (one per
worker process) share the work and never fire one switch twice; a sweeper that dies
mid-fire leaves a claim that expires after CLAIM, and the next sweep fires it again
(cancel_all twice is harmless: the second finds nothing open or cancels what is open).
cancel_all opens its own durable transaction, which is why the claim commits first.

The sweeper runs as a daemon thread in every Celery worker process (started on
`worker_ready` by trading.tasks, stopped on `worker_shutting_down`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DatabaseError, connection
from django.db.models import Case, F, QuerySet, Value, When
from django.db.models.functions import Now
from django.utils import timezone

from accounts.models import ApiKey, User
from exchange.errors import DomainError
from markets.models import Market
from trading.background import Worker
from trading.dbsession import use_loop_session_limits
from trading.errors import MarketNotTrading
from trading.models import DeadmanSwitch
from trading.services.orders import cancel_all

logger = logging.getLogger(__name__)

MIN_COUNTDOWN_MS = 1_000  # below a second the sweep's own period is most of the countdown
MAX_COUNTDOWN_MS = 86_400_000  # a day; a longer "heartbeat" protects nobody
# Five sweeps a second: the cancel is written at most ~0.2 s (plus one sweep's work) late.
SWEEP_INTERVAL_SECONDS = 0.2
# Switches fired per sweep: each is one cancel_all transaction (~ms); the rest wait 0.2 s.
SWEEP_BATCH = 100
# A sweeper's claim on a switch it is firing (a fire takes milliseconds); past it, another
# sweep fires the switch again. It bounds the delay when a worker dies mid-fire; a claim
# that expires under a slow but live fire only means a second, harmless cancel_all.
CLAIM = timedelta(seconds=2)
HALTED_RETRY = timedelta(seconds=1)
# After a database error the sweeper waits this long before trying again (no hot loop).
ERROR_PAUSE_SECONDS = 1.0


class CountdownInvalid(DomainError):
    """countdownTime is not 0 nor a whole number of ms in [MIN_COUNTDOWN_MS, MAX_COUNTDOWN_MS]."""

    code = "countdown_invalid"


def is_valid_countdown(countdown_ms: int) -> bool:
    """0 (disarm) or a countdown between MIN_COUNTDOWN_MS and MAX_COUNTDOWN_MS. Pure."""
    return countdown_ms == 0 or MIN_COUNTDOWN_MS <= countdown_ms <= MAX_COUNTDOWN_MS


LEGAL_COUNTDOWNS = f"0 or {MIN_COUNTDOWN_MS}-{MAX_COUNTDOWN_MS}"


# ---------------------------------------------------------------- arm, renew, disarm

_UPSERT = """
INSERT INTO trading_deadmanswitch
    (api_key_id, user_id, market_id, countdown_ms, expires_at, claimed_until, fired_at,
     fired_orders, updated_at)
VALUES (%(key)s, %(user)s, %(market)s, %(ms)s, now() + %(ms)s * interval '1 millisecond',
        NULL, NULL, 0, now())
ON CONFLICT (api_key_id, market_id) DO UPDATE SET
    countdown_ms = EXCLUDED.countdown_ms,
    expires_at = EXCLUDED.expires_at,
    updated_at = EXCLUDED.updated_at
RETURNING id
"""


def set_countdown(*, api_key: ApiKey, market: Market, countdown_ms: int) -> DeadmanSwitch | None:
    """Arm or renew (countdown_ms > 0) or disarm (0) the key's switch on the market.

    Returns the switch as stored (None when disarming a switch that never existed).
    Guarantees: the new deadline is the database's now() + countdown_ms; a switch whose
    deadline had already passed fires (cancels) before the new countdown applies, so a late
    heartbeat never rescues orders. Raises CountdownInvalid (nothing written) for a value
    outside LEGAL_COUNTDOWNS. Precondition: not inside a transaction (firing calls
    cancel_all, whose transaction is durable).
    """
    if not is_valid_countdown(countdown_ms):
        raise CountdownInvalid(
            f"countdown_ms must be {LEGAL_COUNTDOWNS} (milliseconds).", field="countdown_ms"
        )
    for claim in _claim_due(api_key_id=api_key.pk, market_id=market.pk):
        _fire(claim)
    if countdown_ms == 0:
        DeadmanSwitch.objects.filter(api_key=api_key, market=market).update(
            countdown_ms=0, expires_at=None, updated_at=Now()
        )
    else:
        with connection.cursor() as cursor:
            cursor.execute(
                _UPSERT,
                {
                    "key": api_key.pk,
                    "user": api_key.user_id,
                    "market": market.pk,
                    "ms": countdown_ms,
                },
            )
    return DeadmanSwitch.objects.filter(api_key=api_key, market=market).first()


def list_switches(*, api_key: ApiKey) -> QuerySet[DeadmanSwitch]:
    """The key's switches (armed first, by deadline), with their markets."""
    return (
        DeadmanSwitch.objects.filter(api_key=api_key)
        .select_related("market")
        .order_by(F("expires_at").asc(nulls_last=True), "market__symbol")
    )


# ---------------------------------------------------------------- the sweep


@dataclass(frozen=True, slots=True)
class Claim:
    """A due switch this process has claimed (until `claimed_until`) and must fire."""

    switch_id: int
    user_id: int
    market_id: int
    deadline: datetime


_CLAIM_DUE = """
UPDATE trading_deadmanswitch AS d
SET claimed_until = now() + %(claim_ms)s * interval '1 millisecond'
FROM (
    SELECT id FROM trading_deadmanswitch
    WHERE expires_at <= now() AND (claimed_until IS NULL OR claimed_until <= now()) {only}
    ORDER BY expires_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) AS due
WHERE d.id = due.id
RETURNING d.id, d.user_id, d.market_id, d.expires_at
"""


def _claim_due(
    *, api_key_id: int | None = None, market_id: int | None = None, limit: int = SWEEP_BATCH
) -> list[Claim]:
    # Autocommit: the claim is visible to every other sweeper as soon as this returns.
    only = ""
    args: dict[str, int | None] = {"claim_ms": CLAIM // timedelta(milliseconds=1), "limit": limit}
    if api_key_id is not None:
        only = "AND api_key_id = %(key)s AND market_id = %(market)s"
        args.update(key=api_key_id, market=market_id)
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_DUE.format(only=only), args)
        rows = cursor.fetchall()
    return [Claim(switch_id=r[0], user_id=r[1], market_id=r[2], deadline=r[3]) for r in rows]


def _fire(claim: Claim) -> int:
    """Cancel the user's open orders in the market; clear the switch unless renewed since.

    Returns how many open orders the cancel covered. Precondition: `claim` is held.
    """
    user = User.objects.get(pk=claim.user_id)
    market = Market.objects.get(pk=claim.market_id)
    try:
        cancelled = cancel_all(user=user, market=market)
    except MarketNotTrading:
        logger.warning(
            "dead-man's switch %s lapsed on halted %s; retrying in %s",
            claim.switch_id,
            market.symbol,
            HALTED_RETRY,
        )
        DeadmanSwitch.objects.filter(pk=claim.switch_id).update(claimed_until=Now() + HALTED_RETRY)
        return 0
    # A renewal that landed while this fired set a new deadline: keep it (it is armed again).
    DeadmanSwitch.objects.filter(pk=claim.switch_id).update(
        claimed_until=None,
        fired_at=Now(),
        fired_orders=cancelled,
        expires_at=Case(When(expires_at=claim.deadline, then=Value(None)), default=F("expires_at")),
    )
    logger.info(
        "dead-man's switch %s fired on %s for user %s: %d open order(s), %s late",
        claim.switch_id,
        market.symbol,
        user.pk,
        cancelled,
        _lateness(claim.deadline),
    )
    return cancelled


def _lateness(deadline: datetime) -> str:
    return f"{(timezone.now() - deadline).total_seconds() * 1000:.0f} ms"


def sweep(*, limit: int = SWEEP_BATCH) -> int:
    """Fire every lapsed, unclaimed switch (at most `limit`); return how many fired.

    Safe to run concurrently in any number of processes (SKIP LOCKED claims) and again
    after a crash (claims expire). A switch whose fire failed is logged and retried once
    its claim expires; the others still fire.
    """
    fired = 0
    for claim in _claim_due(limit=limit):
        try:
            _fire(claim)
        except DatabaseError:
            raise  # the worker's error policy: reconnect, pause, sweep again
        except Exception:
            # One bad switch must not stop the others from firing: log it, its claim
            # expires and the next sweeps retry it.
            logger.exception("dead-man's switch %s could not fire", claim.switch_id)
            continue
        fired += 1
    return fired


# ---------------------------------------------------------------- the sweeper thread

_lock = threading.Lock()
_sweeper: Worker | None = None


def _close_connection() -> None:
    connection.close()


def _make_sweeper() -> Worker:
    def step() -> bool:
        sweep()
        # Wait on the worker's own flag so that stop() ends the pause at once.
        return not worker.stopping.wait(SWEEP_INTERVAL_SECONDS)

    def after_error() -> None:
        connection.close()
        worker.stopping.wait(ERROR_PAUSE_SECONDS)

    worker = Worker(
        "deadman-sweeper",
        step,
        # Log and continue on anything: a sweeper that died would leave every switch of
        # this process's share unfired, and no one restarts a thread.
        keep_going_on=(Exception,),
        after_error=after_error,
        on_start=use_loop_session_limits,  # lock_timeout etc.: a stuck peer cannot hang us
        on_exit=_close_connection,
    )
    return worker


def start_sweeper() -> Worker:
    """Start this process's sweeper thread (idempotent); return it."""
    global _sweeper
    with _lock:
        if _sweeper is None:
            _sweeper = _make_sweeper()
        _sweeper.start()
        logger.info("dead-man's switch sweeper started (every %ss)", SWEEP_INTERVAL_SECONDS)
        return _sweeper


def stop_sweeper(*, timeout: float = 10.0) -> bool:
    """Stop this process's sweeper (a fire in progress finishes); True once it is gone."""
    with _lock:
        if _sweeper is None:
            return True
        return _sweeper.stop(timeout=timeout)


__all__ = [
    "LEGAL_COUNTDOWNS",
    "MAX_COUNTDOWN_MS",
    "MIN_COUNTDOWN_MS",
    "CountdownInvalid",
    "is_valid_countdown",
    "list_switches",
    "set_countdown",
    "start_sweeper",
    "stop_sweeper",
    "sweep",
]
