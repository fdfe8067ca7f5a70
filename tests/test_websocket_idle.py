"""An idle websocket stays open: a live uvicorn, a real client, the real Redis channel layer.

Every websocket used to die after 5 s without a message: channels-redis waits for the
consumer's next message with a 5 s blocking pop, and redis-py's default socket timeout is
5 s too, so the read timed out (`redis.exceptions.TimeoutError` in the consumer) just as
Redis answered "nothing yet". The test gives the layer a 1 s socket timeout and stays idle
for 11 s, more than twice both that and the old 5 s, then expects a published message and
a pong on the same connection.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from websockets.asyncio.client import connect

from tests.database_url import database_url
from tests.private_servers import free_port
from tests.trading.conftest import make_market

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60.0
SOCKET_TIMEOUT_SECONDS = 1
IDLE_SECONDS = 11.0  # > 2 x 5 s (the old timeout) and > 2 x SOCKET_TIMEOUT_SECONDS
SYMBOL = "BTC-USDT"


def _serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture
def uvicorn_port(transactional_db: None) -> Iterator[tuple[int, Path]]:
    """uvicorn on a free port over the suite's database and Redis; yields (port, log path)."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "exchange.settings.test",
        "CHANNELS_REDIS_SOCKET_TIMEOUT": str(SOCKET_TIMEOUT_SECONDS),
        "PYTHONUNBUFFERED": "1",
    }
    log = tempfile.NamedTemporaryFile(prefix="uvicorn-ws-", suffix=".log", delete=False)  # noqa: SIM115
    argv = [sys.executable, "-m", "uvicorn", "exchange.asgi:application"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    log.close()
    log_path = Path(log.name)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _serving(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not serve:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.2)
        yield port, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_path.unlink(missing_ok=True)


async def _idle_then_receive(port: int, message: dict[str, object]) -> tuple[object, float]:
    url = f"ws://127.0.0.1:{port}/ws/btcusdt@depth@100ms"
    # No client pings while idle: nothing at all crosses the connection for IDLE_SECONDS.
    async with connect(url, origin=f"http://127.0.0.1:{port}", ping_interval=None) as ws:  # type: ignore[arg-type]
        await asyncio.sleep(IDLE_SECONDS)
        pong = await ws.ping()
        started = time.monotonic()
        await asyncio.wait_for(pong, timeout=5)
        latency = time.monotonic() - started
        await get_channel_layer().group_send(f"depth.{SYMBOL}", message)
        received = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
    return received, latency


@pytest.mark.django_db(transaction=True)
def test_idle_websocket_stays_open_and_receives(assets, uvicorn_port):
    make_market(SYMBOL, assets["BTC"], assets["USDT"])
    port, log_path = uvicorn_port
    message = {
        "type": "depth.diff",
        "symbol": SYMBOL,
        "prev_seq": 0,
        "seq": 1,
        "time": 0,
        "bids": [["50000.00", "1.00000"]],
        "asks": [],
    }

    received, pong_seconds = asyncio.run(_idle_then_receive(port, message))

    assert received["e"] == "depthUpdate"
    assert (received["U"], received["u"]) == (1, 1)
    assert [[Decimal(x) for x in level] for level in received["b"]] == [[50000, 1]]
    assert pong_seconds < 5
    log = log_path.read_text(errors="replace")
    assert "TimeoutError" not in log, log[-4000:]
