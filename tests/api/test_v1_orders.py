"""v1 orders through the live uvicorn: place (signed JSON, signed form, web session with
CSRF), read, list with cursor pages, cancel one / a batch / all, batch place with a result
per item, other users' ids, scopes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import Asset, User
from markets.models import Market
from tests.api.conftest import SignedClient, call, make_key
from tests.api.test_v1_support import JsonSigned, limit_order, session_of
from tests.conftest import assert_ledger_clean, balance_of, fund
from tests.trading import conftest as trading_fixtures
from tests.trading.conftest import snapshot
from tests.trading.pipeline_helpers import loops_running, wait_settled
from trading.models import Order, OrderStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]


D = Decimal
btc_usdt = trading_fixtures.btc_usdt  # the fixture, usable here


@pytest.fixture
def signed(live_api: str, alice: User, assets: dict[str, Asset], btc_usdt: Market) -> JsonSigned:
    fund(alice, assets["USDT"], "20000")
    fund(alice, assets["BTC"], "2")
    key, secret = make_key(alice)
    return JsonSigned(live_api, key, secret)


def test_market_list_is_public_with_rules(live_api: str, btc_usdt: Market) -> None:
    got = call(live_api, "GET", "/api/v1/markets")
    assert got.status == 200
    (market,) = got.body["results"]
    assert market["symbol"] == "BTC-USDT"
    assert market["tick_size"] == "0.010000"  # USDT has 6 places
    assert market["lot_size"] == "0.00001000"
    assert market["min_notional"] == "5.000000"
    assert market["maker_fee"] == "0.001"
    assert "limit_maker" in market["order_types"]
    assert "expire_taker" in market["stp_modes"]
    one = call(live_api, "GET", "/api/v1/markets/btc-usdt")
    assert one.status == 200
    assert one.body["symbol"] == "BTC-USDT"
    missing = call(live_api, "GET", "/api/v1/markets/NOPE-USDT")
    assert (missing.status, missing.code) == (404, "market_not_found")
    assert call(live_api, "GET", "/api/v1/markets/").status == 404  # one style: no slash


def test_place_get_and_cancel_signed(signed: JsonSigned, alice: User, assets, btc_usdt) -> None:
    placed = signed.request(
        "POST", "/api/v1/orders", body=limit_order(client_order_id="my-1", stp_mode="expire_taker")
    )
    assert placed.status == 201, placed.body
    order = placed.body
    assert (order["status"], order["client_order_id"], order["stp_mode"]) == (
        "new",
        "my-1",
        "expire_taker",
    )
    assert (order["price"], order["quantity"]) == ("50000.000000", "0.10000000")
    assert balance_of(alice, assets["USDT"]) == (D("14990"), D("5010"))
    got = signed.request("GET", f"/api/v1/orders/{order['id']}")
    assert got.status == 200
    assert got.body["id"] == order["id"]
    by_coid = signed.request("GET", "/api/v1/orders/by-client-id/my-1")
    assert by_coid.status == 200
    assert by_coid.body["id"] == order["id"]
    with loops_running(["BTC-USDT"]):
        wait_settled(["BTC-USDT"])
        cancelled = signed.request("DELETE", f"/api/v1/orders/{order['id']}")
        assert cancelled.status == 202, cancelled.body
        wait_settled(["BTC-USDT"])
    assert Order.objects.get(pk=order["id"]).status == OrderStatus.CANCELED
    assert balance_of(alice, assets["USDT"]) == (D("20000"), D("0"))
    again = signed.request("DELETE", f"/api/v1/orders/{order['id']}")
    assert (again.status, again.code) == (409, "order_not_open")
    assert_ledger_clean()


def test_every_order_type_is_accepted(signed: JsonSigned, alice: User) -> None:
    bodies = [
        limit_order(client_order_id="l"),
        limit_order(type="limit_maker", price="49000", client_order_id="lm"),
        limit_order(time_in_force="ioc", price="45000", client_order_id="ioc"),
        {"market": "BTC-USDT", "side": "buy", "type": "market", "quote_amount": "100"},
        {"market": "BTC-USDT", "side": "sell", "type": "market", "quantity": "0.01"},
        {
            "market": "BTC-USDT",
            "side": "sell",
            "type": "stop_limit",
            "price": "48000",
            "stop_price": "48500",
            "quantity": "0.01",
        },
        {
            "market": "BTC-USDT",
            "side": "sell",
            "type": "stop_market",
            "stop_price": "47000",
            "quantity": "0.01",
        },
    ]
    for sent in bodies:
        answer = signed.request("POST", "/api/v1/orders", body=sent)
        assert answer.status == 201, (sent, answer.body)
    assert Order.objects.filter(user=alice).count() == len(bodies)


def test_a_form_body_signed_like_ccxt_places_too(live_api, alice, assets, btc_usdt) -> None:
    fund(alice, assets["USDT"], "6000")
    key, secret = make_key(alice)
    answer = SignedClient(live_api, key, secret).request("POST", "/api/v1/orders", limit_order())
    assert answer.status == 201, answer.body
    assert answer.body["side"] == "buy"


def test_session_with_csrf_places_and_without_is_refused(live_api, alice, assets, btc_usdt):
    fund(alice, assets["USDT"], "6000")
    browser = session_of(live_api, alice)
    before = snapshot()
    refused = browser.request("POST", "/api/v1/orders", body=limit_order(), csrf=False)
    assert (refused.status, refused.code) == (403, "permission_denied")
    assert "CSRF" in refused.body["message"]
    assert snapshot() == before
    placed = browser.request("POST", "/api/v1/orders", body=limit_order())
    assert placed.status == 201, placed.body
    listed = browser.request("GET", "/api/v1/orders")
    assert [o["id"] for o in listed.body["results"]] == [placed.body["id"]]
    anonymous = browser.request("GET", "/api/v1/orders", headers={"Cookie": ""})
    assert anonymous.status in (401, 403)


def test_list_pages_with_a_cursor_and_filters(signed: JsonSigned, alice: User) -> None:
    ids = []
    for n in range(5):
        answer = signed.request(
            "POST", "/api/v1/orders", body=limit_order(price=str(49000 + n), quantity="0.01")
        )
        ids.append(answer.body["id"])
    first = signed.request("GET", "/api/v1/orders", query={"limit": 2})
    assert [o["id"] for o in first.body["results"]] == ids[::-1][:2]
    cursor = first.body["next_cursor"]
    second = signed.request("GET", "/api/v1/orders", query={"limit": 2, "cursor": cursor})
    assert [o["id"] for o in second.body["results"]] == ids[::-1][2:4]
    third = signed.request(
        "GET", "/api/v1/orders", query={"limit": 2, "cursor": second.body["next_cursor"]}
    )
    assert [o["id"] for o in third.body["results"]] == ids[:1]
    assert third.body["next_cursor"] is None
    opened = signed.request("GET", "/api/v1/orders", query={"status": "open", "market": "BTC-USDT"})
    assert len(opened.body["results"]) == 5
    filled = signed.request("GET", "/api/v1/orders", query={"status": "filled"})
    assert filled.body["results"] == []
    later = signed.request("GET", "/api/v1/orders", query={"start_time": 4102444800000})
    assert later.body["results"] == []


def test_batch_place_answers_every_item(signed: JsonSigned, alice: User, assets) -> None:
    items = [
        limit_order(quantity="0.01", client_order_id="b-1"),
        limit_order(price="50000.001"),  # off tick
        {"market": "BTC-USDT", "side": "buy"},  # no price
        limit_order(market="NOPE-USDT"),
        limit_order(quantity="100"),  # more than the balance
        "not an object",
        limit_order(quantity="0.02", client_order_id="b-2"),
    ]
    answer = signed.request("POST", "/api/v1/orders/batch", body={"orders": items})
    assert answer.status == 200, answer.body
    results = answer.body["results"]
    assert [r["index"] for r in results] == list(range(7))
    assert [r["ok"] for r in results] == [True, False, False, False, False, False, True]
    assert [r["error"]["code"] for r in results if not r["ok"]] == [
        "price_off_tick",
        "price_required",
        "market_not_found",
        "insufficient_funds",
        "order_invalid",
    ]
    assert results[0]["order"]["client_order_id"] == "b-1"
    assert Order.objects.filter(user=alice).count() == 2


@pytest.mark.parametrize(
    ("_case", "body", "code"),
    [
        ("empty", {"orders": []}, "batch_invalid"),
        ("too many", {"orders": [limit_order()] * 21}, "batch_invalid"),
        ("not a list", {"orders": {"a": 1}}, "batch_invalid"),
        ("unknown field", {"orders": [limit_order()], "x": 1}, "batch_invalid"),
        ("not an object", [limit_order()], "body_invalid"),
    ],
)
def test_a_malformed_batch_changes_nothing(signed: JsonSigned, _case, body, code) -> None:
    before = snapshot()
    answer = signed.request("POST", "/api/v1/orders/batch", body=body)
    assert (answer.status, answer.code) == (400, code), answer.body
    assert snapshot() == before


def test_batch_cancel_and_cancel_all(signed: JsonSigned, alice, mallory, assets) -> None:
    fund(mallory, assets["USDT"], "6000")
    theirs = Order.objects.get(
        pk=JsonSigned(signed.base, *make_key(mallory))
        .request("POST", "/api/v1/orders", body=limit_order(client_order_id="m-1"))
        .body["id"]
    )
    ours = [
        signed.request(
            "POST", "/api/v1/orders", body=limit_order(quantity="0.01", client_order_id=f"c-{n}")
        ).body["id"]
        for n in range(3)
    ]
    with loops_running(["BTC-USDT"]):
        wait_settled(["BTC-USDT"])
        answer = signed.request(
            "POST",
            "/api/v1/orders/cancel",
            body={
                "orders": [
                    {"order_id": ours[0]},
                    {"client_order_id": "c-1"},
                    {"order_id": theirs.pk},  # mallory's: looks missing
                    {"client_order_id": "m-1"},
                    {"order_id": ours[0], "client_order_id": "c-0"},
                    {"order_id": "x"},
                ]
            },
        )
        assert answer.status == 200, answer.body
        results = answer.body["results"]
        assert [r["ok"] for r in results] == [True, True, False, False, False, False]
        assert [r["error"]["code"] for r in results[2:]] == [
            "order_not_found",
            "order_not_found",
            "order_id_required",
            "invalid",
        ]
        wait_settled(["BTC-USDT"])
        everything = signed.request("DELETE", "/api/v1/orders", query={"market": "BTC-USDT"})
        assert everything.status == 202
        assert everything.body == {"cancel_requested": 1}
        wait_settled(["BTC-USDT"])
    assert set(Order.objects.filter(user=alice).values_list("status", flat=True)) == {"canceled"}
    assert Order.objects.get(pk=theirs.pk).status == OrderStatus.NEW
    assert_ledger_clean()


def test_other_users_orders_look_missing(signed: JsonSigned, live_api, mallory, assets) -> None:
    fund(mallory, assets["USDT"], "6000")
    theirs = JsonSigned(live_api, *make_key(mallory)).request(
        "POST", "/api/v1/orders", body=limit_order(client_order_id="secret-1")
    )
    order_id = theirs.body["id"]
    before = snapshot()
    for method, path, body in [
        ("GET", f"/api/v1/orders/{order_id}", None),
        ("DELETE", f"/api/v1/orders/{order_id}", None),
        ("GET", "/api/v1/orders/by-client-id/secret-1", None),
        ("DELETE", "/api/v1/orders/by-client-id/secret-1", None),
        ("POST", f"/api/v1/orders/{order_id}/reduce", {"remaining_quantity": "0.01"}),
        ("GET", "/api/v1/orders/999999999", None),
        ("GET", "/api/v1/orders/99999999999999999999999", None),
        ("GET", "/api/v1/orders/abc", None),
    ]:
        answer = signed.request(method, path, body=body)
        assert (answer.status, answer.code) == (404, "order_not_found"), (path, answer.body)
        assert "secret" not in str(answer.body)
    assert signed.request("GET", "/api/v1/orders").body["results"] == []
    assert snapshot() == before


def test_scopes(live_api: str, alice: User, assets, btc_usdt) -> None:
    fund(alice, assets["USDT"], "6000")
    read_only = JsonSigned(live_api, *make_key(alice, trade=False))
    before = snapshot()
    refused = read_only.request("POST", "/api/v1/orders", body=limit_order())
    assert (refused.status, refused.code) == (403, "scope_missing")
    refused = read_only.request("DELETE", "/api/v1/orders")
    assert (refused.status, refused.code) == (403, "scope_missing")
    assert snapshot() == before
    assert read_only.request("GET", "/api/v1/orders").status == 200
    trader = JsonSigned(live_api, *make_key(alice))
    withdraw = trader.request(
        "POST",
        "/api/v1/withdrawals",
        body={"asset": "USDT", "amount": "10", "address": "addr", "totp_code": "123456"},
    )
    assert (withdraw.status, withdraw.code) == (403, "scope_missing")
    assert trader.request("GET", "/api/v1/withdrawals").status == 200
    bad = JsonSigned(live_api, trader.key, "wrong-secret").request("GET", "/api/v1/orders")
    assert (bad.status, bad.code) == (401, "signature_invalid")
    assert snapshot() == before
