"""GET /api/v3/account and /account/commission through the live uvicorn, and the issue-12
"Bad input and security" catalogue for the signed endpoints: every refusal is Binance's
{code, msg} and changes nothing (balances, ledger, orders).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import ApiKey, Asset, User
from accounts.services.apikeys import revoke_api_key
from markets.fees import set_user_tiers
from markets.models import FeeTier, Market, MarketStatus
from tests.api.conftest import SignedClient, call, make_key
from tests.conftest import fund, ledger_snapshot
from tests.trading.conftest import btc_usdt, usdt_irt  # noqa: F401  (the fixtures)
from trading.models import Order

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("redis_db"),
]

D = Decimal
DAY = 86_400_000  # ms


def _client(live_api: str, user: User, *, trade: bool = True) -> SignedClient:
    key, secret = make_key(user, trade=trade)
    return SignedClient(live_api, key, secret)


def _state() -> tuple[Any, ...]:
    return ledger_snapshot(), list(Order.objects.order_by("pk").values_list("pk", "status"))


@pytest.fixture
def funded(live_api: str, alice: User, assets: dict[str, Asset], btc_usdt: Market) -> SignedClient:  # noqa: F811
    fund(alice, assets["USDT"], "1000.5")
    fund(alice, assets["BTC"], "0.25")
    return _client(live_api, alice)


def _limit(**extra: Any) -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": "49000",
        "newOrderRespType": "ACK",
        **extra,
    }


# ---------------------------------------------------------------- account


def test_account_lists_every_active_asset_with_its_places(funded, alice):
    placed = funded.request("POST", "/api/v3/order", _limit())
    assert placed.status == 200, placed.body
    answer = funded.request("GET", "/api/v3/account")
    assert answer.status == 200, answer.body
    body = answer.body
    assert body["balances"] == [
        {"asset": "BTC", "free": "0.25000000", "locked": "0.00000000"},
        {"asset": "ETH", "free": "0.000000000000000000", "locked": "0.000000000000000000"},
        {"asset": "IRT", "free": "0", "locked": "0"},
        # 490 x (1 + 0.2%) held for the order
        {"asset": "USDT", "free": "509.520000", "locked": "490.980000"},
    ]
    assert body["accountType"] == "SPOT"
    assert body["permissions"] == ["SPOT"]
    assert body["uid"] == alice.pk
    assert (body["canTrade"], body["canWithdraw"], body["canDeposit"]) == (True, False, True)
    assert (body["makerCommission"], body["takerCommission"]) == (10, 20)
    assert body["commissionRates"] == {
        "maker": "0.00100000",
        "taker": "0.00200000",
        "buyer": "0.00000000",
        "seller": "0.00000000",
    }
    assert isinstance(body["updateTime"], int)
    assert body["updateTime"] > 0
    omitted = funded.request("GET", "/api/v3/account", {"omitZeroBalances": "true"}).body
    assert [b["asset"] for b in omitted["balances"]] == ["BTC", "USDT"]


def test_account_rates_are_the_highest_any_market_charges_after_the_tier(
    live_api,
    alice,
    assets,
    btc_usdt,  # noqa: F811
    usdt_irt,  # noqa: F811
):
    client = _client(live_api, alice)
    # usdt_irt charges 0.25% / 0.35%; btc_usdt 0.1% / 0.2%
    body = client.request("GET", "/api/v3/account").body
    assert body["commissionRates"]["maker"] == "0.00250000"
    assert body["commissionRates"]["taker"] == "0.00350000"
    FeeTier.objects.create(
        name="VIP", min_volume_30d=D("10"), maker_fee=D("0.0005"), taker_fee=D("0.003")
    )
    set_user_tiers(volumes={alice.pk: D("100")})
    body = client.request("GET", "/api/v3/account").body
    assert (body["commissionRates"]["maker"], body["commissionRates"]["taker"]) == (
        "0.00050000",
        "0.00300000",
    )
    exact = client.request("GET", "/api/v3/account/commission", {"symbol": "BTCUSDT"})
    assert exact.status == 200, exact.body
    assert exact.body["symbol"] == "BTCUSDT"
    # per side the lower of the market's and the tier's
    assert exact.body["standardCommission"] == {
        "maker": "0.00050000",
        "taker": "0.00200000",
        "buyer": "0.00000000",
        "seller": "0.00000000",
    }
    assert exact.body["taxCommission"]["maker"] == "0.00000000"
    assert exact.body["discount"]["enabledForAccount"] is False


def test_a_read_only_key_can_read_but_not_trade(live_api, alice, btc_usdt):  # noqa: F811
    client = _client(live_api, alice, trade=False)
    body = client.request("GET", "/api/v3/account").body
    assert body["canTrade"] is False
    before = _state()
    refused = client.request("POST", "/api/v3/order", _limit())
    assert refused.status in (401, 403)
    assert refused.body == {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
    cancel_all = client.request("DELETE", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
    assert cancel_all.body["code"] == -2015
    assert _state() == before


def test_commission_needs_a_known_symbol(funded):
    assert funded.request("GET", "/api/v3/account/commission").body == {
        "code": -1102,
        "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
    }
    assert funded.request("GET", "/api/v3/account/commission", {"symbol": "DOGEUSDT"}).body == {
        "code": -1121,
        "msg": "Invalid symbol.",
    }


# ---------------------------------------------------------------- malformed numbers

_NUMBERS = [
    ("_exponent", "1e-2", -1100),
    ("_exponent_upper", "1E2", -1100),
    ("_nan", "NaN", -1100),
    ("_snan", "sNaN", -1100),
    ("_infinity", "Infinity", -1100),
    ("_inf", "-inf", -1100),
    ("_negative", "-0.01", -1100),
    ("_plus_sign", "+0.01", -1100),
    ("_zero", "0", -1100),
    ("_arabic_digits", "\u0660.\u0660\u0661", -1100),
    ("_fullwidth_digits", "\uff10.\uff10\uff11", -1100),
    ("_underscore", "0.0_1", -1100),
    ("_leading_space", " 0.01", -1100),
    ("_trailing_space", "0.01 ", -1100),
    ("_inner_space", "0. 01", -1100),
    ("_hex", "0x10", -1100),
    ("_comma", "0,01", -1100),
    ("_two_points", "0.0.1", -1100),
    ("_nineteen_places", "0.0100000000000000001", -1100),
    ("_huge", "9" * 200, -1100),
    ("_too_many_for_the_asset", "0.000000001", -1013),
]


@pytest.mark.parametrize(("_case", "value", "code"), _NUMBERS)
@pytest.mark.parametrize("field", ["quantity", "price"])
def test_malformed_numbers_are_refused_and_change_nothing(funded, _case, value, code, field):
    before = _state()
    answer = funded.request("POST", "/api/v3/order", _limit(**{field: value}))
    assert answer.status == 400, answer.body
    assert answer.code == code, answer.body
    assert isinstance(answer.body["msg"], str)
    assert answer.body["msg"]
    if code == -1100:
        assert f"'{field}'" in answer.body["msg"]
    assert _state() == before


@pytest.mark.parametrize(
    ("_case", "params", "code"),
    [
        ("_stop_price_nan", {"type": "STOP_LOSS_LIMIT", "stopPrice": "NaN"}, -1100),
        ("_quote_exponent", {"type": "MARKET", "quoteOrderQty": "1e3"}, -1100),
        ("_quote_negative", {"type": "MARKET", "quoteOrderQty": "-5"}, -1100),
        ("_off_tick", {"price": "49000.001"}, -1013),
        ("_off_lot", {"quantity": "0.012345"}, -1013),
        ("_below_min_notional", {"quantity": "0.0001", "price": "45000"}, -1013),
        ("_out_of_band", {"price": "10000"}, -1013),
        ("_insufficient", {"quantity": "10"}, -2010),
        ("_bad_side", {"side": "buy"}, -1117),
        ("_bad_type", {"type": "OCO"}, -1116),
        ("_bad_tif", {"timeInForce": "GTD"}, -1115),
        ("_bad_stp", {"selfTradePreventionMode": "DECREMENT"}, -1100),
        ("_bad_resp_type", {"newOrderRespType": "MINIMAL"}, -1100),
        ("_bad_client_id", {"newClientOrderId": "has space"}, -1100),
        ("_long_client_id", {"newClientOrderId": "x" * 37}, -1100),
        ("_iceberg", {"icebergQty": "0.001"}, -1106),
        ("_missing_price", {"price": ""}, -1102),
        ("_missing_quantity", {"quantity": ""}, -1102),
        ("_missing_side", {"side": ""}, -1102),
        ("_missing_type", {"type": ""}, -1102),
        ("_missing_tif", {"timeInForce": ""}, -1102),
        ("_missing_symbol", {"symbol": ""}, -1102),
        ("_unknown_symbol", {"symbol": "BTCEUR"}, -1121),
        ("_symbol_with_dash", {"symbol": "BTC-USDT"}, -1121),
        ("_price_on_market", {"type": "MARKET", "timeInForce": ""}, -1106),
        (
            "_both_amounts",
            {"type": "MARKET", "price": "", "timeInForce": "", "quoteOrderQty": "10"},
            -1106,
        ),
        (
            "_quote_on_sell",
            {
                "side": "SELL",
                "type": "MARKET",
                "price": "",
                "timeInForce": "",
                "quoteOrderQty": "9",
            },
            -1106,
        ),
        ("_stop_without_stop_price", {"type": "STOP_LOSS_LIMIT"}, -1102),
        ("_take_profit", {"type": "TAKE_PROFIT_LIMIT", "stopPrice": "52000"}, -1013),
        ("_stop_triggers_now", {"type": "STOP_LOSS_LIMIT", "stopPrice": "49000"}, -2010),
    ],
)
def test_bad_order_parameters_are_refused_and_change_nothing(funded, _case, params, code):
    before = _state()
    answer = funded.request("POST", "/api/v3/order", _limit(**params))
    assert answer.status == 400, answer.body
    assert answer.code == code, answer.body
    assert _state() == before


def test_bad_input_on_the_test_endpoint_and_cancel_replace_changes_nothing(funded):
    before = _state()
    assert funded.request("POST", "/api/v3/order/test", _limit(quantity="1e-2")).code == -1100
    replace = {**_limit(price="NaN"), "cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrderId": 1}
    assert funded.request("POST", "/api/v3/order/cancelReplace", replace).code == -1100
    replace = {**_limit(), "cancelReplaceMode": "SOMETIMES", "cancelOrderId": 1}
    assert funded.request("POST", "/api/v3/order/cancelReplace", replace).code == -1100
    replace = {**_limit(), "cancelReplaceMode": "STOP_ON_FAILURE"}
    assert funded.request("POST", "/api/v3/order/cancelReplace", replace).code == -1102
    assert _state() == before


@pytest.mark.parametrize(
    ("_case", "method", "path", "params", "code"),
    [
        ("_order_id_letters", "GET", "/api/v3/order", {"orderId": "12a"}, -1100),
        ("_order_id_negative", "GET", "/api/v3/order", {"orderId": "-1"}, -1100),
        ("_order_id_exponent", "DELETE", "/api/v3/order", {"orderId": "1e3"}, -1100),
        ("_order_id_huge", "GET", "/api/v3/order", {"orderId": "9" * 30}, -1100),
        ("_no_id", "GET", "/api/v3/order", {}, -1102),
        ("_limit_zero", "GET", "/api/v3/allOrders", {"limit": "0"}, -1100),
        ("_limit_too_big", "GET", "/api/v3/allOrders", {"limit": "1001"}, -1100),
        ("_limit_float", "GET", "/api/v3/myTrades", {"limit": "10.0"}, -1100),
        (
            "_start_after_end",
            "GET",
            "/api/v3/allOrders",
            {"startTime": 2000, "endTime": 1000},
            -1127,
        ),
        (
            "_window_over_a_day",
            "GET",
            "/api/v3/myTrades",
            {"startTime": 0, "endTime": 86400001},
            -1127,
        ),
        ("_time_unicode", "GET", "/api/v3/myTrades", {"startTime": "\u0661\u0662"}, -1100),
        ("_time_far_future", "GET", "/api/v3/myTrades", {"endTime": "9" * 18}, -1100),
        ("_from_id_with_order", "GET", "/api/v3/myTrades", {"orderId": 1, "fromId": 1}, -1106),
        ("_omit_zero_maybe", "GET", "/api/v3/account", {"omitZeroBalances": "yes"}, -1100),
    ],
)
def test_bad_query_parameters_are_refused(funded, _case, method, path, params, code):
    before = _state()
    answer = funded.request(method, path, {"symbol": "BTCUSDT", **params})
    assert answer.status == 400, answer.body
    assert answer.code == code, answer.body
    assert _state() == before


def test_frozen_accounts_and_halted_markets_refuse_new_orders(funded, alice, btc_usdt):  # noqa: F811
    before = _state()
    Market.objects.filter(pk=btc_usdt.pk).update(status=MarketStatus.HALTED)
    halted = funded.request("POST", "/api/v3/order", _limit())
    assert (halted.status, halted.body) == (400, {"code": -2010, "msg": "Market is closed."})
    Market.objects.filter(pk=btc_usdt.pk).update(status=MarketStatus.TRADING)
    User.objects.filter(pk=alice.pk).update(is_frozen=True)
    frozen = funded.request("POST", "/api/v3/order", _limit())
    assert frozen.body == {"code": -2010, "msg": "This action is disabled on this account."}
    assert funded.request("GET", "/api/v3/account").body["canTrade"] is False
    assert _state() == before


# ---------------------------------------------------------------- other users' ids


def test_another_users_order_looks_exactly_like_a_missing_one(
    live_api,
    funded,
    mallory,
    usdt_irt,  # noqa: F811
):
    placed = funded.request("POST", "/api/v3/order", _limit(newClientOrderId="alice-1"))
    assert placed.status == 200, placed.body
    order_id = placed.body["orderId"]
    thief = _client(live_api, mallory)
    before = _state()
    missing = {"code": -2013, "msg": "Order does not exist."}
    for params in (
        {"orderId": order_id},
        {"origClientOrderId": "alice-1"},
        {"orderId": order_id + 1000},
        {"origClientOrderId": "nobody"},
    ):
        for method in ("GET", "DELETE"):
            answer = thief.request(method, "/api/v3/order", {"symbol": "BTCUSDT", **params})
            assert (answer.status, answer.body) == (400, missing), (method, params)
    for cancel in ({"cancelOrderId": order_id}, {"cancelOrigClientOrderId": "alice-1"}):
        replace = {**_limit(), "cancelReplaceMode": "ALLOW_FAILURE", **cancel}
        answer = thief.request("POST", "/api/v3/order/cancelReplace", replace)
        assert (answer.status, answer.body) == (400, missing)
    assert thief.request("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}).body == []
    assert thief.request("GET", "/api/v3/allOrders", {"symbol": "BTCUSDT"}).body == []
    assert thief.request("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"}).body == []
    cancel_all = thief.request("DELETE", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
    assert cancel_all.body == {"code": -2011, "msg": "Unknown order sent."}
    # the client id is per user: mallory may use "alice-1" for her own order
    assert _state() == before
    # and alice's order in another symbol is also "does not exist"
    other = funded.request("GET", "/api/v3/order", {"symbol": "USDTIRT", "orderId": order_id})
    assert (other.status, other.body) == (400, missing)


# ---------------------------------------------------------------- signing and keys


def _signed(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def _now() -> int:
    return int(time.time() * 1000)


def test_signing_refusals_change_nothing(live_api, alice, assets, btc_usdt):  # noqa: F811
    fund(alice, assets["USDT"], "1000")
    key, secret = make_key(alice)
    client = SignedClient(live_api, key, secret)
    body = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=49000"
    form = {"X-MBX-APIKEY": key, "Content-Type": "application/x-www-form-urlencoded"}
    _state()

    def post(text: str, headers: dict[str, str] | None = None) -> Any:
        return call(live_api, "POST", "/api/v3/order", body=text.encode(), headers=headers or form)

    stamped = f"timestamp={_now()}&{body}"
    # parameters changed after signing
    tampered = stamped.replace("0.01", "0.02") + f"&signature={_signed(secret, stamped)}"
    assert post(tampered).body == {"code": -1022, "msg": "Signature for this request is not valid."}
    assert post(tampered).status == 401
    # a bad secret
    wrong = SignedClient(live_api, key, "x" * 64).request("POST", "/api/v3/order", _limit())
    assert (wrong.status, wrong.code) == (401, -1022)
    # stale and future timestamps
    stale = client.request("POST", "/api/v3/order", _limit(), timestamp=_now() - 60_000)
    assert stale.body == {
        "code": -1021,
        "msg": "Timestamp for this request is outside of the recvWindow.",
    }
    future = client.request("POST", "/api/v3/order", _limit(), timestamp=_now() + 5_000)
    assert future.code == -1021
    # recvWindow out of range
    assert client.request("POST", "/api/v3/order", {**_limit(), "recvWindow": 60001}).code == -1131
    assert client.request("POST", "/api/v3/order", {**_limit(), "recvWindow": 0}).code == -1100
    assert client.request("POST", "/api/v3/order", {**_limit(), "recvWindow": "1e4"}).code == -1100
    # missing signature, missing timestamp
    assert post(stamped).code == -1102
    unstamped = body + f"&recvWindow=5000&signature={_signed(secret, body + '&recvWindow=5000')}"
    assert post(unstamped).code == -1102
    # a parameter twice (in the body, and in query + body)
    doubled = f"{stamped}&quantity=0.02"
    assert post(doubled + f"&signature={_signed(secret, doubled)}").code == -1101
    signed = f"{stamped}&signature={_signed(secret, stamped)}"
    answer = call(
        live_api,
        "POST",
        "/api/v3/order",
        query="quantity=0.02",
        body=signed.encode(),
        headers=form,
    )
    assert answer.code == -1101
    # a replay of an accepted request
    replayed = f"timestamp={_now()}&{body}&newOrderRespType=ACK"
    replayed += f"&signature={_signed(secret, replayed)}"
    assert post(replayed).status == 200
    assert post(replayed).code == -1021
    after_first = _state()
    # oversized body (past the signing layer's 64 KB)
    huge = f"{stamped}&pad={'a' * 70_000}"
    assert post(huge + f"&signature={_signed(secret, huge)}").code == -1022
    # wrong content type: the signature is valid, the body is not a form
    json_headers = {"X-MBX-APIKEY": key, "Content-Type": "application/json"}
    fresh = f"timestamp={_now()}&{body}"
    answer = post(fresh + f"&signature={_signed(secret, fresh)}", json_headers)
    assert (answer.status, answer.code) == (415, -1000)
    # no key at all, a malformed key, an unknown key
    assert call(live_api, "GET", "/api/v3/account").body["code"] == -2014
    bad_key = {"X-MBX-APIKEY": "not a key!"}
    assert call(live_api, "GET", "/api/v3/account", headers=bad_key).code == -2014
    unknown = SignedClient(live_api, "Z" * 64, secret).request("GET", "/api/v3/account")
    assert (unknown.status, unknown.code) == (401, -2015)
    assert _state() == after_first


def test_revoked_expired_and_ip_restricted_keys_are_refused(live_api, alice, assets, btc_usdt):  # noqa: F811
    fund(alice, assets["USDT"], "1000")
    refused = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
    key, secret = make_key(alice, label="revoked")
    revoke_api_key(user=alice, api_key_id=ApiKey.objects.get(key=key).pk)
    expired_key, expired_secret = make_key(alice, label="expired")
    ApiKey.objects.filter(key=expired_key).update(expires_at=timezone.now() - timedelta(seconds=1))
    ip_key, ip_secret = make_key(alice, label="elsewhere")
    ApiKey.objects.filter(key=ip_key).update(ip_allowlist=["203.0.113.7"])
    before = _state()
    for k, s in ((key, secret), (expired_key, expired_secret), (ip_key, ip_secret)):
        client = SignedClient(live_api, k, s)
        for method, path, params in (
            ("POST", "/api/v3/order", _limit()),
            ("GET", "/api/v3/account", {}),
            ("DELETE", "/api/v3/openOrders", {"symbol": "BTCUSDT"}),
        ):
            answer = client.request(method, path, params)
            assert answer.body == refused, (k, path)
            assert answer.status in (401, 403)
    assert _state() == before


def test_a_body_past_djangos_upload_limit_is_refused_in_binance_shape(
    live_api,
    alice,
    btc_usdt,  # noqa: F811
):
    key, secret = make_key(alice)
    before = _state()
    stamped = f"timestamp={_now()}&symbol=BTCUSDT&pad={'a' * 3_000_000}"
    body = f"{stamped}&signature={_signed(secret, stamped)}".encode()
    headers = {"X-MBX-APIKEY": key, "Content-Type": "application/x-www-form-urlencoded"}
    answer = call(live_api, "POST", "/api/v3/order", body=body, headers=headers)
    assert answer.status in (400, 401, 413), answer.body
    assert isinstance(answer.body, dict), answer.body
    assert answer.code is not None, answer.body
    assert _state() == before
