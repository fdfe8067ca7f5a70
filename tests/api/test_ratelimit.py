"""Rate limits (issue 12): request weight per IP and per key, orders per account per 10 s and
per day, 429 + Retry-After, 418 bans, staff overrides per key (audited), Redis down.

The live tests run their own uvicorn with small limits (env API_WEIGHT_PER_MINUTE_IP=20,
_KEY=30, API_ORDERS_PER_10S=3, _PER_DAY=5) and trusted X-Forwarded-For, so each test speaks
from its own IP. That server also mounts the small views below (`mount`): the compat
endpoints are built by other tasks, and these views pin the weights and order counts the
tests count on. The order views call the real place_order service.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import path, reverse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory

from accounts.models import ApiKey, Asset, AuditLog, User
from exchange.api import ratelimit
from exchange.api.binance.base import BinanceView, SignedView, params, resolve_symbol
from exchange.api.ratelimit import InvalidRateLimit, set_api_key_limits
from tests.api.conftest import Answer, SignedClient, call, make_key, uvicorn_serving
from tests.conftest import fund, ledger_snapshot
from tests.private_servers import free_port
from tests.trading.conftest import btc_usdt  # noqa: F401  (the fixture)
from trading.models import Order
from trading.services.orders import place_order
from trading.validation import OrderSpec

ROOT = Path(__file__).resolve().parents[2]
LIMITS_ENV = {
    "API_WEIGHT_PER_MINUTE_IP": "20",
    "API_WEIGHT_PER_MINUTE_KEY": "30",
    "API_ORDERS_PER_10S": "3",
    "API_ORDERS_PER_DAY": "5",
}
D = Decimal


# --- the views the limited server mounts (under /api/v3/)


class LightApi(BinanceView):
    weight = 1

    def get(self, request: Request) -> Response:
        return Response({})


class HeavyApi(BinanceView):
    weight = 5

    def get(self, request: Request) -> Response:
        return Response({})


class SignedPingApi(SignedView):
    weight = 2
    required_scope = "read"

    def get(self, request: Request) -> Response:
        return Response({})


class PlaceOrdersApi(SignedView):
    """POST symbol, price, quantity, count (1-5): `count` limit buys, counted as `count`."""

    weight = 1
    required_scope = "trade"

    def order_count(self, request: Request) -> int:
        return int(params(request).get("count", "1"))

    def post(self, request: Request) -> Response:
        values = params(request)
        market = resolve_symbol(values.get("symbol"))
        spec = OrderSpec(side="buy", price=D(values["price"]), quantity=D(values["quantity"]))
        user = request.user
        assert isinstance(user, User)  # SignedView: IsAuthenticated
        ids = [
            place_order(user=user, market=market, spec=spec).pk
            for _ in range(int(values.get("count", "1")))
        ]
        return Response({"orderIds": ids})


def mount() -> None:
    """Add the views above to the compat routes (the limited server calls it at start)."""
    from exchange.api.binance import urls

    catch_all = len(urls.urlpatterns) - 1  # the last route answers every other path: -1020
    urls.urlpatterns[catch_all:catch_all] = [
        path("ratelimit-test/light", LightApi.as_view()),
        path("ratelimit-test/heavy", HeavyApi.as_view()),
        path("ratelimit-test/signed", SignedPingApi.as_view()),
        path("ratelimit-test/orders", PlaceOrdersApi.as_view()),
    ]


_BOOT = (
    "import django, uvicorn, sys; django.setup(); "
    "from tests.api.test_ratelimit import mount; mount(); "
    "uvicorn.run('exchange.asgi:application', host='127.0.0.1', port=int(sys.argv[1]), "
    "log_level='warning', proxy_headers=True, forwarded_allow_ips='127.0.0.1')"
)


@pytest.fixture(scope="module")
def limited_api(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """Base URL of a uvicorn with small limits that trusts X-Forwarded-For from 127.0.0.1."""
    with uvicorn_serving(
        django_db_blocker,
        argv_after_python=["-c", _BOOT, "{port}"],
        extra_env=LIMITS_ENV,
        log_prefix="uvicorn-limits-",
    ) as base:
        yield base


def _get(base: str, name: str, ip: str) -> Answer:
    return call(base, "GET", f"/api/v3/ratelimit-test/{name}", headers={"X-Forwarded-For": ip})


def _signed(base: str, key: str, secret: str, ip: str) -> _IpClient:
    return _IpClient(base, key, secret, ip)


@dataclass(frozen=True)
class _IpClient(SignedClient):
    """SignedClient speaking from `ip` (X-Forwarded-For, trusted by the limited server)."""

    ip: str = "127.0.0.1"

    def request(
        self, method: str, path: str, params: Mapping[str, object] | None = None, **kwargs: Any
    ) -> Answer:
        signed = self.payload(params or {}, **kwargs)
        headers = {"X-MBX-APIKEY": self.key, "X-Forwarded-For": self.ip}
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return call(self.base, method, path, body=signed.encode(), headers=headers)
        return call(self.base, method, path, query=signed, headers=headers)


def _early_in_window(seconds: int, room: float) -> None:
    """Wait until at least `room` seconds are left in the current `seconds`-long window, so
    a test's burst does not straddle a reset."""
    into = time.time() % seconds
    if seconds - into < room:
        time.sleep(seconds - into + 0.05)


