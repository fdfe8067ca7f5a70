"""The user data stream (issue 13): listenKey lifecycle over REST, executionReport /
outboundAccountPosition on /ws/<listenKey> and on the web session's /ws/account, against
a live uvicorn and the real loops. A user never receives another user's event.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from accounts.models import Asset, User
from exchange.publish import flush_published
from markets.models import Market
from tests.api.conftest import call, make_key, uvicorn_serving
from tests.api.ws_helpers import recv_json, ws_url
from tests.conftest import balance_of, fund, make_user
from tests.trading.conftest import btc_usdt  # noqa: F401  (the fixture)
from tests.trading.pipeline_helpers import loops_running, wait_settled
from trading.models import Order, Trade
from trading.redis import get_redis
from trading.services.orders import place_order
from trading.validation import OrderSpec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

D = Decimal
SYMBOL = "BTC-USDT"
PATH = "/api/v3/userDataStream"


@pytest.fixture
def funded(alice: User, bob: User, assets: dict[str, Asset], btc_usdt: Market) -> Market:  # noqa: F811
    fund(alice, assets["USDT"], "100000")
    fund(bob, assets["BTC"], "2")
    return btc_usdt


def _listen_key(base: str, api_key: str) -> str:
    answer = call(base, "POST", PATH, headers={"X-MBX-APIKEY": api_key})
    assert answer.status == 200, answer
    return str(answer.body["listenKey"])


def _keys_in_redis() -> dict[str, int]:
    client = get_redis()
    return {k.decode(): client.pttl(k) > 0 for k in client.scan_iter("ws:listenkey*")}


def test_listen_key_lifecycle_and_its_errors(live_api, alice, bob):
    alice_key, _ = make_key(alice)
    bob_key, _ = make_key(bob)
    first = _listen_key(live_api, alice_key)
    assert len(first) == 64
    assert _listen_key(live_api, alice_key) == first  # a live key is returned again
    assert _listen_key(live_api, bob_key) != first
    form = {"X-MBX-APIKEY": alice_key, "Content-Type": "application/x-www-form-urlencoded"}
    assert call(live_api, "PUT", PATH, body=f"listenKey={first}".encode(), headers=form).body == {}

    before = _keys_in_redis()
    refused = [
        call(live_api, "POST", PATH),  # no key
        call(live_api, "POST", PATH, headers={"X-MBX-APIKEY": "x" * 64}),  # unknown key
        call(live_api, "PUT", PATH, headers=form),  # no listenKey
        call(live_api, "PUT", PATH, body=b"listenKey=" + b"B" * 64, headers=form),  # unknown
        call(live_api, "PUT", PATH, body=b"listenKey=short", headers=form),
        # bob's key cannot extend or close alice's listenKey
        call(
            live_api, "DELETE", PATH, query=f"listenKey={first}", headers={"X-MBX-APIKEY": bob_key}
        ),
    ]
    assert [(a.status, a.code) for a in refused] == [
        (401, -2014),
        (401, -2015),
        (400, -1102),
        (400, -1125),
        (400, -1125),
        (400, -1125),
    ]
    assert _keys_in_redis() == before  # nothing changed

    closed = call(
        live_api, "DELETE", PATH, query=f"listenKey={first}", headers={"X-MBX-APIKEY": alice_key}
    )
    assert closed.body == {}
    again = call(
        live_api, "DELETE", PATH, query=f"listenKey={first}", headers={"X-MBX-APIKEY": alice_key}
    )
    assert (again.status, again.code) == (400, -1125)
    assert _listen_key(live_api, alice_key) != first  # a new one after the close


def _trade(alice: User, bob: User, market: Market) -> tuple[int, int]:
    with loops_running([SYMBOL]):
        buy = place_order(
            user=alice,
            market=market,
            spec=OrderSpec(side="buy", price=D("50000"), quantity=D("0.1")),
        )
        sell = place_order(
            user=bob,
            market=market,
            spec=OrderSpec(side="sell", price=D("50000"), quantity=D("0.04")),
        )
        wait_settled([SYMBOL])
    flush_published()
    return buy.pk, sell.pk


async def _collect(ws: Any, seconds: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        try:
            out.append(await recv_json(ws, timeout=max(0.05, deadline - loop.time())))
        except TimeoutError:
            return out


def test_each_user_gets_their_own_events_and_nobody_elses(live_api, alice, bob, funded):
    carol = make_user("carol@example.com")
    keys = {u.email: _listen_key(live_api, make_key(u)[0]) for u in (alice, bob, carol)}

    async def scenario() -> dict[str, list[dict[str, Any]]]:
        sockets = {
            email: await connect(ws_url(live_api, f"/ws/{key}")) for email, key in keys.items()
        }
        await asyncio.sleep(0.5)
        await sync_to_async(_trade)(alice, bob, funded)
        got = {email: await _collect(ws, 3.0) for email, ws in sockets.items()}
        for ws in sockets.values():
            await ws.close()
        return got

    got = asyncio.run(scenario())
    buy = Order.objects.get(user=alice)
    sell = Order.objects.get(user=bob)
    trade = Trade.objects.get()
    assert got[carol.email] == []
    for user, order in ((alice, buy), (bob, sell)):
        events = got[user.email]
        reports = [e for e in events if e["e"] == "executionReport"]
        assert {r["i"] for r in reports} == {order.pk}  # only their own order
        positions = [e for e in events if e["e"] == "outboundAccountPosition"]
        assert positions
        assert {b["a"] for b in positions[-1]["B"]} <= {"BTC", "USDT"}
        kinds = [(r["x"], r["X"]) for r in reports]
        assert ("TRADE", order.status.upper()) in kinds
        fill = next(r for r in reports if r["x"] == "TRADE")
        assert fill["t"] == trade.seq
        assert D(fill["l"]) == trade.quantity
        assert D(fill["L"]) == trade.price
        assert D(fill["z"]) == order.filled_quantity
        assert fill["c"] == order.client_order_id
        assert fill["s"] == "BTCUSDT"
        assert fill["S"] == order.side.upper()
        assert fill["N"] == "USDT"
        assert D(fill["n"]) == (
            trade.maker_fee if trade.maker_order_id == order.pk else trade.taker_fee
        )
        assert fill["m"] is (trade.maker_order_id == order.pk)
    assert next(r["x"] for r in got[alice.email] if r["e"] == "executionReport") == "NEW"
    usdt = next(
        b
        for b in [e for e in got[alice.email] if e["e"] == "outboundAccountPosition"][-1]["B"]
        if b["a"] == "USDT"
    )
    available, locked = balance_of(alice, Asset.objects.get(code="USDT"))
    assert (D(usdt["f"]), D(usdt["l"])) == (available, locked)


def test_a_closed_listen_key_ends_its_stream(django_db_blocker, alice, funded):
    with uvicorn_serving(
        django_db_blocker, extra_env={"LISTEN_KEY_CHECK_SECONDS": "1"}, log_prefix="uvicorn-ws-key-"
    ) as base:
        api_key = make_key(alice)[0]
        listen_key = _listen_key(base, api_key)

        async def scenario() -> tuple[list[dict[str, Any]], int | None]:
            async with connect(ws_url(base, f"/ws/{listen_key}")) as ws:
                await asyncio.sleep(0.3)
                await sync_to_async(call)(
                    base,
                    "DELETE",
                    PATH,
                    query=f"listenKey={listen_key}",
                    headers={"X-MBX-APIKEY": api_key},
                )
                events: list[dict[str, Any]] = []
                try:
                    while True:
                        events.append(await recv_json(ws, timeout=5))
                except ConnectionClosed as exc:
                    return events, exc.rcvd.code if exc.rcvd else None

        events, code = asyncio.run(scenario())
    assert [e["e"] for e in events] == ["listenKeyExpired"]
    assert events[0]["listenKey"] == listen_key
    assert code == 1000


def test_the_web_session_socket_needs_the_session_and_this_sites_origin(
    live_api, alice, bob, funded
):
    client = Client()
    client.force_login(alice)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    port = live_api.rsplit(":", 1)[1]
    own_origin = f"http://127.0.0.1:{port}"

    async def status(headers: dict[str, str], origin: str | None) -> int:
        try:
            async with connect(
                ws_url(live_api, "/ws/account"), additional_headers=headers, origin=origin
            ):  # type: ignore[arg-type]
                return 101
        except InvalidStatus as exc:
            return int(exc.response.status_code)

    async def scenario() -> tuple[list[int], list[dict[str, Any]]]:
        statuses = [
            await status({}, own_origin),  # no session
            await status({"Cookie": cookie}, None),  # no Origin
            await status({"Cookie": cookie}, "http://evil.example"),  # a foreign site
        ]
        async with connect(
            ws_url(live_api, "/ws/account"),
            additional_headers={"Cookie": cookie},
            origin=own_origin,
        ) as ws:  # type: ignore[arg-type]
            await asyncio.sleep(0.5)
            await sync_to_async(_trade)(alice, bob, funded)
            events = await _collect(ws, 3.0)
        return statuses, events

    statuses, events = asyncio.run(scenario())
    assert statuses == [401, 401, 401]
    own = Order.objects.get(user=alice).pk
    reports = [e for e in events if e["e"] == "executionReport"]
    assert reports
    assert {r["i"] for r in reports} == {own}


def test_deposits_and_withdrawals_reach_the_user_stream(live_api, alice, assets):
    from accounts.models import WithdrawalLimit
    from accounts.services.withdrawals import reject_withdrawal, request_withdrawal
    from tests.accounts.conftest import enable_totp

    usdt = assets["USDT"]
    enable_totp(alice)
    WithdrawalLimit.objects.create(asset=usdt, kyc_level=alice.kyc_level, daily_amount=D("1000"))
    listen_key = _listen_key(live_api, make_key(alice)[0])
    staff = make_user("staff-ws@example.com", is_staff=True)

    def money() -> None:
        fund(alice, usdt, "250.5")
        withdrawal = request_withdrawal(user=alice, asset=usdt, amount=D("100"), address="T" * 34)
        reject_withdrawal(staff=staff, withdrawal_id=withdrawal.pk, reason="test")
        flush_published()

    async def scenario() -> list[dict[str, Any]]:
        async with connect(ws_url(live_api, f"/ws/{listen_key}")) as ws:
            await asyncio.sleep(0.5)
            await sync_to_async(money)()
            return await _collect(ws, 2.0)

    events = asyncio.run(scenario())
    updates = [e for e in events if e["e"] == "balanceUpdate"]
    assert [(u["a"], D(u["d"])) for u in updates] == [("USDT", D("250.5"))]
    positions = [
        (D(b["f"]), D(b["l"]))
        for e in events
        if e["e"] == "outboundAccountPosition"
        for b in e["B"]
    ]
    fee = usdt.withdrawal_fee
    assert positions == [
        (D("250.5"), D(0)),  # credited
        (D("150.5") - fee, D("100") + fee),  # held for the withdrawal
        (D("250.5"), D(0)),  # released
    ]
