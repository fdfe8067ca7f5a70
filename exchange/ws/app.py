"""The websocket server side: Binance's URLs and messages over exchange.ws.hub.

URLs (PARTNER_API-compatible; docs/api/streams.md):

- `/ws/<stream>[/<stream>...]`: raw payloads; `/ws`, `/ws/<n>` (ccxt.pro's buckets) and
  `/stream/ws[/...]` start with no stream and take SUBSCRIBE messages;
- `/stream?streams=a/b`: combined, each payload wrapped `{"stream": name, "data": ...}`;
- `/ws/<listenKey>`: the listenKey's user data, raw;
- `/ws/account`: the signed-in web user's data (session cookie and this site's Origin).

Messages: SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY
("combined") with an `id` echoed back; errors `{"code", "msg", "id"}` as Binance's. At most
WS_INBOUND_MESSAGES_PER_SECOND messages a second (close 1008 beyond) and WS_MAX_STREAMS
streams. Protocol pings: the server (uvicorn) pings every 20 s and closes a socket that
does not answer within 20 s; a client's ping is answered with a pong.

A socket that cannot keep up: every payload goes to the socket's queue of at most
WS_QUEUE_FRAMES frames, written by the socket's own task; when the queue is full the socket
is closed with code 4008 ("too slow") and its queue dropped, so it never holds up the feed,
settlement or any other socket. The client reconnects and resyncs from a snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson
from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator
from django.conf import settings

from exchange.api.binance.base import resolve_symbol
from exchange.api.binance.errors import BinanceError
from exchange.ws import frames, listenkeys
from exchange.ws import names as n
from exchange.ws.hub import encode, get_hub, now_ms
from markets.models import Market

logger = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 4008
CLOSE_UNAUTHORIZED = 4401
CLOSE_POLICY = 1008
CLOSE_GOING_AWAY = 1001
MAX_MESSAGE_CHARS = 16_384

_origin_checker = AllowedHostsOriginValidator(None)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin1")
    return None


def _same_site(scope: dict[str, Any]) -> bool:
    origin = _header(scope, b"origin")
    return origin is not None and bool(_origin_checker.valid_origin(urlparse(origin)))


class _RequestError(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


@database_sync_to_async
def _market(symbol: str) -> Market:
    try:
        return resolve_symbol(symbol)
    except BinanceError as exc:
        raise _RequestError(2, f"Invalid request: unknown symbol {symbol!r}.") from exc


@database_sync_to_async
def _session_user_id(scope: dict[str, Any]) -> int | None:
    user = scope.get("user")
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    return int(user.pk)


class Connection:
    """One client socket: its streams, its queue and its writer."""

    def __init__(self, scope: dict[str, Any], send: Any) -> None:  # Any: ASGI callables
        self.scope = scope
        self._send = send
        self.hub = get_hub()
        self.queue: asyncio.Queue[str] = asyncio.Queue(settings.WS_QUEUE_FRAMES)
        self.streams: dict[str, n.StreamName] = {}
        self.combined = False
        self.user_id: int | None = None
        self.session_user_id: int | None = None
        self.listen_key: str | None = None
        self.closing = False
        self.tasks: list[asyncio.Task[None]] = []
        self.inbound: list[float] = []
        self.dropped = 0

    # Subscriber
    def deliver(self, name: str, data: str) -> None:
        if self.closing:
            return
        frame = f'{{"stream":{encode(name)},"data":{data}}}' if self.combined else data
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped += 1
            self._start_close(CLOSE_TOO_SLOW, "too slow: the send queue is full")

    def __hash__(self) -> int:
        return id(self)

    async def run(self, receive: Any) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        try:
            initial = await self._open()
        except _RequestError as exc:
            await self._refuse(exc)
            return
        await self._send({"type": "websocket.accept"})
        for stream, market in initial:
            self._add(stream, market)
        self.tasks.append(asyncio.get_running_loop().create_task(self._writer()))
        self.tasks.append(asyncio.get_running_loop().create_task(self._lifetime()))
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message["type"] == "websocket.receive" and not self.closing:
                    await self._on_text(message.get("text"), message.get("bytes"))
        finally:
            self.closing = True
            for stream in list(self.streams.values()):
                self.hub.unsubscribe(self, stream, user_id=self.user_id)
            self.streams.clear()
            for task in self.tasks:
                task.cancel()

    async def _open(self) -> list[tuple[n.StreamName, Market | None]]:
        path = self.scope.get("path", "")
        parts = [p for p in path.split("/") if p]
        self.session_user_id = (
            await _session_user_id(self.scope) if _same_site(self.scope) else None
        )
        names: list[str] = []
        if parts[:1] == ["stream"] and len(parts) == 1:
            self.combined = True
            query = parse_qs(self.scope.get("query_string", b"").decode("latin1"))
            for value in query.get("streams", []):
                names += [x for x in value.split("/") if x]
        elif parts[:2] == ["stream", "ws"] or (
            parts[:1] == ["ws"] and len(parts) <= 2 and (len(parts) == 1 or parts[1].isdigit())
        ):
            pass
        elif parts[:2] == ["ws", "account"] and len(parts) == 2:
            if self.session_user_id is None:
                raise _RequestError(CLOSE_UNAUTHORIZED, "Sign in first (a session on this site).")
            self.user_id = self.session_user_id
            names = [n.USER_STREAM_NAME]
        elif parts[:1] == ["ws"]:
            for name in parts[1:]:
                if listenkeys.looks_like_key(name):
                    await self._listen_key(name)
                    names.append(n.USER_STREAM_NAME)
                else:
                    names.append(name)
        else:
            raise _RequestError(2, "Invalid request: unknown path.")
        return await self._resolve(names)

    async def _listen_key(self, key: str) -> None:
        found = await database_sync_to_async(listenkeys.owner)(key)
        if found is None or (self.user_id is not None and self.user_id != found.user_id):
            raise _RequestError(2, "Invalid listenKey.")
        self.user_id, self.listen_key = found.user_id, key

    async def _resolve(self, raw: list[Any]) -> list[tuple[n.StreamName, Market | None]]:
        out = []
        for name in raw:
            try:
                stream = n.parse(name)
            except n.StreamNameError as exc:
                raise _RequestError(2, f"Invalid request: {exc}") from exc
            if stream.kind == n.USER:
                if self.user_id is None and self.session_user_id is not None:
                    self.user_id = self.session_user_id
                if self.user_id is None:
                    raise _RequestError(
                        2, "Invalid request: userData needs a listenKey or a session."
                    )
            market = await _market(stream.symbol) if stream.per_market else None
            out.append((stream, market))
        if len(self.streams) + len(out) > settings.WS_MAX_STREAMS:
            raise _RequestError(2, f"Invalid request: at most {settings.WS_MAX_STREAMS} streams.")
        return out

    def _add(self, stream: n.StreamName, market: Market | None) -> None:
        if stream.name in self.streams:
            return
        self.streams[stream.name] = stream
        self.hub.subscribe(self, stream, market=market, user_id=self.user_id)

    def _remove(self, stream: n.StreamName) -> None:
        if self.streams.pop(stream.name, None) is not None:
            self.hub.unsubscribe(self, stream, user_id=self.user_id)

    async def _refuse(self, error: _RequestError) -> None:
        """Before accept: an HTTP 400 with Binance's error body where the server can."""
        if "websocket.http.response" in self.scope.get("extensions", {}):
            body = orjson.dumps({"code": error.code, "msg": error.msg})
            status = 401 if error.code == CLOSE_UNAUTHORIZED else 400
            await self._send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await self._send({"type": "websocket.http.response.body", "body": body})
        else:
            await self._send({"type": "websocket.close", "code": CLOSE_POLICY})

    # ------------------------------------------------------------------ inbound

    def _rate_exceeded(self) -> bool:
        now = time.monotonic()
        self.inbound = [t for t in self.inbound if now - t < 1.0]
        self.inbound.append(now)
        return len(self.inbound) > settings.WS_INBOUND_MESSAGES_PER_SECOND

    async def _on_text(self, text: str | None, data: bytes | None) -> None:
        if self._rate_exceeded():
            self._start_close(CLOSE_POLICY, "too many messages")
            return
        raw = text if text is not None else (data or b"").decode("utf-8", "replace")
        if len(raw) > MAX_MESSAGE_CHARS:
            self._reply({"code": 2, "msg": "Invalid request: message too long."})
            return
        try:
            request = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self._reply({"code": 3, "msg": "Invalid JSON: the message is not JSON."})
            return
        if not isinstance(request, dict):
            self._reply({"code": 2, "msg": "Invalid request: expected an object."})
            return
        request_id = request.get("id")
        if not (
            request_id is None
            or (isinstance(request_id, str) and len(request_id) <= 64)
            or (type(request_id) is int and 0 <= request_id < 2**63)
        ):
            self._reply(
                {
                    "code": 1,
                    "msg": "Invalid value type: id must be an integer or a string.",
                    "id": None,
                }
            )
            return
        try:
            result = await self._handle(request.get("method"), request.get("params"))
        except _RequestError as exc:
            self._reply({"code": exc.code, "msg": exc.msg, "id": request_id})
            return
        self._reply({"result": result, "id": request_id})

    async def _handle(self, method: object, params: object) -> Any:
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not params:
                raise _RequestError(1, "Invalid value type: params must be a list of stream names.")
            if method == "UNSUBSCRIBE":
                parsed = []
                for name in params:
                    try:
                        parsed.append(n.parse(name))
                    except n.StreamNameError as exc:
                        raise _RequestError(2, f"Invalid request: {exc}") from exc
                for stream in parsed:
                    self._remove(stream)
                return None
            fresh = [p for p in params if not (isinstance(p, str) and p.lower() in self.streams)]
            for stream, market in await self._resolve(fresh):
                self._add(stream, market)
            return None
        if method == "LIST_SUBSCRIPTIONS":
            return list(self.streams)
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            if not isinstance(params, list) or not params or params[0] != "combined":
                raise _RequestError(0, "Unknown property.")
            if method == "GET_PROPERTY":
                return self.combined
            if len(params) != 2 or not isinstance(params[1], bool):
                raise _RequestError(1, "Invalid value type: expected true or false.")
            self.combined = params[1]
            return None
        raise _RequestError(2, "Invalid request: unknown method.")

    def _reply(self, payload: dict[str, Any]) -> None:
        """Answers go through the same queue as data, so they keep their order."""
        if self.closing:
            return
        try:
            self.queue.put_nowait(encode(payload))
        except asyncio.QueueFull:
            self._start_close(CLOSE_TOO_SLOW, "too slow: the send queue is full")

    # ------------------------------------------------------------------ outbound

    async def _writer(self) -> None:
        while True:
            frame = await self.queue.get()
            await self._send({"type": "websocket.send", "text": frame})

    def _start_close(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        for stream in list(self.streams.values()):
            self.hub.unsubscribe(self, stream, user_id=self.user_id)
        self.streams.clear()
        for task in self.tasks:
            task.cancel()
        self.tasks = [asyncio.get_running_loop().create_task(self._close(code, reason))]

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def _lifetime(self) -> None:
        """The 24 h limit; and a listenKey's life, checked every LISTEN_KEY_CHECK_SECONDS."""
        started = time.monotonic()
        check = settings.LISTEN_KEY_CHECK_SECONDS
        while True:
            left = settings.WS_MAX_CONNECTION_SECONDS - (time.monotonic() - started)
            if left <= 0:
                self._start_close(CLOSE_GOING_AWAY, "connection lifetime reached, reconnect")
                return
            await asyncio.sleep(min(left, check) if self.listen_key else left)
            if self.listen_key is not None:
                found = await database_sync_to_async(listenkeys.owner)(self.listen_key)
                if found is None:
                    self.deliver(
                        n.USER_STREAM_NAME,
                        encode(
                            frames.listen_key_expired(event_ms=now_ms(), listen_key=self.listen_key)
                        ),
                    )
                    await asyncio.sleep(0.05)  # let the writer send it first
                    self._start_close(1000, "listenKey expired")
                    return


async def streams_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI application of every websocket path."""
    await Connection(scope, send).run(receive)