def _weight(answer: Answer) -> int:
    return int(answer.headers["x-mbx-used-weight-1m"])


# --- live: weight


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db")
def test_headers_count_the_weight_up(limited_api: str) -> None:
    _early_in_window(60, 10)
    used = [_weight(_get(limited_api, "light", "198.51.100.1")) for _ in range(3)]
    heavy = _get(limited_api, "heavy", "198.51.100.1")

    assert used == [1, 2, 3]
    assert heavy.status == 200
    assert _weight(heavy) == 8
    assert "x-mbx-order-count-10s" not in heavy.headers  # not an order request
    assert _weight(_get(limited_api, "light", "198.51.100.2")) == 1  # another IP


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db")
def test_over_the_weight_limit_is_429_with_retry_after(limited_api: str) -> None:
    _early_in_window(60, 10)
    answers = [_get(limited_api, "heavy", "198.51.100.3") for _ in range(5)]

    assert [a.status for a in answers] == [200, 200, 200, 200, 429]
    refused = answers[-1]
    assert refused.body == {
        "code": -1003,
        "msg": "Too much request weight used; current limit is 20 request weight per 1 "
        "MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
    }
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert _weight(refused) == 25  # a refused request counts too, as on Binance
    assert "retry-after" not in answers[0].headers


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db")
def test_continuing_after_429_is_banned_with_418(
    limited_api: str, alice: User, assets: dict[str, Asset]
) -> None:
    ip = "198.51.100.4"
    _early_in_window(60, 20)
    for _ in range(4):
        assert _get(limited_api, "heavy", ip).status == 200
    statuses = [_get(limited_api, "heavy", ip).status for _ in range(11)]
    key, secret = make_key(alice)

    # the first refusal plus 10 more are 429; the 11th refusal earns the ban
    assert statuses == [429] * 10 + [418]
    banned = _get(limited_api, "light", ip)
    assert banned.status == 418
    assert banned.code == -1003
    assert "IP banned until" in banned.body["msg"]
    assert 110 <= int(banned.headers["retry-after"]) <= 120  # the first ban: 2 minutes
    assert (
        _signed(limited_api, key, secret, ip).request("GET", "/api/v3/ratelimit-test/signed").status
        == 418
    )
    assert _get(limited_api, "light", "198.51.100.5").status == 200  # the ban is per IP
    # Refused before authentication: a key that does not exist, or no credentials at all,
    # get the ban (418), not the authentication error (401) they would get otherwise.
    bogus = _signed(limited_api, "no-such-key", "no-secret", ip)
    assert (
        bogus.request("GET", "/api/v3/account").status,
        bogus.request("GET", "/api/v3/account").code,
    ) == (418, -1003)
    v1 = call(limited_api, "GET", "/api/v1/balances", headers={"X-Forwarded-For": ip})
    assert (v1.status, v1.code) == (418, "ip_banned")
    assert "retry-after" in v1.headers
    elsewhere = call(
        limited_api, "GET", "/api/v1/balances", headers={"X-Forwarded-For": "198.51.100.5"}
    )
    assert elsewhere.status in (401, 403)  # the same request from another IP: authentication


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db")
def test_the_ip_and_each_key_have_their_own_buckets(
    limited_api: str, alice: User, bob: User, assets: dict[str, Asset]
) -> None:
    ip = "198.51.100.6"
    _early_in_window(60, 10)
    alice_key, bob_key = make_key(alice), make_key(bob)
    for _ in range(4):
        _get(limited_api, "heavy", ip)
    assert _get(limited_api, "light", ip).status == 429  # the IP's bucket is spent

    for_alice = _signed(limited_api, *alice_key, ip).request("GET", "/api/v3/ratelimit-test/signed")
    again = _signed(limited_api, *alice_key, ip).request("GET", "/api/v3/ratelimit-test/signed")
    for_bob = _signed(limited_api, *bob_key, ip).request("GET", "/api/v3/ratelimit-test/signed")

    assert (for_alice.status, _weight(for_alice)) == (200, 2)  # the key's own bucket
    assert (again.status, _weight(again)) == (200, 4)
    assert (for_bob.status, _weight(for_bob)) == (200, 2)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db")
