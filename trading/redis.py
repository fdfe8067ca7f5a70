"""The one Redis client of the trading app, built from settings.REDIS_URL.

Streams, leases and the outbox all talk to the same Redis database; channels and Celery
have their own clients. The client is created lazily (settings are never read at import
time) and shared by the threads of a process: redis-py's connection pool is thread-safe.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}

# Long enough for XREAD ... BLOCK plus a slow PostgreSQL round trip on the same thread.
SOCKET_TIMEOUT_SECONDS = 10


def get_redis() -> redis.Redis:
    """Return the process-wide client for settings.REDIS_URL (bytes in, bytes out)."""
    url: str = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.get(url)
            if client is None:
                client = redis.Redis.from_url(
                    url,
                    socket_timeout=SOCKET_TIMEOUT_SECONDS,
                    socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
                    health_check_interval=30,
                )
                _clients[url] = client
    return client


def reset_redis_clients() -> None:
    """Drop cached clients (tests that change REDIS_URL, forked children)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
