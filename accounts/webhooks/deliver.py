"""Delivering webhook events: claim due rows with a lease, POST them, record the outcome.

At least once, never lost:

1. **Claim** (one short transaction): due PENDING rows, oldest due first, ``FOR UPDATE
   SKIP LOCKED`` so concurrent workers take different rows; each claimed row's
   ``next_attempt_at`` becomes now + WEBHOOKS_LEASE_SECONDS (the lease) before COMMIT.
2. **Send**, outside any transaction: re-check the target (accounts.webhooks.targets),
   connect to the checked address, POST the signed body, read at most MAX_RESPONSE_BYTES.
3. **Record** (one short transaction): delivered on a 2xx; otherwise attempts + 1 and the
   next attempt after ``retry_delay``, or DEAD after WEBHOOKS_MAX_ATTEMPTS. The UPDATE is
   conditional on the lease still being ours (``next_attempt_at`` = our lease end), so a
   worker that outlived its lease, or a replay meanwhile, cannot overwrite newer state.

A worker that dies between 1 and 3 leaves its rows PENDING with the lease as their due
time: another worker takes them once it has passed. The receiver may then see an event
twice, always with the same event id, which is what it deduplicates on.

Circuit breaker, per endpoint: WEBHOOKS_BREAKER_THRESHOLD consecutive failures open it for
``breaker_cooldown`` (doubling with each further failure, at most BREAKER_MAX_COOLDOWN).
While it is open its rows are not claimed: they wait, no attempt is counted. When the
cool-down ends one row is claimed as a probe (the endpoint is held open for a lease while
it is in flight); its success closes the breaker, its failure opens it again for longer.
Rows of an endpoint whose breaker opens mid-batch are handed back uncounted.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import urllib3
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.errors import InvalidInput
from accounts.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from accounts.webhooks.record import epoch_ms
from accounts.webhooks.signing import decrypt_secret, signature
from accounts.webhooks.targets import Target, check_target

logger = logging.getLogger(__name__)

# Rows per claim: an attempt takes at most connect + 2 x read (request_time_bound, 15 s by
# default), so a batch of 10 usually ends well inside the default 120 s lease; rows whose
# lease would run out before their turn are handed back unsent (deliver_due_webhooks).
CLAIM_BATCH = 10
RUN_BUDGET_SECONDS = 20.0  # a task run stops claiming after this; beat starts the next one
MAX_RESPONSE_BYTES = 64 * 1024  # a receiver's answer is read this far and no further
ERROR_CHARS = 200  # WebhookDelivery.last_error's length
RETRY_BASE_SECONDS = 10
RETRY_MAX_STEP_SECONDS = 4 * 3600
BREAKER_MAX_COOLDOWN = timedelta(hours=1)
USER_AGENT = "exchange-webhooks/1"


def retry_ceiling(attempts: int) -> float:
    """The longest wait, in seconds, after the `attempts`-th failed attempt (1-based):
    10 s doubling per attempt (10, 20, 40, ... 10,240 s), capped at 4 h.

    With the default 16 attempts the ceilings of the 15 waits add up to 78,070 s (21.7 h):
    an event is retried for up to about a day before it is dead; with full jitter (below)
    the expected span is half of that.
    """
    if attempts < 1:
        raise ValueError("attempts counts from 1")
    return float(min(RETRY_BASE_SECONDS * 2 ** min(attempts - 1, 32), RETRY_MAX_STEP_SECONDS))


def retry_delay(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """How long to wait after the `attempts`-th failure: "full jitter", uniform in
    [0, ``retry_ceiling(attempts)``] but at least 1 s, so receivers that failed together
    are not retried in lockstep."""
    ceiling = retry_ceiling(attempts)
    draw = (rng or _RNG).uniform(0.0, ceiling)
    return timedelta(seconds=max(1.0, draw))


def breaker_cooldown(failures: int) -> timedelta:
    """How long an endpoint stays open after its `failures`-th consecutive failure (counted
    from WEBHOOKS_BREAKER_THRESHOLD): the cool-down setting, doubling, at most an hour."""
    extra = max(0, failures - settings.WEBHOOKS_BREAKER_THRESHOLD)
    seconds = settings.WEBHOOKS_BREAKER_COOLDOWN_SECONDS * 2 ** min(extra, 20)
    return min(timedelta(seconds=seconds), BREAKER_MAX_COOLDOWN)


_RNG = random.SystemRandom()


@dataclass(frozen=True, slots=True)
class Claim:
    """One claimed delivery: everything the request needs, and the lease that owns it."""

    delivery_id: int
    endpoint_id: int
    url: str
    secret: str
    event_id: str
    event_type: str
    payload: Any  # Any: the JSON payload as stored
    created_at: datetime
    attempts: int
    lease_until: datetime


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got: a status code (None: no HTTP answer) and a short error."""

    status_code: int | None
    error: str = ""

    @property
    def is_delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def claim_due(*, limit: int = CLAIM_BATCH, now: datetime | None = None) -> list[Claim]:
    """Claim up to `limit` due deliveries for this worker (step 1 of the module docstring).

    Skips rows other workers hold, rows of inactive endpoints and of endpoints whose
    breaker is open; of an endpoint past its threshold (half-open) only one row, its probe.
    """
    now = now or timezone.now()
    lease_until = now + timedelta(seconds=settings.WEBHOOKS_LEASE_SECONDS)
    with transaction.atomic():
        rows = list(
            WebhookDelivery.objects.filter(
                status=WebhookDeliveryStatus.PENDING,
                next_attempt_at__lte=now,
                endpoint__is_active=True,
            )
            .filter(Q(endpoint__open_until__isnull=True) | Q(endpoint__open_until__lte=now))
            .select_related("endpoint")
            .order_by("next_attempt_at", "pk")
            .select_for_update(skip_locked=True, of=("self",), no_key=True)[:limit]
        )
        claims: list[Claim] = []
        probing: dict[int, bool] = {}  # half-open endpoint -> this worker holds its probe
        for row in rows:
            endpoint = row.endpoint
            if endpoint.consecutive_failures >= settings.WEBHOOKS_BREAKER_THRESHOLD:
                if endpoint.pk not in probing:
                    probing[endpoint.pk] = _hold_for_probe(endpoint.pk, now, lease_until)
                    if probing[endpoint.pk]:
                        claims.append(_claim(row, endpoint, lease_until))
                continue  # one probe per half-open endpoint, and only by one worker
            claims.append(_claim(row, endpoint, lease_until))
        if claims:
            WebhookDelivery.objects.filter(pk__in=[c.delivery_id for c in claims]).update(
                next_attempt_at=lease_until
            )
    return claims


