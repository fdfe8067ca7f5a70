"""An unmodified ccxt.pro.binance watches our streams (issue 13): watch_order_book (its
own snapshot-plus-diffs sync, the U/u rule), watch_trades and watch_ohlcv, pointed at the
live uvicorn by `urls` only (docs/api/streams.md)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import ccxt.pro
import pytest
from asgiref.sync import sync_to_async

from markets import selectors
from tests.api.test_ws_market import SYMBOL, _trade_some, funded  # noqa: F401
from tests.trading.conftest import btc_usdt  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]


def pro_client(base: str) -> Any:
    api = {k: base + "/unsupported" for k in ccxt.pro.binance().urls["api"] if k != "ws"}
    api |= {"public": base + "/api/v3", "private": base + "/api/v3"}
    api["ws"] = {"spot": base.replace("http://", "ws://") + "/ws"}
    return ccxt.pro.binance(
        {
            "urls": {"api": api},
            "options": {
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
            },
        }
    )


def test_ccxt_pro_watches_the_book_trades_and_candles(live_api, alice, bob, funded):  # noqa: F811
    async def scenario() -> dict[str, Any]:
        exchange = pro_client(live_api)
        try:
            await exchange.load_markets()
            await sync_to_async(_trade_some)(alice, bob, funded, 3)
            book = await asyncio.wait_for(exchange.watch_order_book("BTC/USDT"), 20)
            trades_task = asyncio.ensure_future(exchange.watch_trades("BTC/USDT"))
            candles_task = asyncio.ensure_future(exchange.watch_ohlcv("BTC/USDT", "1m"))
            await asyncio.sleep(0.5)
            await sync_to_async(_trade_some)(alice, bob, funded, 3, start=10)
            trades = await asyncio.wait_for(trades_task, 20)
            candles = await asyncio.wait_for(candles_task, 20)
            loop = asyncio.get_running_loop()
            depth = await sync_to_async(selectors.depth)(SYMBOL, 1000)
            deadline = loop.time() + 15
            while book["nonce"] < depth.last_update_id and loop.time() < deadline:
                book = await asyncio.wait_for(exchange.watch_order_book("BTC/USDT"), 20)
            return {"book": book, "depth": depth, "trades": trades, "candles": candles}
        finally:
            await exchange.close()

    result = asyncio.run(scenario())
    book, depth = result["book"], result["depth"]
    assert book["nonce"] == depth.last_update_id
    assert [(Decimal(str(p)), Decimal(str(q))) for p, q in book["bids"]] == depth.bids
    assert [(Decimal(str(p)), Decimal(str(q))) for p, q in book["asks"]] == depth.asks
    assert result["trades"]
    assert all(t["symbol"] == "BTC/USDT" for t in result["trades"])
    assert result["candles"]
    assert result["candles"][-1][4] > 0
