"""The partner API's fixtures: a live uvicorn over the suite's database and Redis, API keys,
and a client that signs requests the way ccxt does (PARTNER_API §1.5).

The server is one uvicorn process for the whole session (started at the first test that
asks for it): it reads the test database pytest-django created, so transactional tests see
their rows there. Orders it accepts are matched by the loops a test starts in its own
process (tests.trading.pipeline_helpers.loops_running), over the same Redis database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.db import connection

from accounts.models import User
from accounts.services.apikeys import create_api_key
from accounts.signing import REPLAY_STORE_SINCE_KEY
from tests.database_url import database_url
from tests.private_servers import free_port
from tests.trading.conftest import redis_db  # noqa: F401  (the fixture, for tests here)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _replay_store_began(request: pytest.FixtureRequest) -> None:
    """After redis_db's FLUSHDB the signing layer's replay store restarts and refuses every
    request stamped within 1 s of the restart (-1021, by design: accounts.signing). Tests
    that flush Redis put the store's start marker long ago instead."""
    if "redis_db" in request.fixturenames:
        request.getfixturevalue("redis_db").set(REPLAY_STORE_SINCE_KEY, 0)


START_TIMEOUT = 60.0


def _serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v3/ping", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except OSError:
        return False


@contextmanager
def uvicorn_serving(
    django_db_blocker: Any,
    *,
    argv_after_python: Sequence[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    log_prefix: str = "uvicorn-api-",
) -> Iterator[str]:
    """A uvicorn child on a free port over the suite's database and Redis: its base URL.

    `argv_after_python` replaces `-m uvicorn exchange.asgi:application ...`; "{port}" in it
    is the port. Stopped (TERM, then KILL after 20 s) and its log removed on exit; if it
    does not answer /api/v3/ping within START_TIMEOUT the test fails with the log.
    """
    with django_db_blocker.unblock():
        db_url = database_url(connection.settings_dict)
    port = free_port()
    env = {
        **os.environ,
        **(extra_env or {}),
        "DATABASE_URL": db_url,
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "exchange.settings.test",
        "PYTHONUNBUFFERED": "1",
    }
    log = tempfile.NamedTemporaryFile(prefix=log_prefix, suffix=".log", delete=False)  # noqa: SIM115
    tail = argv_after_python or [
        "-m", "uvicorn", "exchange.asgi:application",
        "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning",
    ]  # fmt: skip
    argv = [sys.executable, *(part.replace("{port}", str(port)) for part in tail)]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    log.close()
    log_path = Path(log.name)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _serving(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not serve:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def live_api(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """Base URL (http://127.0.0.1:<port>) of a uvicorn serving exchange.asgi."""
    with uvicorn_serving(django_db_blocker) as base:
        yield base


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: Any  # the decoded JSON, or the text when it is not JSON

    @property
    def code(self) -> int | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


def call(
    base: str,
    method: str,
    path: str,
    *,
    query: str = "",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """One HTTP request; never raises for an HTTP error status."""
    url = f"{base}{path}" + (f"?{query}" if query else "")
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"tests call the local server only, not {url}")
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))  # noqa: S310 (checked above)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            status, raw, got = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, raw, got = error.code, error.read(), dict(error.headers)
    try:
        decoded: Any = json.loads(raw)
    except ValueError:
        decoded = raw.decode(errors="replace")
    return Answer(status, got, decoded)


@dataclass(frozen=True)
class SignedClient:
    """Signs as ccxt does: timestamp first, then the params, then recvWindow; HMAC-SHA256
    hex over the urlencoded string; GET/DELETE in the query, POST/PUT in a form body."""

    base: str
    key: str
    secret: str

    def payload(self, params: Mapping[str, object], *, timestamp: int | None = None) -> str:
        ordered: dict[str, object] = {"timestamp": timestamp or int(time.time() * 1000)}
        ordered.update(params)
        ordered.setdefault("recvWindow", 10000)
        text = urlencode([(k, str(v)) for k, v in ordered.items()])
        signature = hmac.new(self.secret.encode(), text.encode(), hashlib.sha256).hexdigest()
        return f"{text}&signature={signature}"

    def request(
        self, method: str, path: str, params: Mapping[str, object] | None = None, **kwargs: Any
    ) -> Answer:
        signed = self.payload(params or {}, **kwargs)
        headers = {"X-MBX-APIKEY": self.key}
        if method in ("POST", "PUT"):
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return call(self.base, method, path, body=signed.encode(), headers=headers)
        return call(self.base, method, path, query=signed, headers=headers)


def make_key(user: User, *, trade: bool = True, label: str = "test key") -> tuple[str, str]:
    """An HMAC API key of `user` (read, and trade unless told): (key, secret)."""
    created = create_api_key(user=user, label=label, can_read=True, can_trade=trade)
    assert created.secret is not None
    return created.api_key.key, created.secret
