"""Bad input on every v1 endpoint, through the live uvicorn: a clear {code, message, field}
error with a stable code, never a 500, and nothing changed (ledger, orders, outbox)."""

from __future__ import annotations

import json

import pytest

from accounts.models import User
from tests.api.conftest import call, make_key
from tests.api.test_v1_support import JsonSigned, limit_order
from tests.conftest import fund
from tests.trading import conftest as trading_fixtures
from tests.trading.conftest import snapshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

btc_usdt = trading_fixtures.btc_usdt  # the fixture, usable here


@pytest.fixture
def client(live_api: str, alice: User, assets, btc_usdt) -> JsonSigned:
    fund(alice, assets["USDT"], "20000")
    fund(alice, assets["BTC"], "1")
    return JsonSigned(live_api, *make_key(alice))


ORDER_CASES = [
    ("exponent", {"price": "5e4"}, "amount_invalid", "price"),
    ("nan", {"price": "NaN"}, "amount_invalid", "price"),
    ("infinity", {"quantity": "Infinity"}, "amount_invalid", "quantity"),
    ("negative", {"quantity": "-0.1"}, "amount_not_positive", "quantity"),
    ("plus sign", {"quantity": "+0.1"}, "amount_invalid", "quantity"),
    ("arabic digits", {"quantity": "\u0660.\u0661"}, "amount_invalid", "quantity"),
    ("underscore", {"price": "50_000"}, "amount_invalid", "price"),
    ("whitespace", {"price": " 50000"}, "amount_invalid", "price"),
    ("too many decimals", {"quantity": "0.000000001"}, "quantity_too_precise", "quantity"),
    ("huge", {"price": "9" * 65}, "max_length", "price"),
    ("json number", {"price": 50000}, "invalid", "price"),
    ("json float", {"quantity": 0.1}, "invalid", "quantity"),
    ("zero", {"quantity": "0"}, "amount_not_positive", "quantity"),
    ("off tick", {"price": "50000.001"}, "price_off_tick", "price"),
    ("out of band", {"price": "60000"}, "price_out_of_band", "price"),
    ("below minimum", {"quantity": "0.00001"}, "quantity_below_minimum", "quantity"),
    ("no market", {"market": None}, "required", "market"),
    ("unknown market", {"market": "DOGE-USDT"}, "market_not_found", "market"),
    ("bad side", {"side": "long"}, "side_invalid", "side"),
    ("bad type", {"type": "iceberg"}, "order_type_invalid", "order_type"),
    ("bad tif", {"time_in_force": "day"}, "time_in_force_invalid", "time_in_force"),
    ("bad stp", {"stp_mode": "cancel_all"}, "stp_mode_invalid", "stp_mode"),
    ("bad client id", {"client_order_id": "a b"}, "client_order_id_invalid", "client_order_id"),
    ("unknown field", {"qty": "1"}, "field_unknown", "qty"),
    ("no price", {"price": None}, "price_required", "price"),
    ("too expensive", {"quantity": "1"}, "insufficient_funds", "amount"),
]


@pytest.mark.parametrize(("_case", "change", "code", "field"), ORDER_CASES)
def test_a_bad_order_changes_nothing(client: JsonSigned, _case, change, code, field) -> None:
    sent: dict[str, object] = {**limit_order(), **change}
    sent = {k: v for k, v in sent.items() if v is not None}
    before = snapshot()
    answer = client.request("POST", "/api/v1/orders", body=sent)
    assert 400 <= answer.status < 500, answer.body
    assert (answer.code, answer.body["field"]) == (code, field), answer.body
    assert answer.body["message"]
    assert snapshot() == before


@pytest.mark.parametrize(
    ("_case", "raw", "content_type", "status", "code"),
    [
        ("not json", b"{", "application/json", 400, "parse_error"),
        ("a list", b"[]", "application/json", 400, "body_invalid"),
        ("a string", b'"x"', "application/json", 400, "body_invalid"),
        ("plain text", b"side=buy", "text/plain", 415, "unsupported_media_type"),
        ("oversized", b'{"a": "' + b"x" * 70_000 + b'"}', "application/json", 401, None),
    ],
)
def test_a_malformed_body_changes_nothing(client, _case, raw, content_type, status, code):
    before = snapshot()
    answer = client.request(
        "POST", "/api/v1/orders", raw=raw, headers={"Content-Type": content_type}
    )
    assert answer.status == status, answer.body
    if code is not None:
        assert answer.code == code, answer.body
    assert snapshot() == before


