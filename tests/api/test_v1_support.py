"""Helpers of the v1 API tests (no tests here): JSON requests signed with an API key, and
requests of a logged-in web session with its CSRF token, both against the live uvicorn."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.test import Client

from accounts.models import User
from tests.api.conftest import Answer, call


@dataclass(frozen=True)
class JsonSigned:
    """A v1 client signing as the docs say: timestamp, recvWindow and signature in the
    query string, the JSON body raw; the signature covers query string + body."""

    base: str
    key: str
    secret: str

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, object] | None = None,
        body: Any = None,  # Any: whatever JSON the test sends
        raw: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timestamp: int | None = None,
    ) -> Answer:
        pairs = [(k, str(v)) for k, v in (query or {}).items()]
        stamp = timestamp or int(time.time() * 1000)
        pairs += [("timestamp", str(stamp)), ("recvWindow", "10000")]
        text = urlencode(pairs)
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        payload = text.encode() + (data or b"")
        signature = hmac.new(self.secret.encode(), payload, hashlib.sha256).hexdigest()
        sent = {"X-MBX-APIKEY": self.key, **(headers or {})}
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        return call(
            self.base, method, path, query=f"{text}&signature={signature}", body=data, headers=sent
        )


@dataclass(frozen=True)
class Session:
    """A logged-in browser: the session cookie, and the CSRF cookie + header on writes."""

    base: str
    cookie: str
    csrf: str

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, object] | None = None,
        body: Any = None,  # Any: whatever JSON the test sends
        csrf: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        sent = {"Cookie": f"{self.cookie}; {settings.CSRF_COOKIE_NAME}={self.csrf}"}
        if csrf:
            sent["X-CSRFToken"] = self.csrf
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        text = urlencode([(k, str(v)) for k, v in (query or {}).items()])
        return call(self.base, method, path, query=text, body=data, headers=sent)


def session_of(base: str, user: User) -> Session:
    """Log `user` in (a real session row in the test database) and return the browser."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    token = secrets.token_hex(16)  # 32 characters: a valid unmasked CSRF secret
    return Session(base, f"{settings.SESSION_COOKIE_NAME}={cookie}", token)


def limit_order(
    market: str = "BTC-USDT",
    *,
    side: str = "buy",
    price: str = "50000",
    quantity: str = "0.1",
    **extra: str,
) -> dict[str, str]:
    return {
        "market": market,
        "side": side,
        "type": "limit",
        "price": price,
        "quantity": quantity,
        **extra,
    }
