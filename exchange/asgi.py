"""ASGI entry point: HTTP goes to Django, websockets to the channels router.

Django's HTTP side runs on a fixed pool of WEB_THREADS threads (`PooledThreads`). Django's
own ASGI handler runs each request's synchronous part (middleware, views) on a thread made
for that request; with persistent database connections (DB_CONN_MAX_AGE) every such thread
leaves its connection open behind it, so a busy API opened a connection per request until
PostgreSQL refused new clients ("too many clients already", measured with bench.api at
~100 requests/s). Here each request borrows one of WEB_THREADS single-thread executors for
its whole life (asgiref's ThreadSensitiveContext with an executor), so a process holds at
most WEB_THREADS connections, reuses them, and runs that many requests at once (which is
also what lets the accept batcher put concurrent orders in one commit). A request that
finds every thread busy waits for one.
"""

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings.base")
_django_http = get_asgi_application()


class PooledThreads:
    """An ASGI app that runs `app` with each request on one of `threads` reused threads."""

    def __init__(self, app: Any, threads: int) -> None:  # Any: an ASGI callable
        if threads < 1:
            raise ValueError("WEB_THREADS must be at least 1")
        self.app = app
        self.threads = threads
        self._free: asyncio.Queue[ThreadPoolExecutor] | None = None

    def _pool(self) -> asyncio.Queue[ThreadPoolExecutor]:
        if self._free is None:  # made in the server's event loop, at the first request
            self._free = asyncio.Queue()
            for n in range(self.threads):
                self._free.put_nowait(
                    ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"web-{n}")
                )
        return self._free

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        free = self._pool()
        executor = await free.get()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.app(scope, receive, send)
        finally:
            free.put_nowait(executor)


django_http = PooledThreads(_django_http, settings.WEB_THREADS)

# Imported after Django is set up: the websocket app imports models.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter  # noqa: E402

from exchange.ws.app import streams_app  # noqa: E402

# Websockets: public market streams and listenKey streams take any Origin (partners' bots
# send none); the session's own data is only given to this site's Origin (exchange.ws.app).
application = ProtocolTypeRouter(
    {
        "http": django_http,
        "websocket": AuthMiddlewareStack(streams_app),
    }
)
