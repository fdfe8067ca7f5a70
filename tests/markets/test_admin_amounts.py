"""The admin shows money with each asset's own decimals (BTC 8, USDT 6), as rendered HTML,
never the database column's 18 places; staff cancels go through cancel_order."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import (
    Asset,
    AuditLog,
    Balance,
    Deposit,
    JournalEntry,
    KycLevel,
    Posting,
    User,
    Withdrawal,
    WithdrawalLimit,
)
from accounts.services.withdrawals import request_withdrawal
from markets.models import Market
from tests.accounts.conftest import enable_totp
from tests.conftest import fund
from tests.trading.conftest import make_market
from trading.models import Order, OrderSide, OrderStatus, OrderType, OutboxEntry, Trade

pytestmark = pytest.mark.django_db
D = Decimal
COLUMN_PLACES = "0" * 18  # how a DecimalField(36, 18) value prints unformatted


@pytest.fixture
def market(assets: dict[str, Asset]) -> Market:
    return make_market("BTC-USDT", assets["BTC"], assets["USDT"], last_price=D("60000"))


def _order(user: User, market: Market, side: str) -> Order:
    return Order.objects.create(
        user=user,
        market=market,
        client_order_id=f"{side}-1",
        side=side,
        order_type=OrderType.LIMIT,
        price=D("60000"),
        quantity=D("0.5"),
        filled_quantity=D("0.5"),
        filled_quote=D("30000"),
        hold_asset=market.quote if side == OrderSide.BUY else market.base,
        hold_amount=D("30000") if side == OrderSide.BUY else D("0.5"),
        hold_remaining=D("0"),
        status=OrderStatus.FILLED,
        maker_fee_rate=market.maker_fee,
        taker_fee_rate=market.taker_fee,
    )


def _page(client: Client, name: str, *args: int) -> str:
    response = client.get(reverse(f"admin:{name}", args=args))
    assert response.status_code == 200, name
    return response.content.decode()


def _readonly(value: str) -> str:
    return f'<div class="readonly">{value}</div>'


def test_balances_postings_and_journal_entries(
    staff_client: Client, alice: User, assets: dict[str, Asset]
) -> None:
    fund(alice, assets["USDT"], "60000")
    fund(alice, assets["BTC"], "0.5")
    usdt = Balance.objects.get(user=alice, asset=assets["USDT"])
    posting = Posting.objects.get(balance=usdt)
    entry = posting.entry

    balances = _page(staff_client, "accounts_balance_changelist")
    postings = _page(staff_client, "accounts_posting_changelist")

    assert "60000.000000" in balances
    assert "0.50000000" in balances
    assert "60000.000000" in postings
    assert "0.50000000" in postings
    for body in (balances, postings):
        assert COLUMN_PLACES not in body
    balance_page = _page(staff_client, "accounts_balance_change", usdt.pk)
    assert _readonly("60000.000000") in balance_page
    assert _readonly("0.000000") in balance_page  # locked
    assert _readonly("60000.000000") in _page(staff_client, "accounts_posting_change", posting.pk)
    entry_page = _page(staff_client, "accounts_journalentry_change", entry.pk)
    # The postings' amount column; each row's caption is Posting.__str__, the raw column.
    assert re.search(r'"field-amount_amount">\s*<p>60000\.000000</p>', entry_page)
    assert JournalEntry.objects.count() == 2


def test_deposits_and_withdrawals(
    staff_client: Client, alice: User, assets: dict[str, Asset]
) -> None:
    btc = assets["BTC"]
    fund(alice, btc, "2")
    enable_totp(alice)
    btc.withdrawal_fee = D("0.0001")
    btc.save()
    WithdrawalLimit.objects.create(
        asset=btc, kyc_level=KycLevel.EMAIL_VERIFIED, daily_amount=D("10")
    )
    withdrawal = request_withdrawal(
        user=alice, asset=btc, amount=D("0.5"), address="bc1qdestination000"
    )
    deposit = Deposit.objects.get()

    deposits = _page(staff_client, "accounts_deposit_changelist")
    withdrawals = _page(staff_client, "accounts_withdrawal_changelist")

    assert "2.00000000" in deposits
    assert "0.50000000" in withdrawals
    assert "0.00010000" in withdrawals
    for body in (deposits, withdrawals):
        assert COLUMN_PLACES not in body
    assert _readonly("2.00000000") in _page(staff_client, "accounts_deposit_change", deposit.pk)
    withdrawal_page = _page(staff_client, "accounts_withdrawal_change", withdrawal.pk)
    assert _readonly("0.50000000") in withdrawal_page
    assert _readonly("0.00010000") in withdrawal_page
    decide = staff_client.post(
        reverse("admin:accounts_withdrawal_changelist"),
        {"action": "reject_selected", "_selected_action": [str(withdrawal.pk)]},
    ).content.decode()
    assert "0.50000000 BTC" in decide
    assert Withdrawal.objects.get().status == "pending"


def test_orders_trades_and_markets(
    staff_client: Client, alice: User, bob: User, market: Market
) -> None:
    buy, sell = _order(alice, market, OrderSide.BUY), _order(bob, market, OrderSide.SELL)
    trade = Trade.objects.create(
        market=market,
        seq=1,
        maker_order=sell,
        taker_order=buy,
        buy_order=buy,
        sell_order=sell,
        price=D("60000"),
        quantity=D("0.5"),
        quote_quantity=D("30000"),
        taker_side=OrderSide.BUY,
        maker_fee=D("30"),
        taker_fee=D("60"),
    )

    orders = _page(staff_client, "trading_order_changelist")
    trades = _page(staff_client, "trading_trade_changelist")
    markets = _page(staff_client, "markets_market_changelist")

    assert "60000.000000" in orders
    assert "0.50000000" in orders
    assert "60000.000000" in trades
    assert "0.50000000" in trades
    assert "60000.000000" in markets
    assert "0.010000" in markets
    for body in (orders, trades, markets):
        assert COLUMN_PLACES not in body
    order_page = _page(staff_client, "trading_order_change", buy.pk)
    assert _readonly("30000.000000") in order_page  # hold, in USDT
    assert _readonly("0.50000000") in order_page  # quantity, in BTC
    trade_page = _page(staff_client, "trading_trade_change", trade.pk)
    assert _readonly("30000.000000") in trade_page  # quote quantity
    assert _readonly("60.000000") in trade_page  # taker fee, in USDT


def test_staff_cancel_goes_through_cancel_order_with_the_staff_ip(
    staff_client: Client, staff: User, alice: User, bob: User, market: Market
) -> None:
    filled = _order(bob, market, OrderSide.SELL)
    open_order = _order(alice, market, OrderSide.BUY)
    Order.objects.filter(pk=open_order.pk).update(
        status=OrderStatus.NEW, filled_quantity=0, filled_quote=0
    )

    response = staff_client.post(
        reverse("admin:trading_order_changelist"),
        {"action": "cancel_selected", "_selected_action": [filled.pk, open_order.pk]},
        follow=True,
    )

    shown = [str(m) for m in response.context["messages"]]
    assert shown[0] == "1 cancel request(s) sent to the engine."
    assert shown[1].startswith(f"#{filled.pk}: ")
    assert "already filled" in shown[1]
    row = AuditLog.objects.get(action="order.cancel")
    assert (row.actor, row.target_id, row.ip_address) == (staff, str(open_order.pk), "127.0.0.1")
    assert OutboxEntry.objects.filter(market=market).count() == 1
