"""The matching loop's snapshot writer: its thread stores snapshots and closes its own
connection (trading.background.Worker)."""

from __future__ import annotations

import logging

import pytest

from markets.models import Market
from trading.engine.matching import Engine
from trading.matching import _SnapshotWriter
from trading.models import EngineSnapshot
from trading.recovery import LoopState, freeze_state

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]


def test_the_writer_stores_a_pending_snapshot_on_close_and_closes_its_own_connection(
    btc_usdt: Market, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="trading.background")
    writer = _SnapshotWriter(market_id=btc_usdt.pk, symbol=btc_usdt.symbol)
    writer.submit(freeze_state(LoopState(engine=Engine())), token=3)
    writer.close()

    assert list(EngineSnapshot.objects.values_list("market_id", "fence_token")) == [
        (btc_usdt.pk, 3)
    ]
    # Its cleanup runs on its thread: a close bound to the creating thread's connection
    # failed there ("DatabaseWrapper objects created in a thread can only be used in that
    # same thread") and left the thread's own connection open.
    assert caplog.records == []
