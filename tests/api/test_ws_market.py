"""Public market streams against a live uvicorn, fed by the real loops (issue 13).

Orders go through place_order in this process, the matching and settlement loops run in
threads here, settlement publishes to the Redis channel layer, and the uvicorn child's hub
turns that into Binance payloads on real websocket connections.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from accounts.models import Asset, User
from exchange.publish import flush_published
from markets import selectors
from markets.models import Market
from tests.api.conftest import call
from tests.api.ws_helpers import GapDetected, LocalBook, recv_json, request, rest_depth, ws_url
from tests.conftest import fund
from tests.trading.conftest import btc_usdt  # noqa: F401  (the fixture)
from tests.trading.pipeline_helpers import loops_running, wait_settled
from trading.services.orders import place_order
from trading.validation import OrderSpec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

D = Decimal
SYMBOL = "BTC-USDT"
STREAM_SYMBOL = "BTCUSDT"


def limit(side: str, price: str, quantity: str, tif: str | None = None) -> OrderSpec:
    return OrderSpec(side=side, price=D(price), quantity=D(quantity), time_in_force=tif)


@pytest.fixture
def funded(alice: User, bob: User, assets: dict[str, Asset], btc_usdt: Market) -> Market:  # noqa: F811
    fund(alice, assets["USDT"], "1000000")
    fund(bob, assets["BTC"], "20")
    return btc_usdt


def _trade_some(alice: User, bob: User, market: Market, rounds: int, start: int = 0) -> None:
    """Resting bids and asks at several prices, some of them taken; then settled."""
    with loops_running([SYMBOL]):
        for n in range(start, start + rounds):
            place_order(user=alice, market=market, spec=limit("buy", f"{49000 + n * 10}", "0.01"))
            place_order(user=bob, market=market, spec=limit("sell", f"{51000 - n * 10}", "0.02"))
            if n % 3 == 0:
                place_order(user=bob, market=market, spec=limit("sell", "46000", "0.003", "ioc"))
        wait_settled([SYMBOL])
    flush_published()


async def _until(
    ws: Any,
    book: LocalBook,
    target: int,
    base: str,
    trades: list | None = None,
    timeout: float = 20,
) -> None:
    """Read combined frames into the book until it reaches `target` (resync on a gap)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while book.last is None or book.last < target:
        frame = await recv_json(ws, timeout=max(0.1, deadline - loop.time()))
        stream, data = frame.get("stream"), frame.get("data")
        if stream == "btcusdt@depth@100ms":
            try:
                book.on_event(data)
            except GapDetected:
                await sync_to_async(book.resync)(base, STREAM_SYMBOL)
        elif stream == "btcusdt@trade" and trades is not None:
            trades.append(data)


def _engine_book(market: Market) -> tuple[list, list, int]:
    depth = selectors.depth(market, limit=5000)
    return depth.bids, depth.asks, depth.last_update_id


def test_watch_order_book_follows_the_engine_and_resyncs_after_a_gap(live_api, alice, bob, funded):
    base = live_api

    async def scenario() -> dict[str, Any]:
        url = ws_url(base, "/stream?streams=btcusdt@depth@100ms/btcusdt@trade")
        async with connect(url) as ws:
            book = LocalBook()
            await asyncio.sleep(0.5)  # the hub has joined the groups and read its snapshot
            await sync_to_async(book.load)(await sync_to_async(rest_depth)(base, STREAM_SYMBOL))
            trades: list[dict[str, Any]] = []
            await sync_to_async(_trade_some)(alice, bob, funded, 6)
            bids, asks, seq = await sync_to_async(_engine_book)(funded)
            await _until(ws, book, seq, base, trades)
            first = (book.as_lists(), (bids, asks), book.resyncs)
            # A lost frame on the client's side: the next diff's U is past u + 1.
            await sync_to_async(_trade_some)(alice, bob, funded, 2, start=10)
            while True:
                frame = await recv_json(ws)
                if frame["stream"] == "btcusdt@depth@100ms":
                    break  # dropped on purpose
            await sync_to_async(_trade_some)(alice, bob, funded, 2, start=20)
            bids, asks, seq = await sync_to_async(_engine_book)(funded)
            await _until(ws, book, seq, base)
            second = (book.as_lists(), (bids, asks), book.resyncs)
            return {"first": first, "second": second, "trades": trades}

    result = asyncio.run(scenario())
    (local, engine, resyncs) = result["first"]
    assert local == engine
    assert engine[0]
    assert engine[1]
    assert resyncs == 0
    local, engine, resyncs = result["second"]
    assert local == engine
    assert resyncs == 1  # the gap was detected and healed by one snapshot
    trades = result["trades"]
    ids = [t["t"] for t in trades]
    assert ids
    assert ids == sorted(set(ids))
    rest = call(base, "GET", "/api/v3/trades", query=f"symbol={STREAM_SYMBOL}&limit=1000").body
    by_id = {t["id"]: t for t in rest}
    for t in trades:
        assert (t["e"], t["s"]) == ("trade", STREAM_SYMBOL)
        assert (t["p"], t["q"], t["T"], t["m"]) == (
            by_id[t["t"]]["price"],
            by_id[t["t"]]["qty"],
            by_id[t["t"]]["time"],
            by_id[t["t"]]["isBuyerMaker"],
        )


