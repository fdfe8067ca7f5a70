"""A Redis lease with a fencing token: exactly one live owner per (role, market).

The lease is a Redis key set with ``SET NX PX``; its fencing token comes from PostgreSQL
(``trading.LeaseFence``, one row per lease, raised by one upsert per acquire) and Redis
refuses a token not above the highest it has granted. So every owner's token is strictly
greater than any earlier owner's, also after Redis lost everything (FLUSHALL, a restart
without persistence): the floor is durable and needs nothing from the previous owner, which
may be alive and have written nothing yet. Renew and release only act while the key still
holds the caller's token, so a deposed owner (expired, flushed, replaced) learns it at its
next renewal. Writes that must not come from a deposed owner go through ``fenced_write``:
the token check and the XADD run in one script, so a loop whose lease expired (paused past
its TTL, partitioned, redelivered by Celery) cannot append a single entry after the next
owner took over. Settlement is the second fence: it refuses events whose token is below the
market's recorded ``fence_token``.

Renewal runs on a heartbeat thread (``start_heartbeat``), every TTL/5, so a long settlement
batch or a slow statement never costs the lease, while a dead or stopped process loses it
within one TTL: that TTL is what bounds how long a market waits for a new owner.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

from django.db import connection
from redis import Redis
from redis.exceptions import RedisError

from trading.redis import get_redis
from trading.streams import lease_key, lease_owner_key, lease_token_key

logger = logging.getLogger(__name__)

# KEYS: lease, highest granted token, owner label. ARGV: ttl ms, token, owner label.
# 0: someone holds the lease; -N: a token N >= ours was granted already (retry above it).
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = tonumber(ARGV[2])
local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
if token <= seen then return -seen end
redis.call('SET', KEYS[2], token)
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[1])
return token
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0
"""

_FENCED_WRITE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local id = 1
if #ARGV > 2 then id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3)) end
redis.call('SET', KEYS[3], ARGV[2])
return id
"""

# How long a dead or stopped owner keeps its market: the heartbeat renews every TTL/5, so
# four missed renewals in a row (a Redis hiccup, a stalled thread) still leave it the owner.
# 1.5 s plus the watchdog's 0.5 s period keeps a market's pause after a death under 3 s.
DEFAULT_TTL_MS = 1_500
HEARTBEATS_PER_TTL = 5
# Grants lost to a concurrent acquirer before giving up (each retry starts above it).
_ACQUIRE_ATTEMPTS = 3

# One row per lease; the new token is above the stored one and above the caller's floor.
_GRANT_SQL = """
INSERT INTO trading_leasefence (name, token, updated_at) VALUES (%s, %s + 1, now())
ON CONFLICT (name) DO UPDATE
SET token = GREATEST(trading_leasefence.token, EXCLUDED.token - 1) + 1, updated_at = now()
RETURNING token
"""


def owner_label() -> str:
    """host:pid:thread, for operators reading the ``:owner`` key."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def is_lease_live(*, role: str, symbol: str, client: Redis | None = None) -> bool:
    """True while someone holds the lease (used by the watchdog)."""
    return bool((client or get_redis()).exists(lease_key(role, symbol)))


class LeaseLost(Exception):
    """The caller no longer owns the lease; it must stop writing at once."""