def test_a_staff_override_raises_the_keys_limit(
    limited_api: str, alice: User, staff: User, assets: dict[str, Asset]
) -> None:
    ip = "198.51.100.7"
    _early_in_window(60, 15)
    key, secret = make_key(alice)
    client = _signed(limited_api, key, secret, ip)
    answers = [client.request("GET", "/api/v3/ratelimit-test/signed") for _ in range(16)]
    assert [a.status for a in answers] == [200] * 15 + [429]  # 30 per minute, weight 2
    assert "30 request weight" in answers[-1].body["msg"]

    set_api_key_limits(
        api_key_id=ApiKey.objects.get(key=key).pk,
        values={"weight_per_minute": 100},
        actor=staff,
    )
    after = client.request("GET", "/api/v3/ratelimit-test/signed")

    assert after.status == 200
    assert _weight(after) == 34  # the count goes on; only the ceiling moved


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db")
def test_a_bad_signature_still_counts_against_the_ip(
    limited_api: str, alice: User, assets: dict[str, Asset]
) -> None:
    _early_in_window(60, 10)
    key, _secret = make_key(alice)
    refused = _signed(limited_api, key, "not-the-secret", "198.51.100.8").request(
        "GET", "/api/v3/ratelimit-test/signed"
    )

    assert refused.status == 401
    assert _weight(refused) == 1
    assert _weight(_get(limited_api, "light", "198.51.100.8")) == 2


# --- live: orders


def _place(client: _IpClient, count: int = 1) -> Answer:
    order = {"symbol": "BTCUSDT", "price": "50000", "quantity": "0.001", "count": count}
    return client.request("POST", "/api/v3/ratelimit-test/orders", order)


