"""Database session limits for the threads that run the matching and settlement loops.

A loop that is stopped (SIGSTOP, a debugger, a frozen VM) or killed inside a transaction
keeps its row locks for as long as PostgreSQL keeps its session: the settlement cursor of
its market, and the balance rows a batch touches. A lease cannot fence a database
transaction, so the session itself carries limits: ``idle_in_transaction_session_timeout``
ends a session that stopped talking mid-transaction (its locks go with it), and
``lock_timeout`` makes a successor that waits on such a lock give up and retry instead of
blocking for good. ``statement_timeout`` bounds a runaway statement. Web requests keep
PostgreSQL's defaults.

The limits follow the thread, not the connection object: Django opens a new connection
after an error or a health check, and ``connection_created`` applies them to it again.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection

_marked = threading.local()


def _limits_sql() -> str:
    idle = int(settings.LOOP_DB_IDLE_IN_TRANSACTION_MS)
    lock = int(settings.LOOP_DB_LOCK_TIMEOUT_MS)
    statement = int(settings.LOOP_DB_STATEMENT_TIMEOUT_MS)
    return (
        f"SET idle_in_transaction_session_timeout = {idle}; SET lock_timeout = {lock};"
        f" SET statement_timeout = {statement}"
    )


def use_loop_session_limits() -> None:
    """Apply the loop limits to this thread's connection, now and after every reconnect."""
    _marked.active = True
    if connection.connection is not None and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute(_limits_sql())


def configure_new_connection(sender: Any, connection: Any, **_: Any) -> None:  # Any: signal
    """connection_created receiver: a loop thread's new connection gets the limits."""
    if getattr(_marked, "active", False):
        with connection.cursor() as cursor:
            cursor.execute(_limits_sql())


def end_loop_session_limits() -> None:
    """Undo use_loop_session_limits for this thread (a loop run from a test or a command
    returns, and the thread goes on with ordinary work)."""
    if not getattr(_marked, "active", False):
        return
    _marked.active = False
    if connection.connection is not None and not connection.in_atomic_block:
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "RESET idle_in_transaction_session_timeout; RESET lock_timeout;"
                    " RESET statement_timeout"
                )
        except DatabaseError:
            connection.close()  # the next use reconnects with the defaults
