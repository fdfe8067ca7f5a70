"""A database outage answers 503 with Retry-After, never a 500 trace, and heals by itself.

PostgreSQL restarting, failing over or unreachable shows up in Django as OperationalError
or InterfaceError. `DatabaseUnavailableMiddleware` turns those into a 503 that says "try
again" in each client's language: `{"code", "message", "field"}` under /api/, Binance's
`{"code": -1001, "msg": ...}` under /api/v3 (ccxt retries it; a 500 or an HTML page would
be "execution status unknown"), a small plain page elsewhere. It then closes the broken
connections, so the next request on this thread connects afresh instead of reusing a
socket the server has closed; no process restart is needed when the database is back.

Two ways an error reaches it: from a view (and DRF views: exchange.api.errors returns
None for database errors, so DRF re-raises them) through `process_exception`; from
another middleware (a session saved after the view) through Django's
`got_request_exception` signal, whose 500 this middleware, outermost, replaces.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from django.core.signals import got_request_exception
from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

# A restart or failover of PostgreSQL takes seconds; asking clients back sooner only adds
# load while it recovers.
RETRY_AFTER_SECONDS = 5
DATABASE_ERRORS = (OperationalError, InterfaceError)
_OUTAGE_SEEN = "_database_unavailable"  # request attribute set by the signal receiver

BINANCE_UNAVAILABLE = {
    "code": -1001,
    "msg": "Internal error; unable to process your request. Please try again.",
}
NATIVE_UNAVAILABLE = {
    "code": "service_unavailable",
    "message": "The service is temporarily unavailable; please try again shortly.",
    "field": None,
}
# Plain and self-contained: the site's templates would run context processors that read
# the user from the database that is down.
_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Temporarily unavailable</title></head>
<body>
<h1>Temporarily unavailable</h1>
<p>The exchange cannot reach its database right now. Nothing you sent was lost by this
page; please try again in a few seconds.</p>
</body>
</html>
"""


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    """The 503 for `request`'s audience, with Retry-After and no caching."""
    path = request.path_info
    if path == "/api/v3" or path.startswith("/api/v3/"):
        response = HttpResponse(json.dumps(BINANCE_UNAVAILABLE), content_type="application/json")
    elif path == "/api" or path.startswith("/api/"):
        response = HttpResponse(json.dumps(NATIVE_UNAVAILABLE), content_type="application/json")
    else:
        response = HttpResponse(_PAGE, content_type="text/html; charset=utf-8")
    response.status_code = 503
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    """Answers database connection errors with a 503 (see the module docstring).

    Must come before every middleware that can touch the database (sessions, auth,
    allauth), so that it is the outermost of them.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        got_request_exception.connect(_note_database_error, dispatch_uid=__name__)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, _OUTAGE_SEEN, False):
            return database_unavailable_response(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_ERRORS):
            return None
        _log_and_close(request, exception)
        return database_unavailable_response(request)


def _note_database_error(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    # Any: signal senders are whatever sent them. Called inside Django's except block, so
    # sys.exc_info() is the error that is about to become a 500.
    exception = sys.exc_info()[1]
    if request is not None and isinstance(exception, DATABASE_ERRORS):
        setattr(request, _OUTAGE_SEEN, True)
        _log_and_close(request, exception)


def _log_and_close(request: HttpRequest, exception: Exception) -> None:
    logger.warning(
        "database unavailable; answered 503",
        extra={"path": request.path_info, "error": type(exception).__name__},
    )
    # The socket of a connection that saw a connection error is usually dead; closing it
    # here (this thread's connections) makes the next request connect afresh. Closing a
    # dead connection can raise again, which changes nothing.
    for connection in connections.all(initialized_only=True):
        with contextlib.suppress(DatabaseError):
            connection.close()