def test_a_client_order_id_reused_for_another_order_is_refused(client: JsonSigned) -> None:
    first = client.request("POST", "/api/v1/orders", body=limit_order(client_order_id="x"))
    assert first.status == 201
    before = snapshot()
    other = client.request(
        "POST", "/api/v1/orders", body=limit_order(client_order_id="x", quantity="0.2")
    )
    assert (other.status, other.code) == (409, "duplicate_client_order_id")
    same = client.request("POST", "/api/v1/orders", body=limit_order(client_order_id="x"))
    assert same.status == 201  # the same order again: the stored one, nothing new
    assert snapshot() == before


READ_CASES = [
    ("GET", "/api/v1/orders", {"status": "done"}, 400, "parameter_invalid"),
    ("GET", "/api/v1/orders", {"limit": "0"}, 400, "limit_invalid"),
    ("GET", "/api/v1/orders", {"limit": "501"}, 400, "limit_invalid"),
    ("GET", "/api/v1/orders", {"limit": "ten"}, 400, "limit_invalid"),
    ("GET", "/api/v1/orders", {"cursor": "garbage"}, 400, "cursor_invalid"),
    ("GET", "/api/v1/orders", {"cursor": "cD1hYmM="}, 400, "cursor_invalid"),  # p=abc
    ("GET", "/api/v1/orders", {"start_time": "-1"}, 400, "parameter_invalid"),
    ("GET", "/api/v1/orders", {"start_time": "9999999999999999"}, 400, "parameter_invalid"),
    ("GET", "/api/v1/orders", {"start_time": "2", "end_time": "1"}, 400, "parameter_invalid"),
    ("GET", "/api/v1/orders", {"market": "NOPE-USDT"}, 404, "market_not_found"),
    ("DELETE", "/api/v1/orders", {"market": "NOPE-USDT"}, 404, "market_not_found"),
    ("GET", "/api/v1/trades", {"cursor": "%%%"}, 400, "cursor_invalid"),
    ("GET", "/api/v1/trades", {"limit": "1000"}, 400, "limit_invalid"),
    ("GET", "/api/v1/trades", {"end_time": "x"}, 400, "parameter_invalid"),
    ("GET", "/api/v1/deposits", {"limit": "-3"}, 400, "limit_invalid"),
    ("GET", "/api/v1/withdrawals", {"cursor": "bm9wZQ=="}, 400, "cursor_invalid"),
    ("GET", "/api/v1/markets/" + "X" * 40, {}, 404, "market_not_found"),
    ("GET", "/api/v1/reports/volume", {}, 400, "parameter_invalid"),
    ("PUT", "/api/v1/orders", {}, 405, "method_not_allowed"),
    ("GET", "/api/v1/orders/batch", {}, 405, "method_not_allowed"),
]


@pytest.mark.parametrize(("method", "path", "query", "status", "code"), READ_CASES)
def test_bad_parameters_are_refused(client: JsonSigned, method, path, query, status, code) -> None:
    before = snapshot()
    answer = client.request(method, path, query=query)
    assert (answer.status, answer.code) == (status, code), answer.body
    assert snapshot() == before


@pytest.mark.parametrize(
    ("_case", "body", "code"),
    [
        ("no list", {}, "batch_invalid"),
        ("json string that is not json", {"orders": "[{"}, "batch_invalid"),
        ("21 items", {"orders": [{"order_id": 1}] * 21}, "batch_invalid"),
    ],
)
def test_a_malformed_cancel_batch_changes_nothing(client: JsonSigned, _case, body, code) -> None:
    before = snapshot()
    answer = client.request("POST", "/api/v1/orders/cancel", body=body)
    assert (answer.status, answer.code) == (400, code), answer.body
    assert snapshot() == before


def test_unauthenticated_requests_are_refused(live_api: str, btc_usdt) -> None:
    before = snapshot()
    for method, path in [
        ("GET", "/api/v1/orders"),
        ("POST", "/api/v1/orders"),
        ("GET", "/api/v1/balances"),
        ("POST", "/api/v1/withdrawals"),
        ("GET", "/api/v1/api-key"),
    ]:
        answer = call(
            live_api,
            method,
            path,
            body=json.dumps(limit_order()).encode() if method == "POST" else None,
            headers={"Content-Type": "application/json"},
        )
        assert (answer.status, answer.code) == (401, "not_authenticated"), (path, answer.body)
    assert snapshot() == before
