"""The web process's database connections are bounded by WEB_THREADS (exchange/asgi.py).

Django's own ASGI handler runs each request on a thread of its own, and with persistent
connections each thread left its connection open: a burst of requests opened one
PostgreSQL connection per request until the server refused clients. A live uvicorn with
WEB_THREADS=3 answers bursts of concurrent requests that read the database with at most
three connections, and answers every one of them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection

from tests.api.conftest import call, uvicorn_serving

APP_NAME = "web-threads-test"  # libpq's PGAPPNAME: the server's connections carry it
THREADS = 3


def _server_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [APP_NAME]
        )
        return int(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_requests_uses_at_most_web_threads_connections(
    django_db_blocker: Any, assets: dict[str, Any]
) -> None:
    with uvicorn_serving(
        django_db_blocker,
        extra_env={"WEB_THREADS": str(THREADS), "PGAPPNAME": APP_NAME},
        log_prefix="uvicorn-threads-",
    ) as base:
        statuses: list[int] = []
        peak = 0
        with ThreadPoolExecutor(max_workers=24) as pool:
            for _ in range(4):  # bursts of 48 concurrent reads of the markets table
                answers = list(pool.map(lambda _: call(base, "GET", "/api/v1/markets"), range(48)))
                statuses += [answer.status for answer in answers]
                peak = max(peak, _server_connections())

    assert statuses == [200] * 192
    assert 1 <= peak <= THREADS
