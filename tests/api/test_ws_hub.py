"""The hub in this process, on the real channel layer (issue 13): a diff really lost on the
way (the feed's channel left the group while a batch settled) is healed by the hub
itself, and its clients' U/u chain never breaks; stream names are parsed strictly."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from exchange.api.binance.base import resolve_symbol
from exchange.ws import names
from exchange.ws.hub import Hub
from markets import selectors
from tests.api.test_ws_market import SYMBOL, _engine_book, _trade_some, funded  # noqa: F401
from tests.api.ws_helpers import LocalBook
from tests.trading.conftest import btc_usdt  # noqa: F401  (the fixture)


class Collector:
    def __init__(self) -> None:
        self.frames: list[tuple[str, Any]] = []

    def deliver(self, name: str, data: str) -> None:
        self.frames.append((name, json.loads(data)))


def _snapshot_dict() -> dict[str, Any]:
    depth = selectors.depth(SYMBOL, limit=5000)
    return {
        "lastUpdateId": depth.last_update_id,
        "bids": [[str(p), str(q)] for p, q in depth.bids],
        "asks": [[str(p), str(q)] for p, q in depth.asks],
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db")
def test_the_hub_heals_a_diff_lost_on_the_way(alice, bob, funded):  # noqa: F811
    async def scenario() -> dict[str, Any]:
        hub = Hub()
        collector = Collector()
        market = await sync_to_async(resolve_symbol)("BTCUSDT")
        hub.subscribe(collector, names.parse("btcusdt@depth@100ms"), market=market)
        feed = hub.markets["BTCUSDT"]
        while feed.syncing:
            await asyncio.sleep(0.05)
        book = LocalBook()
        book.load(await sync_to_async(_snapshot_dict)())
        layer = get_channel_layer()
        depth_reader = feed.readers[0]
        await layer.group_discard(depth_reader.group, depth_reader.channel)  # lose what follows
        await sync_to_async(_trade_some)(alice, bob, funded, 3)
        await layer.group_add(depth_reader.group, depth_reader.channel)
        await sync_to_async(_trade_some)(alice, bob, funded, 2, start=10)
        bids, asks, seq = await sync_to_async(_engine_book)(funded)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while (book.last or 0) < seq and loop.time() < deadline:
            await asyncio.sleep(0.1)
            frames, collector.frames = collector.frames, []
            for _, frame in frames:
                book.on_event(frame)  # raises GapDetected on a broken U/u chain
        for feed_ in list(hub.markets.values()):
            feed_.stop()
        return {"book": book.as_lists(), "engine": (bids, asks), "resyncs": feed.resyncs}

    result = asyncio.run(scenario())
    assert result["resyncs"] >= 1
    assert result["book"] == result["engine"]


@pytest.mark.parametrize(
    ("raw", "kind", "extra"),
    [
        ("btcusdt@depth", names.DEPTH, {"speed_ms": 1000}),
        ("BTCUSDT@depth@100ms", names.DEPTH, {"speed_ms": 100}),
        ("btcusdt@depth20@100ms", names.PARTIAL, {"levels": 20, "speed_ms": 100}),
        ("btcusdt@depth5", names.PARTIAL, {"levels": 5, "speed_ms": 1000}),
        ("btcusdt@kline_1M", names.KLINE, {"interval": "1M"}),
        ("btcusdt@kline_1m", names.KLINE, {"interval": "1m"}),
        ("btcusdt@aggTrade", names.AGG_TRADE, {}),
        ("!ticker@arr", names.ALL_TICKERS, {}),
    ],
)
def test_stream_names(raw, kind, extra):
    parsed = names.parse(raw)
    assert parsed.kind == kind
    for field, value in extra.items():
        assert getattr(parsed, field) == value


@pytest.mark.parametrize(
    "raw",
    ["", "btcusdt", "btcusdt@depth7", "btcusdt@kline_1s", "btcusdt@kline_2m", "b@trade",
     "btc usdt@trade", "btcusdt@trade\n", "بیت@trade", 7, None, "x" * 65 + "@trade",
     "btcusdt@depth@250ms"],
)  # fmt: skip
def test_bad_stream_names(raw):
    with pytest.raises(names.StreamNameError):
        names.parse(raw)