def test_every_stream_kind_agrees_with_rest(live_api, alice, bob, funded):
    base = live_api
    names = [
        "btcusdt@depth",
        "btcusdt@depth5",
        "btcusdt@depth10@100ms",
        "btcusdt@aggTrade",
        "btcusdt@kline_1m",
        "btcusdt@ticker",
        "btcusdt@miniTicker",
        "btcusdt@bookTicker",
        "!ticker@arr",
        "!miniTicker@arr",
    ]

    async def scenario() -> dict[str, Any]:
        async with connect(ws_url(base, "/ws/1")) as ws:
            answer = await request(ws, "SUBSCRIBE", names, request_id=7)
            assert answer == {"result": None, "id": 7}
            listed = await request(ws, "LIST_SUBSCRIPTIONS", request_id="list")
            assert await request(ws, "SET_PROPERTY", ["combined", True], 8) == {
                "result": None,
                "id": 8,
            }
            await asyncio.sleep(0.5)
            await sync_to_async(_trade_some)(alice, bob, funded, 3)
            seen: dict[str, Any] = {}
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 15
            while len(seen) < len(names) and loop.time() < deadline:
                frame = await recv_json(ws)
                if "stream" in frame:
                    seen[frame["stream"]] = frame["data"]  # the latest of each
            await asyncio.sleep(1.5)  # one more second of statistics after the last trade
            while True:
                try:
                    frame = await recv_json(ws, timeout=0.2)
                except TimeoutError:
                    break
                seen[frame["stream"]] = frame["data"]
            return {"listed": listed, "seen": seen}

    result = asyncio.run(scenario())
    assert result["listed"] == {"result": [n.lower() for n in names], "id": "list"}
    seen = result["seen"]
    assert set(seen) == {n.lower() for n in names}, sorted(seen)
    depth = rest_depth(base, STREAM_SYMBOL)
    partial = seen["btcusdt@depth10@100ms"]
    assert partial["lastUpdateId"] == depth["lastUpdateId"]
    assert (partial["bids"], partial["asks"]) == (depth["bids"][:10], depth["asks"][:10])
    assert seen["btcusdt@depth5"]["bids"] == depth["bids"][:5]
    book = seen["btcusdt@bookticker"]
    assert (book["b"], book["B"], book["a"], book["A"]) == (*depth["bids"][0], *depth["asks"][0])
    assert book["u"] == depth["lastUpdateId"]
    assert seen["btcusdt@depth"]["e"] == "depthUpdate"
    ticker = call(base, "GET", "/api/v3/ticker/24hr", query=f"symbol={STREAM_SYMBOL}").body
    full = seen["btcusdt@ticker"]
    assert full["e"] == "24hrTicker"
    assert (full["c"], full["v"], full["n"], full["L"]) == (
        ticker["lastPrice"],
        ticker["volume"],
        ticker["count"],
        ticker["lastId"],
    )
    assert seen["btcusdt@miniticker"]["c"] == ticker["lastPrice"]
    assert [t["c"] for t in seen["!ticker@arr"] if t["s"] == STREAM_SYMBOL] == [ticker["lastPrice"]]
    assert seen["!miniticker@arr"][0]["e"] == "24hrMiniTicker"
    kline = call(
        base, "GET", "/api/v3/klines", query=f"symbol={STREAM_SYMBOL}&interval=1m&limit=1"
    ).body[0]
    k = seen["btcusdt@kline_1m"]["k"]
    assert (k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["n"]) == (
        kline[0], kline[1], kline[2], kline[3], kline[4], kline[5], kline[8],
    )  # fmt: skip
    agg = seen["btcusdt@aggtrade"]
    assert agg["e"] == "aggTrade"
    assert agg["a"] == agg["f"] == agg["l"] == ticker["lastId"]


