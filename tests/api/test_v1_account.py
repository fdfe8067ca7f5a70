"""v1 account endpoints through the live uvicorn: balances, trades (cursor pages), deposits,
withdrawals (history; request with the web's 2FA rules, scope and Idempotency-Key), fees,
the volume report and the calling key."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from accounts.models import ApiKey, Asset, User, Withdrawal, WithdrawalLimit
from reporting.calendars import local_today
from tests.accounts.web_support import enable_totp, totp_code, wrong_code
from tests.api.conftest import make_key
from tests.api.test_v1_support import JsonSigned, limit_order, session_of
from tests.conftest import balance_of, fund, ledger_snapshot
from tests.trading import conftest as trading_fixtures
from tests.trading.pipeline_helpers import loops_running, wait_settled

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

D = Decimal
btc_usdt = trading_fixtures.btc_usdt  # the fixture, usable here


def _client(base: str, user: User, *, withdraw: bool = False) -> JsonSigned:
    key, secret = make_key(user)
    if withdraw:
        # The service asks a TOTP code for this scope, which would use up the period's code
        # the withdrawal itself needs; the scope is set directly.
        ApiKey.objects.filter(key=key).update(can_withdraw=True)
    return JsonSigned(base, key, secret)


def test_balances(live_api: str, alice: User, assets: dict[str, Asset]) -> None:
    fund(alice, assets["USDT"], "1234.5")
    fund(alice, assets["BTC"], "0.25")
    answer = _client(live_api, alice).request("GET", "/api/v1/balances")
    assert answer.status == 200
    assert answer.body["results"] == [
        {"asset": "BTC", "available": "0.25000000", "locked": "0.00000000", "total": "0.25000000"},
        {
            "asset": "USDT",
            "available": "1234.500000",
            "locked": "0.000000",
            "total": "1234.500000",
        },
    ]


def test_trades_pages_and_sides(live_api, alice, bob, assets, btc_usdt) -> None:
    fund(alice, assets["USDT"], "20000")
    fund(bob, assets["BTC"], "1")
    buyer, seller = _client(live_api, alice), _client(live_api, bob)
    with loops_running(["BTC-USDT"]):
        buyer.request("POST", "/api/v1/orders", body=limit_order(quantity="0.2"))
        wait_settled(["BTC-USDT"])
        for _ in range(2):
            sold = seller.request(
                "POST", "/api/v1/orders", body=limit_order(side="sell", quantity="0.1")
            )
            assert sold.status == 201, sold.body
            wait_settled(["BTC-USDT"])
    first = buyer.request("GET", "/api/v1/trades", query={"limit": 1, "market": "BTC-USDT"})
    assert first.status == 200, first.body
    (trade,) = first.body["results"]
    assert (trade["side"], trade["is_maker"], trade["price"], trade["quantity"]) == (
        "buy",
        True,
        "50000.000000",
        "0.10000000",
    )
    assert trade["fee"] == "5.000000"  # 5000 x 0.1% maker
    second = buyer.request(
        "GET", "/api/v1/trades", query={"limit": 1, "cursor": first.body["next_cursor"]}
    )
    assert len(second.body["results"]) == 1
    assert second.body["results"][0]["id"] < trade["id"]
    assert second.body["next_cursor"] is None
    theirs = seller.request("GET", "/api/v1/trades").body["results"]
    assert [(t["side"], t["is_maker"], t["fee"]) for t in theirs] == [
        ("sell", False, "10.000000")
    ] * 2
    nothing = _client(live_api, User.objects.create_user(email="c@example.com", password="x"))
    assert nothing.request("GET", "/api/v1/trades").body["results"] == []


def test_deposits_history(live_api: str, alice: User, assets) -> None:
    fund(alice, assets["USDT"], "10", ref="bank-1")
    fund(alice, assets["BTC"], "0.5", ref="chain-2")
    rows = _client(live_api, alice).request("GET", "/api/v1/deposits").body["results"]
    assert [(r["asset"], r["amount"], r["external_ref"]) for r in rows] == [
        ("BTC", "0.50000000", "chain-2"),
        ("USDT", "10.000000", "bank-1"),
    ]


@pytest.fixture
def withdrawable(alice: User, assets: dict[str, Asset]) -> str:
    """alice: 100 USDT, a daily limit at her KYC level, TOTP set up; returns the secret."""
    fund(alice, assets["USDT"], "100")
    WithdrawalLimit.objects.create(
        asset=assets["USDT"], kyc_level=alice.kyc_level, daily_amount=D("1000")
    )
    return enable_totp(alice)


def _withdrawal(code: str, amount: str = "40") -> dict[str, str]:
    return {"asset": "USDT", "amount": amount, "address": "TRX-addr-1", "totp_code": code}


def test_withdrawal_request_with_2fa_and_its_repeat(live_api, alice, assets, withdrawable) -> None:
    client = _client(live_api, alice, withdraw=True)
    headers = {"Idempotency-Key": "w-1"}
    sent = _withdrawal(totp_code(withdrawable))
    answer = client.request("POST", "/api/v1/withdrawals", body=sent, headers=headers)
    assert answer.status == 201, answer.body
    assert (answer.body["status"], answer.body["amount"], answer.body["address"]) == (
        "pending",
        "40.000000",
        "TRX-addr-1",
    )
    assert balance_of(alice, assets["USDT"]) == (D("60"), D("40"))
    # A retry (the code is used up by now: the stored answer is returned, nothing runs).
    again = client.request("POST", "/api/v1/withdrawals", body=sent, headers=headers)
    assert (again.status, again.body) == (201, answer.body)
    assert Withdrawal.objects.filter(user=alice).count() == 1
    history = client.request("GET", "/api/v1/withdrawals").body["results"]
    assert [w["id"] for w in history] == [answer.body["id"]]
    # Without the key the same code is a replay: refused, nothing changed.
    before = ledger_snapshot()
    replay = client.request("POST", "/api/v1/withdrawals", body=sent)
    assert (replay.status, replay.code) == (400, "totp_invalid")
    assert ledger_snapshot() == before


@pytest.mark.parametrize(
    ("_case", "change", "status", "code"),
    [
        ("wrong code", {"totp_code": "wrong"}, 400, "totp_invalid"),
        ("too much", {"amount": "1000"}, 409, "insufficient_funds"),
        ("malformed amount", {"amount": "1e3"}, 400, "amount_invalid"),
        ("negative amount", {"amount": "-5"}, 400, "amount_not_positive"),
        ("json number", {"amount": 5}, 400, "invalid"),
        ("too precise", {"amount": "1.0000001"}, 400, "amount_too_precise"),
        ("unknown asset", {"asset": "DOGE"}, 404, "asset_unknown"),
        ("no address", {"address": ""}, 400, "blank"),
        ("missing code", {"totp_code": None}, 400, "required"),
        ("unknown field", {"memo": "x"}, 400, "field_unknown"),
    ],
)
def test_a_refused_withdrawal_changes_nothing(
    live_api, alice, withdrawable, _case, change, status, code
) -> None:
    client = _client(live_api, alice, withdraw=True)
    sent: dict[str, object] = {**_withdrawal(totp_code(withdrawable)), **change}
    if sent["totp_code"] == "wrong":
        sent["totp_code"] = wrong_code(withdrawable)
    sent = {k: v for k, v in sent.items() if v is not None}
    before = ledger_snapshot()
    answer = client.request("POST", "/api/v1/withdrawals", body=sent)
    assert (answer.status, answer.code) == (status, code), answer.body
    assert ledger_snapshot() == before


def test_withdrawals_need_2fa_set_up(live_api, alice, assets) -> None:
    fund(alice, assets["USDT"], "100")
    before = ledger_snapshot()
    answer = _client(live_api, alice, withdraw=True).request(
        "POST", "/api/v1/withdrawals", body=_withdrawal("123456")
    )
    assert (answer.status, answer.code) == (403, "two_factor_required")
    assert ledger_snapshot() == before


def test_a_session_withdraws_with_csrf_and_a_code(live_api, alice, assets, withdrawable) -> None:
    browser = session_of(live_api, alice)
    before = ledger_snapshot()
    refused = browser.request(
        "POST", "/api/v1/withdrawals", body=_withdrawal(totp_code(withdrawable)), csrf=False
    )
    assert refused.status == 403
    assert ledger_snapshot() == before
    answer = browser.request(
        "POST", "/api/v1/withdrawals", body=_withdrawal(totp_code(withdrawable), amount="10")
    )
    assert answer.status == 201, answer.body
    assert balance_of(alice, assets["USDT"]) == (D("90"), D("10"))


def test_fees_overview(live_api: str, alice: User, btc_usdt) -> None:
    answer = _client(live_api, alice).request("GET", "/api/v1/fees")
    assert answer.status == 200, answer.body
    body = answer.body
    assert (body["tier"], body["volume_30d"], body["reference_asset"]) == (None, "0", "USDT")
    (market,) = body["markets"]
    assert market == {
        "market": "BTC-USDT",
        "maker_fee": "0.001",
        "taker_fee": "0.002",
        "your_maker_fee": "0.001",
        "your_taker_fee": "0.002",
        "quote_volume_30d": "0",
        "trade_count_30d": 0,
    }


def test_volume_report_and_its_bad_input(live_api, alice, btc_usdt) -> None:
    client = _client(live_api, alice)
    today = local_today()
    start = (today - timedelta(days=7)).isoformat()
    answer = client.request(
        "GET", "/api/v1/reports/volume", query={"start": start, "end": today.isoformat()}
    )
    assert answer.status == 200, answer.body
    assert answer.body["results"] == [
        {
            "market": "BTC-USDT",
            "base_volume": "0.00000000",
            "quote_volume": "0.000000",
            "trade_count": 0,
            "fees_paid": "0.000000",
        }
    ]
    one = client.request(
        "GET",
        "/api/v1/reports/volume",
        query={"start": start, "end": today.isoformat(), "market": "BTC-USDT"},
    )
    assert [r["market"] for r in one.body["results"]] == ["BTC-USDT"]
    for query, code in [
        ({"start": start}, "parameter_invalid"),
        ({"start": "2026-13-01", "end": start}, "parameter_invalid"),
        ({"start": "20260101", "end": start}, "parameter_invalid"),
        ({"start": today.isoformat(), "end": start}, "range_invalid"),
        ({"start": "1900-01-01", "end": "2899-01-01"}, "range_too_long"),
        ({"start": "1800-01-01", "end": start}, "date_invalid"),
        ({"start": start, "end": start, "calendar": "mayan"}, "calendar_invalid"),
        ({"start": start, "end": start, "market": "NOPE-X"}, "market_not_found"),
    ]:
        bad = client.request("GET", "/api/v1/reports/volume", query=query)
        assert bad.status in (400, 404), (query, bad.body)
        assert bad.code == code, (query, bad.body)


def test_api_key_self_info(live_api: str, alice: User) -> None:
    client = _client(live_api, alice)
    answer = client.request("GET", "/api/v1/api-key")
    assert answer.status == 200, answer.body
    assert answer.body["key"] == client.key
    assert answer.body["scopes"] == {"read": True, "trade": True, "withdraw": False}
    assert answer.body["rate_limits"]["orders_per_10s"] > 0
    assert "secret" not in str(answer.body).lower()
    session = session_of(live_api, alice).request("GET", "/api/v1/api-key")
    assert (session.status, session.code) == (400, "api_key_required")