def _orders(answer: Answer) -> tuple[int, int]:
    return (
        int(answer.headers["x-mbx-order-count-10s"]),
        int(answer.headers["x-mbx-order-count-1d"]),
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db", "btc_usdt")
def test_an_order_over_the_limit_is_refused_and_moves_no_money(
    limited_api: str,
    alice: User,
    assets: dict[str, Asset],
) -> None:
    fund(alice, assets["USDT"], "1000")
    key, secret = make_key(alice)
    client = _signed(limited_api, key, secret, "198.51.100.9")
    _early_in_window(10, 6)
    placed = [_place(client) for _ in range(3)]
    assert [a.status for a in placed] == [200, 200, 200]
    assert [_orders(a) for a in placed] == [(1, 1), (2, 2), (3, 3)]
    before, orders_before = ledger_snapshot(), Order.objects.count()

    refused = _place(client)

    assert refused.status == 429
    assert refused.body == {
        "code": -1015,
        "msg": "Too many new orders; current limit is 3 orders per 10 SECOND.",
    }
    assert 1 <= int(refused.headers["retry-after"]) <= 10
    assert _orders(refused) == (3, 3)  # a refused order is not counted
    assert ledger_snapshot() == before
    assert Order.objects.count() == orders_before == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db", "btc_usdt")
def test_the_10s_window_resets_and_the_day_limit_holds(
    limited_api: str,
    alice: User,
    assets: dict[str, Asset],
) -> None:
    fund(alice, assets["USDT"], "1000")
    key, secret = make_key(alice)
    client = _signed(limited_api, key, secret, "198.51.100.10")
    _early_in_window(10, 6)
    assert _place(client, count=3).status == 200  # a batch counts its items
    refused = _place(client)
    assert refused.status == 429

    time.sleep(int(refused.headers["retry-after"]) + 0.1)
    again = _place(client, count=2)
    assert (again.status, _orders(again)) == (200, (2, 5))
    before, orders_before = ledger_snapshot(), Order.objects.count()
    over_the_day = _place(client)

    assert over_the_day.status == 429
    assert over_the_day.body["msg"] == "Too many new orders; current limit is 5 orders per DAY."
    assert int(over_the_day.headers["retry-after"]) > 10
    assert ledger_snapshot() == before
    assert Order.objects.count() == orders_before == 5


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db", "btc_usdt")
def test_a_batch_that_does_not_fit_places_none(
    limited_api: str,
    alice: User,
    assets: dict[str, Asset],
) -> None:
    fund(alice, assets["USDT"], "1000")
    key, secret = make_key(alice)
    client = _signed(limited_api, key, secret, "198.51.100.11")
    _early_in_window(10, 6)
    assert _place(client, count=2).status == 200
    before = ledger_snapshot()

    refused = _place(client, count=2)  # 2 + 2 > 3: all or nothing

    assert refused.status == 429
    assert _orders(refused) == (2, 2)
    assert ledger_snapshot() == before
    assert Order.objects.count() == 2


# --- in-process: windows, bans, Redis down (the same code, a fake clock)

factory = APIRequestFactory()


def _light(ip: str = "192.0.2.1") -> Response:
    response: Response = LightApi.as_view()(factory.get("/x", REMOTE_ADDR=ip))
    return response


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """ratelimit's clock, in ms: set `clock[0]`."""
    now = [1_800_000_000_000]  # on a minute boundary
    monkeypatch.setattr(ratelimit, "_now_ms", lambda: now[0])
    ratelimit.forget_bans()
    yield now
    ratelimit.forget_bans()  # bans met on the fake clock must not outlive it


@pytest.mark.django_db
@pytest.mark.usefixtures("redis_db")
@override_settings(API_WEIGHT_PER_MINUTE_IP=3)
def test_the_weight_window_is_aligned_to_the_minute(clock: list[int]) -> None:
    clock[0] += 59_000  # one second before the minute turns
    assert [_light()["X-MBX-USED-WEIGHT-1M"] for _ in range(3)] == ["1", "2", "3"]
    refused = _light()
    clock[0] += 1_000  # the next minute: a new window, whenever the first hit was

    fresh = _light()

    assert (refused.status_code, refused["Retry-After"]) == (429, "1")
    assert (fresh.status_code, fresh["X-MBX-USED-WEIGHT-1M"]) == (200, "1")


def _ban_seconds(redis_db: Any, ip: str) -> float:
    return float(redis_db.pttl(f"ratelimit:ban:{ip}")) / 1000


def _earn_a_ban(ip: str) -> Response:
    answer = _light(ip)
    while answer.status_code != 418:
        answer = _light(ip)
    return answer


@pytest.mark.django_db
@override_settings(API_WEIGHT_PER_MINUTE_IP=1)
def test_bans_escalate_from_two_minutes_to_three_days(redis_db: Any, clock: list[int]) -> None:
    ip = "192.0.2.2"
    first = _earn_a_ban(ip)
    assert first.data == {
        "code": -1003,
        "msg": f"Way too much request weight used; IP banned until {clock[0] + 120_000}. "
        "Please use WebSocket Streams for live updates to avoid bans.",
    }
    assert first["Retry-After"] == "120"
    assert 119 < _ban_seconds(redis_db, ip) <= 120

    redis_db.delete(f"ratelimit:ban:{ip}")  # as if it had run out
    clock[0] += 120_000
    second = _earn_a_ban(ip)
    assert second["Retry-After"] == "240"  # doubled: a repeat offender

    redis_db.delete(f"ratelimit:ban:{ip}")
    redis_db.set(f"ratelimit:ban-level:{ip}", 30)
    clock[0] += 60_000
    assert _earn_a_ban(ip)["Retry-After"] == str(3 * 24 * 3600)  # the ceiling


@pytest.mark.django_db
@pytest.mark.usefixtures("redis_db")
def test_a_redis_outage_fails_open() -> None:
    ratelimit.reset_clients()
    try:
        with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/5"):
            first, second = _light(), _light()
    finally:
        ratelimit.reset_clients()

    assert (first.status_code, second.status_code) == (200, 200)
    assert "X-MBX-USED-WEIGHT-1M" not in first  # nothing to report, nothing refused


def test_exchange_info_publishes_the_settings() -> None:
    assert ratelimit.published_limits() == [
        {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": "MINUTE",
            "intervalNum": 1,
            "limit": settings.API_WEIGHT_PER_MINUTE_IP,
        },
        {
            "rateLimitType": "ORDERS",
            "interval": "SECOND",
            "intervalNum": 10,
            "limit": settings.API_ORDERS_PER_10S,
        },
        {
            "rateLimitType": "ORDERS",
            "interval": "DAY",
            "intervalNum": 1,
            "limit": settings.API_ORDERS_PER_DAY,
        },
    ]


# --- staff overrides: the ApiKey admin (audited, every bad value refused, nothing changed)


def _limits(api_key: ApiKey) -> tuple[int | None, int | None, int | None]:
    api_key.refresh_from_db()
    return api_key.weight_per_minute, api_key.orders_per_10s, api_key.orders_per_day


@pytest.fixture
def alice_key(alice: User) -> ApiKey:
    key, _secret = make_key(alice)
    return ApiKey.objects.get(key=key)


def _change(staff_client: Any, api_key: ApiKey, **values: str) -> Any:
    form = {"weight_per_minute": "", "orders_per_10s": "", "orders_per_day": ""}
    form.update(values)
    url = reverse("admin:accounts_apikey_change", args=[api_key.pk])
    return staff_client.post(url, {**form, "_save": "Save"})


@pytest.mark.django_db
def test_staff_raise_a_keys_limits_in_the_admin_audited(
    staff_client: Any, staff: User, alice_key: ApiKey
) -> None:
    page = staff_client.get(reverse("admin:accounts_apikey_change", args=[alice_key.pk]))
    assert page.status_code == 200
    assert b'name="weight_per_minute"' in page.content
    assert b'name="label"' not in page.content  # everything else stays read-only

    saved = _change(
        staff_client, alice_key, weight_per_minute="12000", orders_per_10s="200", label="x"
    )

    assert saved.status_code == 302
    assert _limits(alice_key) == (12000, 200, None)
    assert alice_key.label == "test key"
    row = AuditLog.objects.get(action="api_key.limits_changed")
    assert row.actor_id == staff.pk
    assert row.target_id == str(alice_key.pk)
    assert row.details == {
        "before": {"weight_per_minute": None, "orders_per_10s": None},
        "after": {"weight_per_minute": 12000, "orders_per_10s": 200},
    }
    assert ratelimit.limits_for(alice_key) == ratelimit.Limits(
        weight=12000, orders_10s=200, orders_day=settings.API_ORDERS_PER_DAY
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "values", "field"),
    [
        ("negative", {"weight_per_minute": "-1"}, "weight_per_minute"),
        ("zero", {"weight_per_minute": "0"}, "weight_per_minute"),
        ("decimal", {"orders_per_10s": "1.5"}, "orders_per_10s"),
        ("text", {"orders_per_day": "lots"}, "orders_per_day"),
        ("exponent", {"orders_per_day": "1e6"}, "orders_per_day"),
        ("huge", {"weight_per_minute": "99999999999"}, "weight_per_minute"),
        ("above max", {"orders_per_10s": "100001"}, "orders_per_10s"),
        ("10s above day", {"orders_per_10s": "50", "orders_per_day": "40"}, "orders_per_10s"),
        ("day below default 10s", {"orders_per_day": "2"}, "orders_per_day"),
    ],
)
def test_bad_limits_are_refused_by_field_and_change_nothing(
    staff_client: Any, alice_key: ApiKey, _case: str, values: dict[str, str], field: str
) -> None:
    set_api_key_limits(
        api_key_id=alice_key.pk, values={"weight_per_minute": 7000}, actor=alice_key.user
    )
    audits = AuditLog.objects.count()

    answer = _change(staff_client, alice_key, **{"weight_per_minute": "7000", **values})

    assert answer.status_code == 200  # the form again, with the error
    assert field in answer.context["adminform"].form.errors
    assert _limits(alice_key) == (7000, None, None)
    assert AuditLog.objects.count() == audits


