"""What the stream tests share: a websocket client, and ccxt.pro's order-book rule.

`LocalBook` is written from the documented rule (Binance "How to manage a local order book
correctly", which ccxt.pro's watchOrderBook follows): buffer the diffs, take the REST
snapshot, drop diffs with u <= lastUpdateId, apply the rest (quantity 0 removes a level),
and require U == previous u + 1, else resync.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

from tests.api.conftest import call

D = Decimal


class GapDetected(Exception):
    pass


class LocalBook:
    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.last: int | None = None  # the last applied u (or the snapshot's id)
        self.buffer: list[dict[str, Any]] = []
        self.resyncs = 0

    def load(self, snapshot: dict[str, Any]) -> None:
        self.bids = {D(p): D(q) for p, q in snapshot["bids"]}
        self.asks = {D(p): D(q) for p, q in snapshot["asks"]}
        self.last = snapshot["lastUpdateId"]
        buffered, self.buffer = self.buffer, []
        for event in buffered:
            self.on_event(event)

    def on_event(self, event: dict[str, Any]) -> None:
        if self.last is None:
            self.buffer.append(event)
            return
        if event["u"] <= self.last:
            return
        if event["U"] > self.last + 1:
            raise GapDetected(f"U={event['U']} after u={self.last}")
        for side, levels in ((self.bids, event["b"]), (self.asks, event["a"])):
            for price, quantity in levels:
                if D(quantity) == 0:
                    side.pop(D(price), None)
                else:
                    side[D(price)] = D(quantity)
        self.last = event["u"]

    def resync(self, base: str, symbol: str) -> None:
        self.resyncs += 1
        self.last = None
        self.load(rest_depth(base, symbol))

    def as_lists(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        return sorted(self.bids.items(), reverse=True), sorted(self.asks.items())


def rest_depth(base: str, symbol: str) -> dict[str, Any]:
    answer = call(base, "GET", "/api/v3/depth", query=f"symbol={symbol}&limit=1000")
    assert answer.status == 200, answer
    return dict(answer.body)


def ws_url(base: str, path: str) -> str:
    return base.replace("http://", "ws://") + path


async def recv_json(ws: Any, timeout: float = 10.0) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout=timeout))


async def request(ws: Any, method: str, params: Any = None, request_id: Any = 1) -> Any:
    """Send one request and return its answer (skipping data frames before it). Paced
    under the server's 5 messages a second."""
    await asyncio.sleep(0.21)
    message: dict[str, Any] = {"method": method, "id": request_id}
    if params is not None:
        message["params"] = params
    await ws.send(json.dumps(message))
    while True:
        answer = await recv_json(ws)
        if isinstance(answer, dict) and "id" in answer and ("result" in answer or "code" in answer):
            return answer