def _hold_for_probe(endpoint_id: int, now: datetime, lease_until: datetime) -> bool:
    """Hold a half-open endpoint back while this worker's probe is in flight; False when
    another worker took the probe first (its UPDATE committed, ours then matches nothing:
    the row lock makes the second worker re-read the first's open_until)."""
    return bool(
        WebhookEndpoint.objects.filter(pk=endpoint_id)
        .filter(Q(open_until__isnull=True) | Q(open_until__lte=now))
        .update(open_until=lease_until)
    )


def _claim(row: WebhookDelivery, endpoint: WebhookEndpoint, lease_until: datetime) -> Claim:
    return Claim(
        delivery_id=row.pk,
        endpoint_id=endpoint.pk,
        url=endpoint.url,
        secret=decrypt_secret(endpoint.secret_encrypted),
        event_id=row.event_id,
        event_type=row.event_type,
        payload=row.payload,
        created_at=row.created_at,
        attempts=row.attempts,
        lease_until=lease_until,
    )


def request_body(claim: Claim) -> bytes:
    """The POST body: ``{"id", "type", "created" (ms), "data"}``, the same on every attempt."""
    envelope = {
        "id": claim.event_id,
        "type": claim.event_type,
        "created": epoch_ms(claim.created_at),
        "data": claim.payload,
    }
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode("utf-8")


def send(claim: Claim) -> Outcome:
    """POST one claimed delivery (step 2); never raises for the receiver's faults."""
    try:
        target = check_target(claim.url)
    except InvalidInput as exc:
        return Outcome(None, f"refused: {exc.message}"[:ERROR_CHARS])
    body = request_body(claim)
    timestamp = str(epoch_ms(timezone.now()))
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Exchange-Event-Id": claim.event_id,
        "X-Exchange-Timestamp": timestamp,
        "X-Exchange-Signature": signature(claim.secret, timestamp, body),
    }
    try:
        return _post(target, body, headers)
    except Exception as exc:  # a receiver's fault must not stop the batch; it is recorded
        logger.info("webhook %s to %s failed: %r", claim.event_id, claim.endpoint_id, exc)
        return Outcome(None, _describe(exc))


def request_time_bound() -> timedelta:
    """The longest one attempt can take: connecting, waiting for the answer, and reading
    the body until the deadline (connect + read after the start), whose last read can
    block one more read timeout."""
    connect = settings.WEBHOOKS_CONNECT_TIMEOUT_SECONDS
    read = settings.WEBHOOKS_READ_TIMEOUT_SECONDS
    return timedelta(seconds=connect + 2 * read)


def _post(target: Target, body: bytes, headers: dict[str, str]) -> Outcome:
    connect = settings.WEBHOOKS_CONNECT_TIMEOUT_SECONDS
    read = settings.WEBHOOKS_READ_TIMEOUT_SECONDS
    deadline = time.monotonic() + connect + read
    timeout = urllib3.Timeout(connect=connect, read=read)
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        # Connect to the checked address; TLS still verifies the certificate for the name.
        pool = urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            timeout=timeout,
            maxsize=1,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            assert_hostname=target.host,
            server_hostname=target.host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(
            target.address, target.port, timeout=timeout, maxsize=1, retries=False
        )
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers=headers,
            redirect=False,  # a 3xx is a failure: a redirect could point anywhere
            retries=False,
            assert_same_host=False,
            preload_content=False,
        )
        try:
            snippet = _read_capped(response, deadline=deadline)
        finally:
            response.release_conn()
        status = int(response.status)
    finally:
        pool.close()
    if 200 <= status < 300:
        return Outcome(status)
    text = snippet[:120].decode("utf-8", "replace").replace("\n", " ").strip()
    return Outcome(status, f"HTTP {status}" + (f": {text}" if text else ""))


