"""Markets: staff status changes and rule edits, audited, effective without a restart."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import AuditLog
from markets.errors import InvalidMarketRules, MarketNotFound
from markets.models import Market, MarketStatus
from markets.selectors import get_market, list_markets
from markets.services import halt_market, resume_market, set_market_status, update_market_rules
from tests.trading.conftest import make_market

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def market(assets) -> Market:
    return make_market("BTC-USDT", assets["BTC"], assets["USDT"], last_price=D("50000"))


def test_halt_and_resume_are_audited(market, staff):
    halt_market(market=market, actor=staff, reason="incident 7")
    assert get_market(symbol="BTC-USDT").status == MarketStatus.HALTED

    resume_market(market=market, actor=staff)
    assert get_market(symbol="btc-usdt").status == MarketStatus.TRADING

    logs = list(AuditLog.objects.filter(action="market.status").order_by("pk"))
    assert [(log.details["from"], log.details["to"]) for log in logs] == [
        ("trading", "halted"),
        ("halted", "trading"),
    ]
    assert logs[0].details["reason"] == "incident 7"


def test_setting_the_current_status_writes_nothing(market, staff):
    set_market_status(market=market, status=MarketStatus.TRADING, actor=staff)

    assert AuditLog.objects.count() == 0


def test_unknown_status_is_refused(market, staff):
    with pytest.raises(InvalidMarketRules):
        set_market_status(market=market, status="paused", actor=staff)


def test_rules_edit_is_audited_with_before_and_after(market, staff):
    update_market_rules(
        market=market, actor=staff, changes={"min_notional": D("10"), "taker_fee": D("0.003")}
    )

    fresh = get_market(market_id=market.pk)
    assert (fresh.min_notional, fresh.taker_fee) == (D("10"), D("0.003"))
    log = AuditLog.objects.get(action="market.rules")
    assert log.details["before"] == {
        "min_notional": "5.000000000000000000",
        "taker_fee": "0.002000",
    }
    assert log.details["after"] == {"min_notional": "10", "taker_fee": "0.003"}


@pytest.mark.parametrize(
    ("_case", "changes", "field"),
    [
        ("tick is fixed", {"tick_size": D("0.1")}, "tick_size"),
        ("lot is fixed", {"lot_size": D("0.1")}, "lot_size"),
        ("negative notional", {"min_notional": D("-1")}, "min_notional"),
        ("fee of 100%", {"maker_fee": D("1")}, "maker_fee"),
        ("min above max", {"min_quantity": D("5000")}, "max_quantity"),
        ("band of 100%", {"price_band_pct": D("100")}, "price_band_pct"),
    ],
)
def test_bad_rule_edits_are_refused(market, staff, _case, changes, field):
    with pytest.raises(InvalidMarketRules) as caught:
        update_market_rules(market=market, actor=staff, changes=changes)

    assert caught.value.field == field
    assert AuditLog.objects.count() == 0
    assert get_market(market_id=market.pk).updated_at == market.updated_at


@pytest.mark.parametrize("symbol", ["NOPE-USDT", "", "x" * 1000, None])
def test_unknown_symbol_is_not_found(market, symbol):
    with pytest.raises(MarketNotFound):
        get_market(symbol=symbol)


def test_list_markets_can_filter_tradable(market, assets, staff):
    other = make_market("ETH-USDT", assets["ETH"], assets["USDT"])
    halt_market(market=other, actor=staff)

    assert [m.symbol for m in list_markets()] == ["BTC-USDT", "ETH-USDT"]
    assert [m.symbol for m in list_markets(tradable_only=True)] == ["BTC-USDT"]


def test_admin_actions_halt_and_resume(staff_client, market, staff):
    client = staff_client
    url = reverse("admin:markets_market_changelist")

    response = client.post(url, {"action": "halt", "_selected_action": [market.pk]})
    assert response.status_code == 302, response
    assert response.url == url, response.url
    assert get_market(market_id=market.pk).status == MarketStatus.HALTED

    client.post(url, {"action": "resume", "_selected_action": [market.pk]})
    assert get_market(market_id=market.pk).status == MarketStatus.TRADING
    assert AuditLog.objects.filter(action="market.status", actor=staff).count() == 2


def test_admin_list_and_edit(staff_client, market):
    client = staff_client
    assert client.get(reverse("admin:markets_market_changelist")).status_code == 200
    url = reverse("admin:markets_market_change", args=[market.pk])
    page = client.get(url)
    assert page.status_code == 200

    data = {
        "min_quantity": "0.0001",
        "max_quantity": "1000",
        "min_notional": "25",
        "maker_fee": "0.001",
        "taker_fee": "0.002",
        "price_band_pct": "10",
        "status": "cancel_only",
    }
    response = client.post(url, data)

    assert response.status_code == 302, response.content[:2000]
    fresh = get_market(market_id=market.pk)
    assert (fresh.min_notional, fresh.status, fresh.tick_size) == (
        D("25"),
        MarketStatus.CANCEL_ONLY,
        D("0.01"),
    )
    assert set(
        AuditLog.objects.filter(action__startswith="market.").values_list("action", flat=True)
    ) == {
        "market.rules",
        "market.status",
    }


def test_non_staff_cannot_reach_the_admin(client, market, alice):
    client.force_login(alice)

    response = client.get(reverse("admin:markets_market_changelist"))

    assert response.status_code == 302
