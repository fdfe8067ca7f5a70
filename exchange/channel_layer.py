"""The channels layer over Redis, with a blocking wait that always ends before the socket times out.

channels-redis waits for a consumer's next message with `BZPOPMIN <key> <brpop_timeout>` in
a loop (5 s by default). redis-py's default socket timeout is 5 s as well, so on an idle
websocket the client gave up reading at the moment Redis answered "nothing yet": a
`TimeoutError` in the consumer's receive loop closed every connection that went 5 s
without a message. Here the wait is a setting that must be shorter than the socket
timeout of every host, and the check runs when the layer is built.
"""

from __future__ import annotations

from typing import Any

from channels_redis.core import RedisChannelLayer as _RedisChannelLayer
from django.core.exceptions import ImproperlyConfigured


class RedisChannelLayer(_RedisChannelLayer):  # type: ignore[misc]  # channels-redis is untyped
    """channels-redis' layer with `blocking_pop_seconds` below each host's `socket_timeout`.

    Each host is a dict of redis-py connection-pool arguments (`address` plus
    `socket_timeout`, ...), as channels-redis accepts them.
    """

    # Any: channels-redis' own keyword arguments (hosts, prefix, expiry, capacity, ...)
    def __init__(self, *, blocking_pop_seconds: float, **config: Any) -> None:
        super().__init__(**config)
        if not blocking_pop_seconds > 0:
            raise ImproperlyConfigured("blocking_pop_seconds must be positive.")
        for host in self.hosts:
            socket_timeout = host.get("socket_timeout") if isinstance(host, dict) else None
            if socket_timeout is None or socket_timeout <= blocking_pop_seconds:
                raise ImproperlyConfigured(
                    "Every channel layer host needs a socket_timeout longer than "
                    f"blocking_pop_seconds ({blocking_pop_seconds}), got {socket_timeout!r}: "
                    "a shorter one closes idle websockets."
                )
        self.brpop_timeout = blocking_pop_seconds