def _read_capped(response: Any, *, deadline: float) -> bytes:  # Any: urllib3's response
    """Read the answer up to MAX_RESPONSE_BYTES, or until the deadline: a receiver that
    streams forever or trickles bytes cannot hold a worker. Returns what was read."""
    chunks: list[bytes] = []
    size = 0
    while size < MAX_RESPONSE_BYTES and time.monotonic() < deadline:
        chunk = response.read(min(8192, MAX_RESPONSE_BYTES - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _describe(exc: Exception) -> str:
    name = type(exc).__name__
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return "timeout: no answer within the read timeout"
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return "timeout: could not connect within the connect timeout"
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return "connection failed"
    return f"{name}: {exc}"[:ERROR_CHARS]


def record_outcome(claim: Claim, outcome: Outcome, *, now: datetime | None = None) -> bool:
    """Store one attempt's outcome (step 3); return True when it opened the endpoint's
    breaker. Ignored for the row (not the breaker) when the lease is no longer ours."""
    now = now or timezone.now()
    owned = WebhookDelivery.objects.filter(
        pk=claim.delivery_id,
        status=WebhookDeliveryStatus.PENDING,
        next_attempt_at=claim.lease_until,
    )
    attempts = claim.attempts + 1
    with transaction.atomic():
        endpoint = (
            WebhookEndpoint.objects.select_for_update(no_key=True)
            .filter(pk=claim.endpoint_id)
            .first()
        )
        if outcome.is_delivered:
            owned.update(
                status=WebhookDeliveryStatus.DELIVERED,
                attempts=attempts,
                last_attempt_at=now,
                last_status_code=outcome.status_code,
                last_error="",
                delivered_at=now,
            )
            if endpoint is not None and (endpoint.consecutive_failures or endpoint.open_until):
                endpoint.consecutive_failures, endpoint.open_until = 0, None
                endpoint.save(update_fields=["consecutive_failures", "open_until"])
            return False
        is_dead = attempts >= settings.WEBHOOKS_MAX_ATTEMPTS
        owned.update(
            status=WebhookDeliveryStatus.DEAD if is_dead else WebhookDeliveryStatus.PENDING,
            attempts=attempts,
            next_attempt_at=now if is_dead else now + retry_delay(attempts),
            last_attempt_at=now,
            last_status_code=outcome.status_code,
            last_error=outcome.error[:ERROR_CHARS],
        )
        if endpoint is None:
            return False
        endpoint.consecutive_failures += 1
        opened = endpoint.consecutive_failures >= settings.WEBHOOKS_BREAKER_THRESHOLD
        endpoint.open_until = (
            now + breaker_cooldown(endpoint.consecutive_failures) if opened else None
        )
        endpoint.save(update_fields=["consecutive_failures", "open_until"])
        return opened


def release(claim: Claim, *, now: datetime | None = None) -> None:
    """Hand a claimed row back unattempted (its endpoint's breaker opened meanwhile): due
    again at once, no attempt counted; the open breaker keeps it from being claimed."""
    WebhookDelivery.objects.filter(
        pk=claim.delivery_id,
        status=WebhookDeliveryStatus.PENDING,
        next_attempt_at=claim.lease_until,
    ).update(next_attempt_at=now or timezone.now())


def deliver_due_webhooks(
    *, limit: int = CLAIM_BATCH, budget_seconds: float = RUN_BUDGET_SECONDS
) -> int:
    """Deliver what is due, batch after batch, until nothing is or the budget is spent;
    return how many attempts were made. Safe to run on several workers at once."""
    started = time.monotonic()
    attempted = 0
    while time.monotonic() - started < budget_seconds:
        claims = claim_due(limit=limit)
        if not claims:
            break
        opened: set[int] = set()
        for position, claim in enumerate(claims):
            # A row whose lease would end mid-request is handed back, not sent: once the
            # lease is over another worker may take it, and two workers would send it at
            # once (a slow batch). The batch's first row always goes: a fresh lease, and
            # progress even with a lease set shorter than one attempt.
            late = position > 0 and timezone.now() + request_time_bound() >= claim.lease_until
            if claim.endpoint_id in opened or late:
                release(claim)
                continue
            outcome = send(claim)
            attempted += 1
            if record_outcome(claim, outcome):
                opened.add(claim.endpoint_id)
    return attempted


__all__ = [
    "CLAIM_BATCH",
    "Claim",
    "Outcome",
    "breaker_cooldown",
    "claim_due",
    "deliver_due_webhooks",
    "record_outcome",
    "release",
    "request_time_bound",
    "retry_ceiling",
    "retry_delay",
    "send",
]
