"""The beat task through Celery's real machinery: a `celery -A exchange worker` process on
this test's Redis db consumes `reporting.tasks.rollup_volumes` sent by name, and rolls up
trades settled through the real settlement code (TradeFeed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from exchange.celery import app
from reporting.models import MarketDailyVolume, VolumeCursor
from reporting.selectors import volume
from tests.markets.marketdata_helpers import Fill, TradeFeed
from trading.models import Trade

CELERY = Path(sys.executable).parent / "celery"


def _worker_env() -> dict[str, str]:
    db = connection.settings_dict
    env = dict(os.environ)
    env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env["REDIS_URL"] = settings.REDIS_URL
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    env["DJANGO_SETTINGS_MODULE"] = "exchange.settings.test"
    env["REPORTING_TIME_ZONE"] = settings.REPORTING_TIME_ZONE
    return env


@pytest.mark.django_db(transaction=True)
def test_worker_rolls_up_settled_trades(assets: dict[str, Any], tmp_path: Path):
    feed = TradeFeed.create(assets)
    feed.settle([Fill("100.00", "0.5", "buy"), Fill("101.00", "0.25", "sell")],
                at=datetime(2026, 5, 1, 9, 0, tzinfo=UTC))  # fmt: skip
    feed.settle([Fill("99.00", "1", "buy")], at=datetime(2026, 5, 2, 23, 0, tzinfo=UTC))
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(  # noqa: S603 (our own venv's celery, fixed arguments)
        [
            str(CELERY),
            "-A",
            "exchange",
            "worker",
            "-Q",
            "celery",
            "--pool",
            "solo",
            "-n",
            f"reporting-test-{os.getpid()}@%h",
            "-l",
            "info",
        ],
        env=_worker_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        app.send_task("reporting.tasks.rollup_volumes")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            cursor = VolumeCursor.objects.filter(market=feed.market).first()
            if cursor and cursor.last_trade_seq == feed.next_seq - 1:
                break
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.5)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        log.close()

    assert Trade.objects.filter(market=feed.market).count() == 3
    days = dict(
        MarketDailyVolume.objects.filter(market=feed.market).values_list("day", "trade_count")
    )
    assert days == {date(2026, 5, 1): 2, date(2026, 5, 3): 1}  # 23:00 UTC is 02:30 in Tehran
    got = volume(market=feed.market, start=date(2026, 5, 1), end=date(2026, 5, 31))
    assert (got.base_volume, got.trade_count) == (Decimal("1.75"), 3)  # type: ignore[union-attr]
    assert got.quote_volume == Decimal("50.00") + Decimal("25.25") + Decimal("99.00")  # type: ignore[union-attr]
