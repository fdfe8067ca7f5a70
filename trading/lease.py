"""A Redis lease with a fencing token: exactly one live owner per (role, market).

Acquire is ``SET NX PX`` plus ``INCR`` of a per-lease counter, in one Lua script, so every
owner gets a token strictly greater than any earlier owner's. Renew and release only act
when the caller still owns the lease. Writes that must not come from a deposed owner go
through ``fenced_xadd``: the token check and the XADD run in one script, so a loop whose
lease expired (paused past its TTL, partitioned, redelivered by Celery) cannot append a
single entry after the next owner took over. Settlement is the second fence: it refuses
events whose token is below the market's recorded ``fence_token``.

If Redis loses the counter (FLUSHDB), the next owner passes ``floor`` (the highest token
PostgreSQL has seen) and the script starts above it, so tokens never go backwards.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Mapping

from redis import Redis

from trading.redis import get_redis

_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[2])
if token <= floor then
  token = floor + 1
  redis.call('SET', KEYS[2], token)
end
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

# The loop renews every TTL/3: two missed renewals still leave it the owner.
DEFAULT_TTL_MS = 5_000


def lease_key(role: str, symbol: str) -> str:
    return f"lease:{role}:{symbol}"


def owner_label() -> str:
    """host:pid:thread, for operators reading the ``:owner`` key."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def is_lease_live(*, role: str, symbol: str, client: Redis | None = None) -> bool:
    """True while someone holds the lease (used by the watchdog)."""
    return bool((client or get_redis()).exists(lease_key(role, symbol)))


class LeaseLost(Exception):
    """The caller no longer owns the lease; it must stop writing at once."""


class Lease:
    """One holder's view of a lease. Not thread-safe: one loop owns one instance."""

    def __init__(
        self, *, role: str, symbol: str, ttl_ms: int | None = None, client: Redis | None = None
    ) -> None:
        self.key = lease_key(role, symbol)
        self.token_key = f"{self.key}:token"
        self.owner_key = f"{self.key}:owner"
        self.ttl_ms = ttl_ms or DEFAULT_TTL_MS
        self.token = 0
        self._client = client or get_redis()
        self._acquire = self._client.register_script(_ACQUIRE)
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)
        self._write = self._client.register_script(_FENCED_WRITE)
        self._renewed_at = 0.0

    def acquire(self, *, floor: int = 0) -> bool:
        """Take the lease if nobody holds it; the new token is above ``floor``."""
        token = int(
            self._acquire(
                keys=[self.key, self.token_key, self.owner_key],
                args=[self.ttl_ms, floor, owner_label()],
            )
        )
        if token:
            self.token = token
            self._renewed_at = time.monotonic()
        return bool(token)

    def renew(self) -> bool:
        """Extend the lease if still ours; False means it is lost for good."""
        if not self.token:
            return False
        ok = bool(self._renew(keys=[self.key, self.owner_key], args=[self.token, self.ttl_ms]))
        if ok:
            self._renewed_at = time.monotonic()
        else:
            self.token = 0
        return ok

    def renew_if_due(self) -> None:
        """Renew every TTL/3; raise LeaseLost when the lease is gone."""
        if time.monotonic() - self._renewed_at >= self.ttl_ms / 3000 and not self.renew():
            raise LeaseLost(self.key)

    def release(self) -> None:
        """Give the lease up (only if still ours), so a successor need not wait the TTL."""
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
