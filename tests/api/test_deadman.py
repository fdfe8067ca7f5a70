"""The dead-man's switch (countdownCancelAll) with real processes.

Two `celery -A exchange worker` processes (as ./run and tests/faults start them; each runs
the sweeper thread trading.tasks starts on worker_ready) sweep this test database; switches
are armed through the live uvicorn (`live_api`); the matching and settlement loops run in
this process (`loops_running`). The lapse is measured: from the deadline the database set
to the moment settlement wrote the orders CANCELED (printed; asserted with a generous
bound, since the box may be loaded). The service-level cases (a late renewal, two sweepers
racing, a crashed sweeper's claim, a halted market) run without the workers.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import ApiKey, Asset, User
from markets.models import Market, MarketStatus
from tests.api.conftest import SignedClient, call, make_key
from tests.api.test_v1_support import JsonSigned, session_of
from tests.conftest import fund, ledger_snapshot
from tests.trading.conftest import btc_usdt as btc_usdt  # fixtures
from tests.trading.conftest import eth_usdt as eth_usdt
from tests.trading.pipeline_helpers import loops_running, wait_settled, worker_env
from trading import deadman
from trading.engine.commands import CancelAll, command_to_dict
from trading.models import DeadmanSwitch, Order, OrderStatus, OutboxEntry
from trading.services.orders import place_order
from trading.validation import OrderSpec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

D = Decimal
ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).parent / "celery"
PATH = "/api/v3/countdownCancelAll"
# Generous: the promise is 1 s; a loaded 2-core box running the suite may add a little.
LAPSE_BOUND = timedelta(seconds=3)
OPEN = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


# ---------------------------------------------------------------- real worker processes


def _spawn_worker(name: str) -> subprocess.Popen[bytes]:
    log = tempfile.NamedTemporaryFile(prefix=f"{name}-", suffix=".log", delete=False)  # noqa: SIM115
    # Its own queue: the worker takes no task of anyone else's; it is here for its sweeper.
    argv = [str(CELERY), "-A", "exchange", "worker", "-Q", f"deadman-test-{uuid.uuid4().hex}",
            "--pool", "threads", "--concurrency", "1", "-n", f"{name}-{os.getpid()}@%h",
            "-l", "info"]  # fmt: skip
    env = worker_env()
    env["CELERY_BROKER_URL"] = env["REDIS_URL"]
    proc = subprocess.Popen(  # noqa: S603 (our own venv's celery, fixed arguments)
        argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    proc.log_path = log.name  # type: ignore[attr-defined]
    log.close()
    return proc


def _log(proc: subprocess.Popen[bytes]) -> str:
    return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]


def _wait_ready(procs: Sequence[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for proc in procs:
        while "sweeper started" not in _log(proc):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the worker did not start its sweeper:\n{_log(proc)[-3000:]}")
            time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: this worker only
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    Path(proc.log_path).unlink(missing_ok=True)  # type: ignore[attr-defined]


@pytest.fixture
def sweepers(live_api: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two real worker processes, each sweeping the switches every 0.2 s."""
    procs = [_spawn_worker("deadman1"), _spawn_worker("deadman2")]
    try:
        _wait_ready(procs)
        yield procs
        for proc in procs:
            if proc.returncode == -signal.SIGKILL:
                continue  # killed by the test itself
            assert proc.poll() is None, _log(proc)[-3000:]
            assert "Traceback" not in _log(proc), _log(proc)[-3000:]
    finally:
        for proc in procs:
            _stop(proc)


# ---------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _empty_redis(redis_db: Any) -> None:
    """Every test here starts on an emptied Redis database (the conftest's autouse fixture
    then marks the signing layer's replay store as begun long ago)."""


@pytest.fixture
def markets(btc_usdt: Market, eth_usdt: Market) -> tuple[Market, Market]:
    Market.objects.filter(pk=eth_usdt.pk).update(last_price=D("2000"))
    eth_usdt.refresh_from_db()
    return btc_usdt, eth_usdt