@pytest.mark.django_db
def test_clearing_an_override_returns_to_the_default(
    staff_client: Any, staff: User, alice_key: ApiKey
) -> None:
    set_api_key_limits(api_key_id=alice_key.pk, values={"orders_per_day": 900}, actor=staff)

    assert _change(staff_client, alice_key).status_code == 302

    assert _limits(alice_key) == (None, None, None)
    last = AuditLog.objects.filter(action="api_key.limits_changed").latest("pk")
    assert last.details == {"before": {"orders_per_day": 900}, "after": {"orders_per_day": None}}


@pytest.mark.django_db
def test_the_service_refuses_what_the_form_would(staff: User, alice_key: ApiKey) -> None:
    for values in ({"weight_per_minute": 0}, {"orders_per_10s": True}, {"label": 5}):
        with pytest.raises(InvalidRateLimit):
            set_api_key_limits(api_key_id=alice_key.pk, values=values, actor=staff)

    assert _limits(alice_key) == (None, None, None)
    assert not AuditLog.objects.filter(action="api_key.limits_changed").exists()


# --- live: the real endpoints (compat and v1) use the same limits


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db")
def test_exchange_info_publishes_the_limits_and_v1_shares_the_bucket(limited_api: str) -> None:
    ip = "198.51.100.12"
    _early_in_window(60, 10)
    info = call(limited_api, "GET", "/api/v3/exchangeInfo", headers={"X-Forwarded-For": ip})
    over = call(limited_api, "GET", "/api/v3/ping", headers={"X-Forwarded-For": ip})
    v1 = call(limited_api, "GET", "/api/v1/markets", headers={"X-Forwarded-For": ip})

    assert info.status == 200
    assert [(r["rateLimitType"], r["limit"]) for r in info.body["rateLimits"]] == [
        ("REQUEST_WEIGHT", 20),
        ("ORDERS", 3),
        ("ORDERS", 5),
    ]
    assert _weight(info) == 20  # exchangeInfo weighs 20
    assert (over.status, over.code, _weight(over)) == (429, -1003, 21)
    assert v1.status == 429
    assert v1.body["code"] == "rate_limited"
    assert v1.body["message"].startswith("Too much request weight used;")
    assert 1 <= int(v1.headers["retry-after"]) <= 60
    assert _weight(v1) == 22


def _new_order(client: _IpClient) -> Answer:
    return client.request(
        "POST",
        "/api/v3/order",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.001",
            "price": "50000",
        },
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_db", "btc_usdt")
def test_the_compat_order_endpoint_counts_orders_and_refuses_over_the_limit(
    limited_api: str, alice: User, assets: dict[str, Asset]
) -> None:
    fund(alice, assets["USDT"], "1000")
    key, secret = make_key(alice)
    client = _signed(limited_api, key, secret, "198.51.100.13")
    _early_in_window(10, 6)
    placed = [_new_order(client) for _ in range(3)]
    assert [a.status for a in placed] == [200, 200, 200], placed[-1].body
    assert [_orders(a) for a in placed] == [(1, 1), (2, 2), (3, 3)]
    before, orders_before = ledger_snapshot(), Order.objects.count()
    query = client.request("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})

    refused = _new_order(client)

    assert query.status == 200
    assert "x-mbx-order-count-10s" not in query.headers  # a query places no order
    assert refused.status == 429
    assert refused.code == -1015
    assert 1 <= int(refused.headers["retry-after"]) <= 10
    assert ledger_snapshot() == before
    assert Order.objects.count() == orders_before == 3
