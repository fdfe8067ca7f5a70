"""Audit rows carry the acting user's IP: views pass `actor_context(request)` to services.

Services never see the request; the IP reaches them as `context=ActorContext(...)`. Through
the web pages (Django's test client, REMOTE_ADDR set per request) and directly through each
service that audits.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from accounts.errors import DomainError
from accounts.models import AuditLog, User
from accounts.services.apikeys import create_api_key, staff_revoke_api_key
from accounts.services.audit import ActorContext
from accounts.services.deposits import credit_deposit
from accounts.services.twofactor import verify_totp_code
from accounts.services.users import set_frozen, set_kyc_level
from accounts.services.withdrawals import (
    approve_withdrawal,
    complete_withdrawal,
    reject_withdrawal,
    request_withdrawal,
)
from markets.services import halt_market, update_market_rules
from tests.accounts.web_support import enable_totp, wrong_code
from tests.conftest import fund
from tests.trading.conftest import make_market

CLIENT_IP = "198.51.100.77"
STAFF_IP = "2001:db8::7"


def _row(action: str) -> tuple[User | None, str | None]:
    row = AuditLog.objects.get(action=action)
    return row.actor, row.ip_address


@pytest.fixture
def alice_client(client: Client, alice: User) -> Client:
    client.force_login(alice)
    return client


@pytest.mark.django_db
def test_key_created_on_the_page_is_audited_with_the_client_ip(alice_client, alice):
    response = alice_client.post(
        reverse("api_keys"),
        {"key-label": "bot", "key-key_type": "hmac", "key-can_read": "on"},
        REMOTE_ADDR=CLIENT_IP,
    )

    assert response.status_code == 200
    assert _row("api_key.created") == (alice, CLIENT_IP)


@pytest.mark.django_db
def test_key_revoked_on_the_page_is_audited_with_the_client_ip(alice_client, alice):
    created = create_api_key(user=alice, label="bot")

    response = alice_client.post(
        reverse("api_key_revoke", args=[created.api_key.pk]), REMOTE_ADDR=CLIENT_IP
    )

    assert response.status_code == 302
    assert _row("api_key.revoked") == (alice, CLIENT_IP)


@pytest.mark.django_db
def test_wrong_withdrawal_code_on_the_wallet_is_audited_with_the_client_ip(
    alice_client, alice, usdt
):
    secret = enable_totp(alice)
    data = {
        "withdraw-asset": str(usdt.pk),
        "withdraw-amount": "20",
        "withdraw-address": "TXYZ",
        "withdraw-totp_code": wrong_code(secret),
    }

    response = alice_client.post(reverse("wallet"), data, REMOTE_ADDR=CLIENT_IP)

    assert response.status_code == 400
    assert _row("auth.totp_failed") == (alice, CLIENT_IP)


@pytest.mark.django_db
def test_totp_failure_without_context_has_no_ip(alice):
    secret = enable_totp(alice)

    with pytest.raises(DomainError):
        verify_totp_code(user=alice, code=wrong_code(secret))

    assert _row("auth.totp_failed") == (alice, None)


@pytest.mark.django_db
def test_staff_user_decisions_carry_the_context_ip(staff, alice):
    context = ActorContext(staff, STAFF_IP)

    set_kyc_level(staff=staff, user=alice, level=2, context=context)
    set_frozen(staff=staff, user=alice, is_frozen=True, context=context)

    assert _row("user.kyc_level_changed") == (staff, STAFF_IP)
    assert _row("user.frozen") == (staff, STAFF_IP)


@pytest.mark.django_db
def test_staff_money_decisions_carry_the_context_ip(staff, alice_2fa, bob, usdt, limits):
    context = ActorContext(staff, STAFF_IP)
    credit_deposit(
        user=alice_2fa,
        asset=usdt,
        amount=Decimal("500"),
        external_ref="tx-1",
        staff=staff,
        context=context,
    )
    first = request_withdrawal(user=alice_2fa, asset=usdt, amount=Decimal("100"), address="a1")
    second = request_withdrawal(user=alice_2fa, asset=usdt, amount=Decimal("100"), address="a2")

    approve_withdrawal(staff=staff, withdrawal_id=first.pk, context=context)
    complete_withdrawal(staff=staff, withdrawal_id=first.pk, external_txid="0xabc", context=context)
    reject_withdrawal(staff=staff, withdrawal_id=second.pk, reason="sanctions", context=context)

    for action in (
        "deposit.credited",
        "withdrawal.approved",
        "withdrawal.completed",
        "withdrawal.rejected",
    ):
        assert _row(action) == (staff, STAFF_IP), action


@pytest.mark.django_db
def test_staff_revocation_carries_the_context_ip(staff, alice):
    created = create_api_key(user=alice, label="bot")

    staff_revoke_api_key(
        staff=staff, api_key_id=created.api_key.pk, context=ActorContext(staff, STAFF_IP)
    )

    assert _row("api_key.revoked") == (staff, STAFF_IP)


@pytest.mark.django_db
def test_market_changes_carry_the_context_ip(staff, assets):
    market = make_market("BTC-USDT", assets["BTC"], assets["USDT"])
    context = ActorContext(staff, STAFF_IP)

    halt_market(market=market, actor=staff, reason="incident", context=context)
    update_market_rules(
        market=market, actor=staff, changes={"min_notional": Decimal("10")}, context=context
    )

    assert _row("market.status") == (staff, STAFF_IP)
    assert _row("market.rules") == (staff, STAFF_IP)


@pytest.mark.django_db
def test_system_context_audits_without_an_ip(staff, alice, usdt):
    fund(alice, usdt, "1")
    set_frozen(staff=staff, user=alice, is_frozen=True, context=ActorContext.system())

    assert _row("user.frozen") == (staff, None)