def _buy(user: User, market: Market, coid: str, price: str, qty: str = "0.01") -> Order:
    spec = OrderSpec(side="buy", price=D(price), quantity=D(qty), client_order_id=coid)
    return place_order(user=user, market=market, spec=spec)


def _statuses(orders: Sequence[Order]) -> list[str]:
    by_pk = dict(Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("pk", "status"))
    return [by_pk[o.pk] for o in orders]


def _wait_cancelled(orders: Sequence[Order], *, timeout: float = 15) -> datetime:
    """When settlement wrote the last of the orders CANCELED (its updated_at)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = list(
            Order.objects.filter(pk__in=[o.pk for o in orders]).values("status", "updated_at")
        )
        if all(row["status"] == OrderStatus.CANCELED for row in rows):
            return max(row["updated_at"] for row in rows)
        time.sleep(0.01)
    raise AssertionError(f"not cancelled within {timeout}s: {_statuses(orders)}")


def _cancel_alls(user: User, market: Market) -> int:
    payload = command_to_dict(CancelAll(account_id=user.pk))
    return OutboxEntry.objects.filter(
        market=market, payload__type=payload["type"], payload__account_id=user.pk
    ).count()


def _switches() -> list[tuple[Any, ...]]:
    return list(
        DeadmanSwitch.objects.order_by("pk").values_list(
            "pk", "api_key_id", "market_id", "countdown_ms", "expires_at", "fired_at"
        )
    )


# ---------------------------------------------------------------- with real processes


def test_a_lapsed_switch_cancels_the_keys_orders_in_that_market_within_a_second(
    live_api: str,
    sweepers: list[subprocess.Popen[bytes]],
    alice: User,
    bob: User,
    assets: dict[str, Asset],
    markets: tuple[Market, Market],
) -> None:
    btc, eth = markets
    fund(alice, assets["USDT"], "10000")
    fund(bob, assets["USDT"], "10000")
    key, secret = make_key(alice)
    client = SignedClient(live_api, key, secret)
    with loops_running([btc.symbol, eth.symbol]):
        mine = [_buy(alice, btc, "a1", "45000"), _buy(alice, btc, "a2", "46000")]
        other_market = _buy(alice, eth, "a3", "1900", qty="0.1")
        other_user = _buy(bob, btc, "b1", "45000")
        wait_settled([btc.symbol, eth.symbol])

        armed = client.request("POST", PATH, {"symbol": "BTCUSDT", "countdownTime": 1500})
        assert (armed.status, armed.body) == (200, {"symbol": "BTCUSDT", "countdownTime": "1500"})
        # Heartbeats every 0.5 s for 3 s: twice the countdown, and nothing is cancelled.
        started = time.monotonic()
        while time.monotonic() - started < 3.0:
            time.sleep(0.5)
            renewed = client.request("POST", PATH, {"symbol": "BTCUSDT", "countdownTime": 1500})
            assert renewed.status == 200, renewed.body
        assert _statuses(mine) == [OrderStatus.NEW, OrderStatus.NEW]
        assert _cancel_alls(alice, btc) == 0

        # Silence: the switch lapses at its deadline and the workers cancel.
        deadline = DeadmanSwitch.objects.get(api_key__key=key).expires_at
        assert deadline is not None
        cancelled_at = _wait_cancelled(mine)
        lapse = cancelled_at - deadline
        figure = f"{lapse.total_seconds() * 1000:.0f} ms"
        print(f"\ndead-man's switch: orders CANCELED {figure} after expiry")  # noqa: T201
        assert timedelta(0) <= lapse < LAPSE_BOUND
        wait_settled([btc.symbol, eth.symbol])

    assert _statuses([other_market, other_user]) == [OrderStatus.NEW, OrderStatus.NEW]
    assert _cancel_alls(alice, btc) == 1  # two sweepers, one fire
    assert _cancel_alls(alice, eth) == 0
    assert _cancel_alls(bob, btc) == 0
    switch = DeadmanSwitch.objects.get(api_key__key=key)
    assert (switch.expires_at, switch.fired_orders) == (None, 2)
    assert switch.fired_at is not None
    assert switch.fired_at >= deadline


def test_zero_disarms_and_nothing_is_cancelled(
    live_api: str,
    sweepers: list[subprocess.Popen[bytes]],
    alice: User,
    assets: dict[str, Asset],
    markets: tuple[Market, Market],
) -> None:
    _btc, eth = markets
    fund(alice, assets["USDT"], "10000")
    key, secret = make_key(alice)
    client = SignedClient(live_api, key, secret)
    with loops_running([eth.symbol]):
        order = _buy(alice, eth, "a1", "1900", qty="0.1")
        wait_settled([eth.symbol])
        armed = client.request("POST", PATH, {"symbol": "ETHUSDT", "countdownTime": 1000})
        assert armed.status == 200
        disarmed = client.request("POST", PATH, {"symbol": "ETHUSDT", "countdownTime": 0})
        assert disarmed.status == 200
        assert disarmed.body == {"symbol": "ETHUSDT", "countdownTime": "0"}
        time.sleep(2.0)  # twice the countdown, ten sweeps of each worker
        assert _statuses([order]) == [OrderStatus.NEW]
    switch = DeadmanSwitch.objects.get(api_key__key=key)
    assert (switch.countdown_ms, switch.expires_at, switch.fired_at) == (0, None, None)
    assert _cancel_alls(alice, eth) == 0


def test_with_one_worker_killed_the_other_still_fires(
    live_api: str,
    sweepers: list[subprocess.Popen[bytes]],
    alice: User,
    assets: dict[str, Asset],
    markets: tuple[Market, Market],
) -> None:
    btc, _eth = markets
    fund(alice, assets["USDT"], "10000")
    key, secret = make_key(alice)
    os.killpg(sweepers[0].pid, signal.SIGKILL)  # its own session: that worker only
    sweepers[0].wait(timeout=10)
    with loops_running([btc.symbol]):
        order = _buy(alice, btc, "a1", "45000")
        wait_settled([btc.symbol])
        armed = SignedClient(live_api, key, secret).request(
            "POST", PATH, {"symbol": "BTCUSDT", "countdownTime": 1000}
        )
        assert armed.status == 200, armed.body
        deadline = DeadmanSwitch.objects.get(api_key__key=key).expires_at
        assert deadline is not None
        lapse = _wait_cancelled([order]) - deadline
        figure = f"{lapse.total_seconds() * 1000:.0f} ms"
        print(f"\ndead-man's switch, one worker killed: CANCELED {figure} after expiry")  # noqa: T201
        assert timedelta(0) <= lapse < LAPSE_BOUND
        wait_settled([btc.symbol])
    assert _cancel_alls(alice, btc) == 1


# ---------------------------------------------------------------- bad input: nothing changes


@pytest.mark.parametrize(
    ("_case", "values", "code"),
    [
        ("negative", {"symbol": "BTCUSDT", "countdownTime": "-1000"}, -1100),
        ("signed plus", {"symbol": "BTCUSDT", "countdownTime": "+1000"}, -1100),
        ("decimal", {"symbol": "BTCUSDT", "countdownTime": "1500.0"}, -1100),
        ("exponent", {"symbol": "BTCUSDT", "countdownTime": "1e4"}, -1100),
        ("words", {"symbol": "BTCUSDT", "countdownTime": "soon"}, -1100),
        ("underscore", {"symbol": "BTCUSDT", "countdownTime": "1_000"}, -1100),
        ("whitespace", {"symbol": "BTCUSDT", "countdownTime": " 1000"}, -1100),
        ("arabic digits", {"symbol": "BTCUSDT", "countdownTime": "\u0661\u0660\u0660"}, -1100),
        ("below a second", {"symbol": "BTCUSDT", "countdownTime": "999"}, -1100),
        ("above a day", {"symbol": "BTCUSDT", "countdownTime": "86400001"}, -1100),
        ("huge", {"symbol": "BTCUSDT", "countdownTime": "9" * 40}, -1100),
        ("empty", {"symbol": "BTCUSDT", "countdownTime": ""}, -1102),
        ("missing", {"symbol": "BTCUSDT"}, -1102),
        ("no symbol", {"countdownTime": "1000"}, -1102),
        ("unknown symbol", {"symbol": "DOGEUSDT", "countdownTime": "1000"}, -1121),
        ("malformed symbol", {"symbol": "BTC-USDT", "countdownTime": "1000"}, -1121),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    live_api: str,
    alice: User,
    assets: dict[str, Asset],
    markets: tuple[Market, Market],
    _case: str,
    values: dict[str, str],
    code: int,
) -> None:
    btc, _eth = markets
    fund(alice, assets["USDT"], "10000")
    key, secret = make_key(alice)
    client = SignedClient(live_api, key, secret)
    _buy(alice, btc, "a1", "45000")
    assert client.request("POST", PATH, {"symbol": "BTCUSDT", "countdownTime": 60000}).status == 200
    before = (_switches(), ledger_snapshot(), Order.objects.count(), OutboxEntry.objects.count())

    answer = client.request("POST", PATH, values)

    assert answer.status == 400, answer.body
    assert answer.code == code, answer.body
    assert isinstance(answer.body["msg"], str)
    assert answer.body["msg"]
    after = (_switches(), ledger_snapshot(), Order.objects.count(), OutboxEntry.objects.count())
    assert after == before


def test_a_key_without_trade_scope_is_refused(
    live_api: str, alice: User, markets: tuple[Market, Market]
) -> None:
    key, secret = make_key(alice, trade=False)
    answer = SignedClient(live_api, key, secret).request(
        "POST", PATH, {"symbol": "BTCUSDT", "countdownTime": 60000}
    )
    assert (answer.status, answer.code) == (403, -2015)
    assert DeadmanSwitch.objects.exists() is False


def test_a_duplicated_parameter_is_refused(
    live_api: str, alice: User, markets: tuple[Market, Market]
) -> None:
    key, secret = make_key(alice)
    client = SignedClient(live_api, key, secret)
    body = client.payload({"symbol": "BTCUSDT", "countdownTime": 60000})
    body = body.replace("&recvWindow", "&countdownTime=1000&recvWindow")
    unsigned = body.rsplit("&signature=", 1)[0]
    signature = hmac.new(secret.encode(), unsigned.encode(), hashlib.sha256).hexdigest()
    answer = call(
        live_api,
        "POST",
        PATH,
        body=f"{unsigned}&signature={signature}".encode(),
        headers={"X-MBX-APIKEY": key, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (answer.status, answer.code) == (400, -1101)
    assert DeadmanSwitch.objects.exists() is False


def test_unsigned_and_get_requests_are_refused(
    live_api: str, markets: tuple[Market, Market]
) -> None:
    unsigned = call(live_api, "POST", PATH, query="symbol=BTCUSDT&countdownTime=1000")
    assert unsigned.status == 401
    assert unsigned.code == -2014
    assert call(live_api, "GET", PATH).status in (401, 405)
    assert DeadmanSwitch.objects.exists() is False


def test_ccxt_arms_and_disarms_through_its_private_api(
    live_api: str, alice: User, markets: tuple[Market, Market]
) -> None:
    import ccxt

    key, secret = make_key(alice)
    api = dict.fromkeys(("public", "private"), live_api + "/api/v3")
    api.update({k: live_api + "/unsupported" for k in ccxt.binance().urls["api"] if k not in api})
    exchange = ccxt.binance({"urls": {"api": api}, "apiKey": key, "secret": secret})
    params = {"symbol": "BTCUSDT", "countdownTime": 120000}

    armed = exchange.request("countdownCancelAll", ["private"], "POST", params)

    assert armed == {"symbol": "BTCUSDT", "countdownTime": "120000"}
    assert DeadmanSwitch.objects.get(api_key__key=key).countdown_ms == 120000
    params["countdownTime"] = 0
    assert (
        exchange.request("countdownCancelAll", ["private"], "POST", params)["countdownTime"] == "0"
    )
    assert DeadmanSwitch.objects.get(api_key__key=key).expires_at is None


# ---------------------------------------------------------------- v1: /api/v1/cancel-countdowns

V1 = "/api/v1/cancel-countdowns"


def test_v1_arms_lists_and_disarms_with_a_signed_json_body(
    live_api: str, alice: User, markets: tuple[Market, Market]
) -> None:
    key, secret = make_key(alice)
    client = JsonSigned(live_api, key, secret)
    before = int(time.time() * 1000)

    armed = client.request("POST", V1, body={"market": "BTC-USDT", "countdown_ms": 60000})

    assert armed.status == 200, armed.body
    assert armed.body["market"] == "BTC-USDT"
    assert (armed.body["countdown_ms"], armed.body["armed"]) == (60000, True)
    assert before + 59_000 < armed.body["expires_at"] < int(time.time() * 1000) + 61_000
    assert (armed.body["fired_at"], armed.body["fired_orders"]) == (None, 0)
    listed = client.request("GET", V1)
    assert listed.status == 200, listed.body
    assert [s["market"] for s in listed.body] == ["BTC-USDT"]
    disarmed = client.request("POST", V1, body={"market": "BTC-USDT", "countdown_ms": "0"})
    assert disarmed.status == 200, disarmed.body
    assert (disarmed.body["armed"], disarmed.body["expires_at"]) == (False, None)
    never = client.request("POST", V1, body={"market": "ETH-USDT", "countdown_ms": 0})
    assert (never.status, never.body["armed"]) == (200, False)
    assert DeadmanSwitch.objects.filter(expires_at__isnull=False).exists() is False


def test_v1_takes_a_form_body_signed_like_ccxt(
    live_api: str, alice: User, markets: tuple[Market, Market]
) -> None:
    key, secret = make_key(alice)
    answer = SignedClient(live_api, key, secret).request(
        "POST", V1, {"market": "BTC-USDT", "countdown_ms": 5000}
    )
    assert answer.status == 200, answer.body
    assert answer.body["countdown_ms"] == 5000


@pytest.mark.parametrize(
    ("_case", "body", "status", "code"),
    [
        ("negative", {"market": "BTC-USDT", "countdown_ms": -1}, 400, "countdown_invalid"),
        ("below a second", {"market": "BTC-USDT", "countdown_ms": 999}, 400, "countdown_invalid"),
        ("above a day", {"market": "BTC-USDT", "countdown_ms": 86400001}, 400, "countdown_invalid"),
        ("huge", {"market": "BTC-USDT", "countdown_ms": 10**30}, 400, "countdown_invalid"),
        ("float", {"market": "BTC-USDT", "countdown_ms": 1500.5}, 400, "countdown_invalid"),
        ("whole float", {"market": "BTC-USDT", "countdown_ms": 1500.0}, 400, "countdown_invalid"),
        ("boolean", {"market": "BTC-USDT", "countdown_ms": True}, 400, "countdown_invalid"),
        ("exponent", {"market": "BTC-USDT", "countdown_ms": "1e4"}, 400, "countdown_invalid"),
        ("spaces", {"market": "BTC-USDT", "countdown_ms": " 5000"}, 400, "countdown_invalid"),
        ("null", {"market": "BTC-USDT", "countdown_ms": None}, 400, "null"),
        ("missing", {"market": "BTC-USDT"}, 400, "required"),
        ("no market", {"countdown_ms": 5000}, 400, "required"),
        ("market as number", {"market": 7, "countdown_ms": 5000}, 400, "invalid"),
        ("unknown market", {"market": "DOGE-USDT", "countdown_ms": 5000}, 404, "market_not_found"),
    ],
)
def test_v1_bad_input_is_refused_and_changes_nothing(
    live_api: str,
    alice: User,
    markets: tuple[Market, Market],
    _case: str,
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    key, secret = make_key(alice)
    client = JsonSigned(live_api, key, secret)
    assert (
        client.request("POST", V1, body={"market": "BTC-USDT", "countdown_ms": 60000}).status == 200
    )
    before = (_switches(), ledger_snapshot(), Order.objects.count(), OutboxEntry.objects.count())

    answer = client.request("POST", V1, body=body)

    assert (answer.status, answer.code) == (status, code), answer.body
    assert answer.body["message"]
    after = (_switches(), ledger_snapshot(), Order.objects.count(), OutboxEntry.objects.count())
    assert after == before


def test_v1_needs_an_api_key_with_trade_scope_to_arm(
    live_api: str, alice: User, markets: tuple[Market, Market]
) -> None:
    key, secret = make_key(alice, trade=False)
    read_only = JsonSigned(live_api, key, secret)
    refused = read_only.request("POST", V1, body={"market": "BTC-USDT", "countdown_ms": 5000})
    assert (refused.status, refused.code) == (403, "scope_missing")
    assert read_only.request("GET", V1).status == 200  # listing needs only "read"
    browser = session_of(live_api, alice)
    by_session = browser.request("POST", V1, body={"market": "BTC-USDT", "countdown_ms": 5000})
    assert (by_session.status, by_session.code) == (403, "api_key_required")
    assert DeadmanSwitch.objects.exists() is False


# ---------------------------------------------------------------- the service, no workers


def _key_of(user: User) -> ApiKey:
    key, _secret = make_key(user)
    return ApiKey.objects.get(key=key)


def _lapse(key: ApiKey, market: Market, *, ago: timedelta = timedelta(milliseconds=10)) -> None:
    DeadmanSwitch.objects.filter(api_key=key, market=market).update(expires_at=timezone.now() - ago)


def test_arming_sets_the_deadline_from_the_database_clock(
    alice: User, markets: tuple[Market, Market]
) -> None:
    btc, _eth = markets
    key = _key_of(alice)
    before = timezone.now()
    switch = deadman.set_countdown(api_key=key, market=btc, countdown_ms=60000)
    assert switch is not None
    assert switch.expires_at is not None
    earliest, latest = before + timedelta(seconds=59), timezone.now() + timedelta(seconds=61)
    assert earliest < switch.expires_at < latest
    assert (switch.user_id, switch.countdown_ms) == (alice.pk, 60000)
    again = deadman.set_countdown(api_key=key, market=btc, countdown_ms=5000)
    assert again is not None
    assert again.pk == switch.pk
    assert again.countdown_ms == 5000
    assert DeadmanSwitch.objects.count() == 1
    assert deadman.set_countdown(api_key=key, market=_eth, countdown_ms=0) is None


@pytest.mark.parametrize("countdown_ms", [-1, 1, 999, 86_400_001, 10**12])
def test_the_service_refuses_out_of_range_countdowns(
    alice: User, markets: tuple[Market, Market], countdown_ms: int
) -> None:
    with pytest.raises(deadman.CountdownInvalid):
        deadman.set_countdown(api_key=_key_of(alice), market=markets[0], countdown_ms=countdown_ms)
    assert DeadmanSwitch.objects.exists() is False


def test_a_late_renewal_fires_the_lapsed_switch_first(
    alice: User, assets: dict[str, Asset], markets: tuple[Market, Market]
) -> None:
    btc, _eth = markets
    fund(alice, assets["USDT"], "10000")
    key = _key_of(alice)
    _buy(alice, btc, "a1", "45000")
    deadman.set_countdown(api_key=key, market=btc, countdown_ms=1000)
    _lapse(key, btc)

    switch = deadman.set_countdown(api_key=key, market=btc, countdown_ms=60000)

    assert _cancel_alls(alice, btc) == 1
    assert switch is not None
    assert switch.fired_orders == 1
    assert switch.fired_at is not None
    assert switch.expires_at is not None  # armed again
    assert switch.expires_at > timezone.now()
    assert switch.claimed_until is None


def test_two_sweepers_racing_fire_a_switch_once(
    alice: User, assets: dict[str, Asset], markets: tuple[Market, Market]
) -> None:
    btc, _eth = markets
    fund(alice, assets["USDT"], "10000")
    key = _key_of(alice)
    _buy(alice, btc, "a1", "45000")
    deadman.set_countdown(api_key=key, market=btc, countdown_ms=1000)
    _lapse(key, btc)
    results: list[int] = []
    start = threading.Barrier(4)

    def sweep() -> None:
        try:
            start.wait()
            results.append(deadman.sweep())
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(results) == [0, 0, 0, 1]
    assert _cancel_alls(alice, btc) == 1
    assert DeadmanSwitch.objects.get().expires_at is None


def test_a_crashed_sweepers_claim_is_fired_again_once_it_expires(
    alice: User, assets: dict[str, Asset], markets: tuple[Market, Market]
) -> None:
    btc, _eth = markets
    fund(alice, assets["USDT"], "10000")
    key = _key_of(alice)
    _buy(alice, btc, "a1", "45000")
    deadman.set_countdown(api_key=key, market=btc, countdown_ms=1000)
    _lapse(key, btc)
    [claim] = deadman._claim_due()  # a sweeper claims it, then dies before cancelling

    assert deadman.sweep() == 0  # the claim holds: nobody else fires it meanwhile
    DeadmanSwitch.objects.filter(pk=claim.switch_id).update(
        claimed_until=timezone.now() - timedelta(milliseconds=1)
    )
    assert deadman.sweep() == 1
    assert _cancel_alls(alice, btc) == 1


def test_a_halted_market_is_retried_until_it_resumes(
    alice: User, assets: dict[str, Asset], markets: tuple[Market, Market]
) -> None:
    btc, _eth = markets
    fund(alice, assets["USDT"], "10000")
    key = _key_of(alice)
    _buy(alice, btc, "a1", "45000")
    deadman.set_countdown(api_key=key, market=btc, countdown_ms=1000)
    _lapse(key, btc)
    Market.objects.filter(pk=btc.pk).update(status=MarketStatus.HALTED)

    deadman.sweep()
    switch = DeadmanSwitch.objects.get()
    assert switch.expires_at is not None  # still lapsed
    assert switch.fired_at is None
    assert switch.claimed_until is not None
    assert switch.claimed_until > timezone.now()
    assert _cancel_alls(alice, btc) == 0

    Market.objects.filter(pk=btc.pk).update(status=MarketStatus.TRADING)
    DeadmanSwitch.objects.update(claimed_until=None)  # as if HALTED_RETRY had passed
    assert deadman.sweep() == 1
    assert _cancel_alls(alice, btc) == 1


def test_a_switch_that_has_not_lapsed_is_left_alone(
    alice: User, assets: dict[str, Asset], markets: tuple[Market, Market]
) -> None:
    btc, _eth = markets
    fund(alice, assets["USDT"], "10000")
    key = _key_of(alice)
    _buy(alice, btc, "a1", "45000")
    deadman.set_countdown(api_key=key, market=btc, countdown_ms=60000)
    assert deadman.sweep() == 0
    assert _cancel_alls(alice, btc) == 0


def test_a_revoked_keys_armed_switch_still_fires(
    alice: User, assets: dict[str, Asset], markets: tuple[Market, Market]
) -> None:
    btc, _eth = markets
    fund(alice, assets["USDT"], "10000")
    key = _key_of(alice)
    _buy(alice, btc, "a1", "45000")
    deadman.set_countdown(api_key=key, market=btc, countdown_ms=1000)
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    _lapse(key, btc)
    assert deadman.sweep() == 1
    assert _cancel_alls(alice, btc) == 1