def test_requests_and_their_errors(live_api, funded):
    base = live_api

    async def scenario() -> list[Any]:
        out = []
        async with connect(ws_url(base, "/ws")) as ws:
            out.append(await request(ws, "SUBSCRIBE", ["btcusdt@nonsense"], 1))
            out.append(await request(ws, "SUBSCRIBE", ["dogeusdt@trade"], 2))
            out.append(await request(ws, "SUBSCRIBE", "btcusdt@trade", 3))
            out.append(await request(ws, "FROB", [], 4))
            out.append(await request(ws, "GET_PROPERTY", ["colour"], 5))
            out.append(await request(ws, "LIST_SUBSCRIPTIONS", None, 6))  # nothing was added
            await asyncio.sleep(0.21)
            await ws.send("not json")
            out.append(await recv_json(ws))
            out.append(await request(ws, "GET_PROPERTY", ["combined"], 9))
            pong = await ws.ping()
            await asyncio.wait_for(pong, 5)
        return out

    answers = asyncio.run(scenario())
    assert [a.get("code") for a in answers[:5]] == [2, 2, 1, 2, 0]
    assert answers[0]["id"] == 1
    assert "Invalid stream name" in answers[0]["msg"]
    assert "unknown symbol" in answers[1]["msg"]
    assert answers[5] == {"result": [], "id": 6}
    assert answers[6]["code"] == 3
    assert answers[7] == {"result": False, "id": 9}


def test_bad_urls_are_refused_at_the_handshake(live_api, funded):
    base = live_api

    async def status(path: str) -> int:
        try:
            async with connect(ws_url(base, path)):
                return 101
        except InvalidStatus as exc:
            return int(exc.response.status_code)

    async def scenario() -> list[int]:
        return [
            await status("/ws/btcusdt@nonsense"),
            await status("/ws/dogeusdt@trade"),
            await status("/ws/" + "A" * 64),  # looks like a listenKey, is none
            await status("/ws/account"),  # no session
            await status("/elsewhere"),
            await status("/ws/btcusdt@trade"),
        ]

    assert asyncio.run(scenario()) == [400, 400, 400, 401, 400, 101]


def test_too_many_messages_close_the_socket(live_api, funded):
    async def scenario() -> int | None:
        async with connect(ws_url(live_api, "/ws")) as ws:
            for n in range(8):
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": n}))
            try:
                while True:
                    await recv_json(ws)
            except ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else None

    assert asyncio.run(scenario()) == 1008


def _raw_socket(port: int, path: str) -> Any:
    """A websocket opened by hand on a socket with a tiny receive buffer, never read by a
    library (websockets' client reads ahead into its own queue)."""
    import base64
    import os
    import socket

    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    return raw


def _read_frames(raw: Any, timeout: float) -> tuple[int, int | None]:
    """Read the socket to its end: (text frames, the close frame's code or None)."""
    raw.settimeout(timeout)
    data = bytearray()
    try:
        while chunk := raw.recv(1 << 20):
            data += chunk
    except TimeoutError:
        pass
    texts, at, code = 0, 0, None
    while at + 2 <= len(data):
        opcode, length = data[at] & 0x0F, data[at + 1] & 0x7F
        at += 2
        if length == 126:
            length, at = int.from_bytes(data[at : at + 2]), at + 2
        elif length == 127:
            length, at = int.from_bytes(data[at : at + 8]), at + 8
        payload = data[at : at + length]
        at += length
        if opcode == 1:
            texts += 1
        elif opcode == 8 and len(payload) >= 2:
            code = int.from_bytes(payload[:2])
    return texts, code


def test_a_slow_client_is_closed_and_does_not_slow_others(django_db_blocker, funded):
    """One socket stops reading while a burst of trades arrives: it is closed with 4008
    (its backlog dropped), and a socket on the same stream that keeps reading gets every
    trade."""
    from tests.api.conftest import uvicorn_serving

    trades_per_message, messages = 1000, 60
    total = trades_per_message * messages

    async def burst() -> None:
        layer = get_channel_layer()
        for m in range(messages):
            trades = [
                {
                    "seq": 10_000 + m * trades_per_message + i,
                    "price": "50000.00",
                    "quantity": "0.01000",
                    "taker_side": "buy",
                }
                for i in range(trades_per_message)
            ]
            await layer.group_send(
                f"trades.{SYMBOL}", {"type": "trade", "symbol": SYMBOL, "time": 0, "trades": trades}
            )

    with uvicorn_serving(
        django_db_blocker, extra_env={"WS_QUEUE_FRAMES": "3000"}, log_prefix="uvicorn-ws-slow-"
    ) as base:
        port = int(base.rsplit(":", 1)[1])

        async def scenario() -> tuple[int, int | None, int]:
            slow = await asyncio.to_thread(_raw_socket, port, "/ws/btcusdt@trade")
            fast = await connect(ws_url(base, "/ws/btcusdt@trade"), max_queue=None)
            await asyncio.sleep(0.5)

            async def read_fast() -> int:
                count = 0
                while count < total:
                    await recv_json(fast)
                    count += 1
                return count

            reader = asyncio.create_task(read_fast())
            await burst()
            fast_count = await asyncio.wait_for(reader, 60)
            slow_count, code = await asyncio.to_thread(_read_frames, slow, 5.0)
            slow.close()
            await fast.close()
            return slow_count, code, fast_count

        slow_count, code, fast_count = asyncio.run(scenario())
    assert code == 4008
    assert slow_count < total
    assert fast_count == total