class Lease:
    """One holder's view of a lease. One loop owns one instance; only the heartbeat thread
    renews it once started."""

    def __init__(
        self, *, role: str, symbol: str, ttl_ms: int | None = None, client: Redis | None = None
    ) -> None:
        self.key = lease_key(role, symbol)
        self.token_key = lease_token_key(role, symbol)
        self.owner_key = lease_owner_key(role, symbol)
        self.ttl_ms = ttl_ms or DEFAULT_TTL_MS
        self.token = 0
        self._client = client or get_redis()
        self._acquire = self._client.register_script(_ACQUIRE)
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)
        self._write = self._client.register_script(_FENCED_WRITE)
        self._renewed_at = 0.0
        self._lost = threading.Event()
        self._stop_heartbeat = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def acquire(self, *, floor: int = 0) -> bool:
        """Take the lease if nobody holds it; the new token is above every earlier owner's
        (and above ``floor``), whatever Redis lost. Needs the database (one upsert)."""
        for _ in range(_ACQUIRE_ATTEMPTS):
            if self._client.exists(self.key):
                return False  # held: don't spend a token
            token = self._grant(floor)
            reply = int(
                self._acquire(
                    keys=[self.key, self.token_key, self.owner_key],
                    args=[self.ttl_ms, token, owner_label()],
                )
            )
            if reply > 0:
                self.token = reply
                self._renewed_at = time.monotonic()
                self._lost.clear()
                return True
            if reply == 0:
                return False
            # Redis granted a token >= ours (a racing acquirer, or a counter kept from before
            # the durable fence existed): the next grant starts above it.
            floor = max(floor, -reply)
        return False

    def _grant(self, floor: int) -> int:
        with connection.cursor() as cursor:
            cursor.execute(_GRANT_SQL, [self.key, max(floor, 0)])
            (token,) = cursor.fetchone()
        return int(token)

    def renew(self) -> bool:
        """Extend the lease if still ours; False means it is lost for good."""
        if not self.token:
            return False
        ok = bool(self._renew(keys=[self.key, self.owner_key], args=[self.token, self.ttl_ms]))
        if ok:
            self._renewed_at = time.monotonic()
        else:
            self.token = 0
            self._lost.set()
        return ok

    def start_heartbeat(self) -> None:
        """Renew from a daemon thread every TTL/5 until release() or the lease is lost."""
        if self._heartbeat is None and self.token:
            self._stop_heartbeat.clear()
            self._heartbeat = threading.Thread(
                target=self._beat, name=f"heartbeat-{self.key}", daemon=True
            )
            self._heartbeat.start()

    def _beat(self) -> None:
        interval = self.ttl_ms / 1000 / HEARTBEATS_PER_TTL
        while not self._stop_heartbeat.wait(interval):
            try:
                if not self.renew():
                    return
            except RedisError as exc:
                # Keep trying while the lease may still be ours; past the TTL it is not.
                if time.monotonic() - self._renewed_at >= self.ttl_ms / 1000:
                    logger.warning("lease %s: renewals failed past its TTL: %s", self.key, exc)
                    self.token = 0
                    self._lost.set()
                    return

    def renew_if_due(self) -> None:
        """Raise LeaseLost when the lease is gone; renew here unless a heartbeat does."""
        if self._heartbeat is not None:
            if self._lost.is_set() or time.monotonic() - self._renewed_at >= self.ttl_ms / 1000:
                raise LeaseLost(self.key)
            return
        if time.monotonic() - self._renewed_at >= self.ttl_ms / 3000 and not self.renew():
            raise LeaseLost(self.key)

    def release(self) -> None:
        """Give the lease up (only if still ours), so a successor need not wait the TTL."""
        self._stop_heartbeat.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=self.ttl_ms / 1000)
            self._heartbeat = None
        if self.token:
            self._release(keys=[self.key, self.owner_key], args=[self.token])
            self.token = 0

    def fenced_write(
        self,
        *,
        stream: str,
        fields: Mapping[str, str | bytes] | None,
        progress_key: str,
        progress: str,
    ) -> bytes | None:
        """Atomically, only if the lease is still ours: XADD ``fields`` (if any) to
        ``stream`` and SET ``progress_key`` to ``progress``. Raise LeaseLost otherwise.

        Returns the new entry id, or None when there was nothing to append.
        """
        flat: list[str | bytes | int] = [self.token, progress]
        for name, value in (fields or {}).items():
            flat.extend((name, value))
        reply = self._write(keys=[self.key, stream, progress_key], args=flat)
        if reply is None:
            self.token = 0
            raise LeaseLost(self.key)
        return bytes(reply) if isinstance(reply, bytes) else None
