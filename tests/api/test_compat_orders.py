"""The compat order endpoints through the live uvicorn (issue 12): place, fill, cancel and
list each order type, idempotent repeats, cancelReplace, cancel-all, myTrades' fields.

Orders the server accepts are matched by loops this process runs (`loops_running`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from accounts.models import Asset, User
from markets.models import Market
from tests.api.conftest import Answer, SignedClient, make_key
from tests.conftest import balance_of, fund, ledger_snapshot
from tests.trading.conftest import btc_usdt  # noqa: F401  (the fixture)
from tests.trading.pipeline_helpers import loops_running, wait_settled
from trading.models import Order, OrderStatus

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("redis_db"),
]

D = Decimal
SYMBOL = "BTC-USDT"


def _client(live_api: str, user: User, *, trade: bool = True) -> SignedClient:
    key, secret = make_key(user, trade=trade)
    return SignedClient(live_api, key, secret)


def _limit(side: str, price: str, qty: str, **extra: Any) -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "side": side,
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": qty,
        "price": price,
        **extra,
    }


def _ok(answer: Answer) -> Any:
    assert answer.status == 200, answer.body
    return answer.body


@pytest.fixture
def traders(
    live_api: str,
    alice: User,
    bob: User,
    assets: dict[str, Asset],
    btc_usdt: Market,  # noqa: F811
) -> tuple[SignedClient, SignedClient]:
    fund(alice, assets["USDT"], "100000")
    fund(bob, assets["BTC"], "2")
    return _client(live_api, alice), _client(live_api, bob)


def test_limit_rests_then_fills_against_a_market_sell(traders, alice, bob, assets):
    a, b = traders
    with loops_running([SYMBOL]):
        placed = _ok(a.request("POST", "/api/v3/order", _limit("BUY", "50000", "0.1")))
        assert placed["status"] == "NEW"
        assert placed["type"] == "LIMIT"
        assert placed["side"] == "BUY"
        assert placed["timeInForce"] == "GTC"
        assert placed["price"] == "50000.000000"
        assert placed["origQty"] == "0.10000000"
        assert placed["executedQty"] == "0.00000000"
        assert placed["orderListId"] == -1
        assert placed["fills"] == []
        assert placed["selfTradePreventionMode"] == "NONE"
        assert isinstance(placed["transactTime"], int)
        sold = _ok(
            b.request(
                "POST",
                "/api/v3/order",
                {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.1"},
            )
        )
        assert sold["status"] == "FILLED"
        assert sold["executedQty"] == "0.10000000"
        assert sold["cummulativeQuoteQty"] == "5000.000000"
        [fill] = sold["fills"]
        assert fill["price"] == "50000.000000"
        assert fill["qty"] == "0.10000000"
        assert fill["commission"] == "10.000000"  # taker 0.2% of 5000
        assert fill["commissionAsset"] == "USDT"
        wait_settled([SYMBOL])
    got = _ok(
        a.request("GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": placed["orderId"]})
    )
    assert got["status"] == "FILLED"
    assert got["cummulativeQuoteQty"] == "5000.000000"
    assert got["isWorking"] is False
    # maker pays 0.1% of 5000 = 5 USDT on top; 100000 - 5005 left
    assert balance_of(alice, assets["USDT"]) == (D("94995"), D("0"))
    assert balance_of(alice, assets["BTC"]) == (D("0.1"), D("0"))

    trades_a = _ok(a.request("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"}))
    trades_b = _ok(b.request("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"}))
    [ta], [tb] = trades_a, trades_b
    assert ta["id"] == tb["id"] == fill["tradeId"]
    assert (ta["isBuyer"], ta["isMaker"], ta["commission"]) == (True, True, "5.000000")
    assert (tb["isBuyer"], tb["isMaker"], tb["commission"]) == (False, False, "10.000000")
    assert ta["commissionAsset"] == tb["commissionAsset"] == "USDT"
    assert ta["orderId"] == placed["orderId"]
    assert tb["orderId"] == sold["orderId"]
    assert ta["quoteQty"] == "5000.000000"
    assert ta["qty"] == "0.10000000"
    assert ta["orderListId"] == -1
    assert ta["isBestMatch"] is True
    by_order = _ok(
        a.request("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT", "orderId": placed["orderId"]})
    )
    assert by_order == trades_a
    assert (
        _ok(a.request("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT", "fromId": ta["id"] + 1}))
        == []
    )


def test_market_buy_by_quote_amount(traders, alice, assets):
    a, b = traders
    with loops_running([SYMBOL]):
        _ok(b.request("POST", "/api/v3/order", _limit("SELL", "50000", "0.1")))
        bought = _ok(
            a.request(
                "POST",
                "/api/v3/order",
                {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quoteOrderQty": "1000"},
            )
        )
        wait_settled([SYMBOL])
    assert bought["status"] == "FILLED"
    assert bought["origQuoteOrderQty"] == "1000.000000"
    assert bought["executedQty"] == "0.02000000"
    assert bought["cummulativeQuoteQty"] == "1000.000000"
    assert balance_of(alice, assets["BTC"]) == (D("0.02"), D("0"))


def test_limit_maker_that_would_take_is_refused_with_binance_message(traders, alice, assets):
    a, b = traders
    with loops_running([SYMBOL]):
        _ok(b.request("POST", "/api/v3/order", _limit("SELL", "50000", "0.1")))
        answer = a.request(
            "POST",
            "/api/v3/order",
            {**_limit("BUY", "50000", "0.01"), "type": "LIMIT_MAKER", "newOrderRespType": "RESULT"}
            | {"timeInForce": "GTC"},
        )
        wait_settled([SYMBOL])
    assert answer.status == 400
    assert answer.body == {"code": -2010, "msg": "Order would immediately match and take."}
    assert balance_of(alice, assets["USDT"]) == (D("100000"), D("0"))  # hold released


def test_limit_maker_rests(traders):
    a, _b = traders
    with loops_running([SYMBOL]):
        params = {**_limit("BUY", "49000", "0.01"), "type": "LIMIT_MAKER"}
        params.pop("timeInForce")
        ack = _ok(a.request("POST", "/api/v3/order", params))
        assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
        wait_settled([SYMBOL])
    got = _ok(a.request("GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": ack["orderId"]}))
    assert (got["type"], got["status"], got["isWorking"]) == ("LIMIT_MAKER", "NEW", True)


def test_ioc_and_fok_expire_what_they_cannot_fill(traders):
    a, b = traders
    with loops_running([SYMBOL]):
        _ok(b.request("POST", "/api/v3/order", _limit("SELL", "50000", "0.01")))
        ioc = _ok(
            a.request("POST", "/api/v3/order", _limit("BUY", "50000", "0.05", timeInForce="IOC"))
        )
        fok = _ok(
            a.request("POST", "/api/v3/order", _limit("BUY", "50000", "0.05", timeInForce="FOK"))
        )
        wait_settled([SYMBOL])
    assert (ioc["status"], ioc["executedQty"], ioc["timeInForce"]) == (
        "EXPIRED",
        "0.01000000",
        "IOC",
    )
    assert (fok["status"], fok["executedQty"], fok["timeInForce"]) == (
        "EXPIRED",
        "0.00000000",
        "FOK",
    )


def test_stop_loss_limit_triggers_when_the_price_falls(traders, live_api, mallory, assets):
    a, b = traders
    fund(mallory, assets["USDT"], "100000")
    m = _client(live_api, mallory)
    with loops_running([SYMBOL]):
        params = {**_limit("SELL", "48000", "0.1"), "type": "STOP_LOSS_LIMIT", "stopPrice": "49000"}
        stop = _ok(b.request("POST", "/api/v3/order", params))
        assert set(stop) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
        wait_settled([SYMBOL])
        query = {"symbol": "BTCUSDT", "orderId": stop["orderId"]}
        waiting = _ok(b.request("GET", "/api/v3/order", query))
        assert waiting["type"] == "STOP_LOSS_LIMIT"
        assert waiting["stopPrice"] == "49000.000000"
        assert (waiting["status"], waiting["isWorking"], waiting["workingTime"]) == (
            "NEW",
            False,
            -1,
        )
        _ok(a.request("POST", "/api/v3/order", _limit("BUY", "48000", "0.2")))
        _ok(m.request("POST", "/api/v3/order", _limit("BUY", "49000", "0.01")))
        # bob sells to mallory at 49000: the last price reaches the stop, which then sells
        # 0.1 to alice's bid at 48000
        _ok(b.request("POST", "/api/v3/order", _limit("SELL", "49000", "0.01")))
        wait_settled([SYMBOL])
        done = _ok(b.request("GET", "/api/v3/order", query))
    assert (done["status"], done["executedQty"]) == ("FILLED", "0.10000000")
    assert done["cummulativeQuoteQty"] == "4800.000000"
    assert Order.objects.get(pk=stop["orderId"]).triggered_seq is not None


def test_stop_loss_market_sell_and_take_profit_refusal(traders, alice, bob, assets):
    _a, b = traders
    before = ledger_snapshot(), Order.objects.count()
    stop = {"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_LOSS", "quantity": "0.1"}
    immediate = b.request("POST", "/api/v3/order", {**stop, "stopPrice": "51000"})
    assert immediate.body == {"code": -2010, "msg": "Stop price would trigger immediately."}
    for kind in ("TAKE_PROFIT", "TAKE_PROFIT_LIMIT"):
        refused = b.request("POST", "/api/v3/order", {**stop, "type": kind, "stopPrice": "55000"})
        assert refused.status == 400
        assert refused.body == {
            "code": -1013,
            "msg": "Take profit orders are not supported for this symbol.",
        }
    assert (ledger_snapshot(), Order.objects.count()) == before
    with loops_running([SYMBOL]):
        placed = _ok(b.request("POST", "/api/v3/order", {**stop, "stopPrice": "49000"}))
        wait_settled([SYMBOL])
    got = _ok(
        b.request("GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": placed["orderId"]})
    )
    assert (got["type"], got["status"], got["stopPrice"]) == ("STOP_LOSS", "NEW", "49000.000000")
    assert balance_of(bob, assets["BTC"]) == (D("1.9"), D("0.1"))


def test_client_order_id_repeat_returns_the_original_order(traders, alice, assets):
    a, _b = traders
    params = _limit("BUY", "49000", "0.01", newClientOrderId="x-TKT5PX2Fabcdefghijklmnopqrstuv")
    with loops_running([SYMBOL]):
        first = _ok(a.request("POST", "/api/v3/order", params))
        again = _ok(a.request("POST", "/api/v3/order", params))
        wait_settled([SYMBOL])
    assert again["orderId"] == first["orderId"]
    assert again["clientOrderId"] == "x-TKT5PX2Fabcdefghijklmnopqrstuv"
    assert Order.objects.filter(user=alice).count() == 1
    assert balance_of(alice, assets["USDT"])[1] == D("490.98")  # one hold: 490 x 1.002
    by_coid = _ok(
        a.request(
            "GET",
            "/api/v3/order",
            {"symbol": "BTCUSDT", "origClientOrderId": "x-TKT5PX2Fabcdefghijklmnopqrstuv"},
        )
    )
    assert by_coid["orderId"] == first["orderId"]
    different = a.request("POST", "/api/v3/order", {**params, "price": "48000"})
    assert different.body == {"code": -2010, "msg": "Duplicate order sent."}
    assert Order.objects.filter(user=alice).count() == 1


def test_cancel_by_id_and_by_client_id(traders, alice, assets):
    a, _b = traders
    with loops_running([SYMBOL]):
        one = _ok(a.request("POST", "/api/v3/order", _limit("BUY", "49000", "0.01")))
        two = _ok(
            a.request(
                "POST", "/api/v3/order", _limit("BUY", "48000", "0.01", newClientOrderId="two")
            )
        )
        wait_settled([SYMBOL])
        cancelled = _ok(
            a.request("DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": one["orderId"]})
        )
        by_coid = _ok(
            a.request("DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "two"})
        )
        wait_settled([SYMBOL])
        again = a.request(
            "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": one["orderId"]}
        )
    assert cancelled["status"] == "CANCELED"
    assert cancelled["orderId"] == one["orderId"]
    assert cancelled["origClientOrderId"] == one["clientOrderId"]
    assert isinstance(cancelled["transactTime"], int)
    assert (by_coid["status"], by_coid["orderId"]) == ("CANCELED", two["orderId"])
    assert again.body == {"code": -2011, "msg": "Unknown order sent."}
    assert balance_of(alice, assets["USDT"]) == (D("100000"), D("0"))


def test_open_orders_list_and_cancel_all(traders, alice, assets):
    a, b = traders
    with loops_running([SYMBOL]):
        ids = [
            _ok(a.request("POST", "/api/v3/order", _limit("BUY", price, "0.01")))["orderId"]
            for price in ("47000", "48000", "49000")
        ]
        _ok(b.request("POST", "/api/v3/order", _limit("SELL", "52000", "0.01")))
        wait_settled([SYMBOL])
        listed = _ok(a.request("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}))
        everywhere = _ok(a.request("GET", "/api/v3/openOrders"))
        assert [o["orderId"] for o in listed] == ids == [o["orderId"] for o in everywhere]
        cancelled = _ok(a.request("DELETE", "/api/v3/openOrders", {"symbol": "BTCUSDT"}))
        wait_settled([SYMBOL])
        none_left = a.request("DELETE", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
    assert [(o["orderId"], o["status"]) for o in cancelled] == [(i, "CANCELED") for i in ids]
    assert none_left.body == {"code": -2011, "msg": "Unknown order sent."}
    assert _ok(a.request("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})) == []
    assert len(_ok(b.request("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}))) == 1
    assert balance_of(alice, assets["USDT"]) == (D("100000"), D("0"))


def test_all_orders_pages_oldest_first(traders):
    a, _b = traders
    with loops_running([SYMBOL]):
        ids = [
            _ok(a.request("POST", "/api/v3/order", _limit("BUY", "46000", "0.01")))["orderId"]
            for _ in range(4)
        ]
        wait_settled([SYMBOL])
    everything = _ok(a.request("GET", "/api/v3/allOrders", {"symbol": "BTCUSDT"}))
    assert [o["orderId"] for o in everything] == ids
    latest = _ok(a.request("GET", "/api/v3/allOrders", {"symbol": "BTCUSDT", "limit": 2}))
    assert [o["orderId"] for o in latest] == ids[2:]
    from_id = _ok(
        a.request("GET", "/api/v3/allOrders", {"symbol": "BTCUSDT", "orderId": ids[1], "limit": 2})
    )
    assert [o["orderId"] for o in from_id] == ids[1:3]
    start = everything[0]["time"]
    timed = _ok(
        a.request("GET", "/api/v3/allOrders", {"symbol": "BTCUSDT", "startTime": start, "limit": 1})
    )
    assert [o["orderId"] for o in timed] == ids[:1]


def test_cancel_replace(traders, alice, assets):
    a, _b = traders
    with loops_running([SYMBOL]):
        old = _ok(a.request("POST", "/api/v3/order", _limit("BUY", "49000", "0.01")))
        wait_settled([SYMBOL])
        replaced = _ok(
            a.request(
                "POST",
                "/api/v3/order/cancelReplace",
                {
                    **_limit("BUY", "48000", "0.02"),
                    "cancelReplaceMode": "STOP_ON_FAILURE",
                    "cancelOrderId": old["orderId"],
                },
            )
        )
        wait_settled([SYMBOL])
        failed = a.request(
            "POST",
            "/api/v3/order/cancelReplace",
            {
                **_limit("BUY", "47000", "0.02"),
                "cancelReplaceMode": "STOP_ON_FAILURE",
                "cancelOrderId": old["orderId"],
            },
        )
    assert replaced["cancelResult"] == replaced["newOrderResult"] == "SUCCESS"
    assert replaced["cancelResponse"]["status"] == "CANCELED"
    new = replaced["newOrderResponse"]
    assert (new["status"], new["price"], new["origQty"]) == ("NEW", "48000.000000", "0.02000000")
    assert failed.status == 400
    assert failed.body["code"] == -2022
    assert failed.body["data"]["cancelResult"] == "FAILURE"
    assert failed.body["data"]["newOrderResult"] == "NOT_ATTEMPTED"
    assert failed.body["data"]["cancelResponse"] == {"code": -2011, "msg": "Unknown order sent."}
    assert Order.objects.filter(user=alice, status=OrderStatus.NEW).count() == 1


def test_test_order_checks_without_placing(traders, alice):
    a, _b = traders
    before = ledger_snapshot(), Order.objects.count()
    assert _ok(a.request("POST", "/api/v3/order/test", _limit("BUY", "49000", "0.01"))) == {}
    rates = _ok(
        a.request(
            "POST",
            "/api/v3/order/test",
            {**_limit("BUY", "49000", "0.01"), "computeCommissionRates": "true"},
        )
    )
    assert rates["standardCommissionForOrder"] == {"maker": "0.00100000", "taker": "0.00200000"}
    bad = a.request("POST", "/api/v3/order/test", _limit("BUY", "49000.001", "0.01"))
    assert bad.body == {"code": -1013, "msg": "Filter failure: PRICE_FILTER"}
    assert (ledger_snapshot(), Order.objects.count()) == before


def test_result_wait_expires_without_loops_and_answers_new(traders, alice):
    a, _b = traders
    # No loops: the server waits its bound (2 s default) and answers the order as stored.
    placed = _ok(a.request("POST", "/api/v3/order", _limit("BUY", "49000", "0.01")))
    assert placed["status"] == "NEW"
    assert placed["fills"] == []
    assert Order.objects.get(pk=placed["orderId"]).accepted_seq is None


def test_self_trade_prevention_expires_the_taker_and_result_has_no_fills(traders, alice, assets):
    a, _b = traders
    fund(alice, assets["BTC"], "1")
    with loops_running([SYMBOL]):
        resting = _ok(a.request("POST", "/api/v3/order", _limit("SELL", "50000", "0.01")))
        taker = _ok(
            a.request(
                "POST",
                "/api/v3/order",
                _limit(
                    "BUY",
                    "50000",
                    "0.01",
                    selfTradePreventionMode="EXPIRE_TAKER",
                    newOrderRespType="RESULT",
                ),
            )
        )
        wait_settled([SYMBOL])
        maker = _ok(
            a.request("GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": resting["orderId"]})
        )
    assert "fills" not in taker
    assert (taker["status"], taker["executedQty"]) == ("EXPIRED", "0.00000000")
    assert taker["selfTradePreventionMode"] == "EXPIRE_TAKER"
    assert maker["status"] == "NEW"
    assert _ok(a.request("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"})) == []
