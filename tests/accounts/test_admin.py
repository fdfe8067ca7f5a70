"""The staff console: TOTP-gated entry through allauth, decisions through the services,
the books read-only, no secrets on screen."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import (
    ApiKey,
    Asset,
    AuditLog,
    Balance,
    Deposit,
    JournalEntry,
    KycLevel,
    User,
    Withdrawal,
    WithdrawalLimit,
    WithdrawalStatus,
)
from accounts.services.apikeys import create_api_key
from accounts.services.withdrawals import request_withdrawal
from tests.accounts.web_support import enable_totp, login_with_totp
from tests.conftest import fund

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse


@pytest.fixture
def staff_client(staff: User) -> Client:
    """A staff member signed in through allauth with their TOTP code."""
    enable_totp(staff)
    client = Client()
    login_with_totp(client, staff)
    return client


@pytest.fixture
def pending_withdrawal(alice: User, assets: dict[str, Asset]) -> Withdrawal:
    WithdrawalLimit.objects.create(
        asset=assets["BTC"], kyc_level=KycLevel.EMAIL_VERIFIED, daily_amount=Decimal("10")
    )
    fund(alice, assets["BTC"], "2")
    enable_totp(alice)
    return request_withdrawal(
        user=alice, asset=assets["BTC"], amount=Decimal("0.5"), address="bc1qdestination000"
    )


def run_action(
    client: Client, model: str, action: str, ids: list[int], **extra: str
) -> TestResponse:
    data = {"action": action, "_selected_action": [str(pk) for pk in ids], **extra}
    return client.post(reverse(f"admin:accounts_{model}_changelist"), data)


# --- users


@pytest.mark.django_db
def test_kyc_and_freeze_actions_go_through_the_services(
    staff_client: Client, staff: User, alice: User
) -> None:
    run_action(staff_client, "user", "set_kyc_identity", [alice.pk])
    run_action(staff_client, "user", "freeze", [alice.pk])

    alice.refresh_from_db()
    assert (alice.kyc_level, alice.is_frozen) == (KycLevel.IDENTITY, True)
    actions = list(
        AuditLog.objects.filter(actor=staff, target_id=str(alice.pk))
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["user.kyc_level_changed", "user.frozen"]


@pytest.mark.django_db
def test_staff_cannot_freeze_themselves(staff_client: Client, staff: User) -> None:
    response = run_action(staff_client, "user", "freeze", [staff.pk])

    assert response.status_code == 302
    staff.refresh_from_db()
    assert staff.is_frozen is False


@pytest.mark.django_db
def test_user_change_form_cannot_set_kyc_or_freeze(
    staff_client: Client, staff: User, alice: User
) -> None:
    url = reverse("admin:accounts_user_change", args=[alice.pk])
    response = staff_client.post(
        url,
        {
            "email": alice.email,
            "display_name": "Alice",
            "is_active": "on",
            "kyc_level": "2",
            "is_frozen": "on",
        },
    )

    assert response.status_code == 302
    alice.refresh_from_db()
    assert (alice.display_name, alice.kyc_level, alice.is_frozen) == ("Alice", 0, False)
    change = AuditLog.objects.get(action="admin.changed")
    assert (change.actor, change.target_id, change.ip_address) == (
        staff,
        str(alice.pk),
        "127.0.0.1",
    )


# --- deposits


@pytest.mark.django_db
def test_credit_deposit_page_calls_the_service(
    staff_client: Client, staff: User, alice: User, assets: dict[str, Asset]
) -> None:
    url = reverse("admin:accounts_deposit_credit")
    assert staff_client.get(url).status_code == 200

    response = staff_client.post(
        url,
        {
            "user": f"EX-{alice.pk:06d}",
            "asset": assets["USDT"].pk,
            "amount": "125.5",
            "external_ref": "bank-778",
        },
    )

    assert response.status_code == 302
    deposit = Deposit.objects.get()
    assert (deposit.user, deposit.amount, deposit.credited_by) == (alice, Decimal("125.5"), staff)
    assert Balance.objects.get(user=alice, asset=assets["USDT"]).available == Decimal("125.5")
    assert AuditLog.objects.filter(action="deposit.credited", actor=staff).count() == 1


@pytest.mark.django_db
def test_credit_deposit_with_bad_amount_shows_the_error_and_changes_nothing(
    staff_client: Client, alice: User, assets: dict[str, Asset]
) -> None:
    response = staff_client.post(
        reverse("admin:accounts_deposit_credit"),
        {
            "user": alice.email,
            "asset": assets["USDT"].pk,
            "amount": "1.0000001",
            "external_ref": "bank-779",
        },
    )

    assert response.status_code == 200
    assert "more than 6 decimal places" in response.content.decode()
    assert not Deposit.objects.exists()
    assert not JournalEntry.objects.exists()


# --- withdrawals


@pytest.mark.django_db
def test_withdrawal_queue_approve_then_complete(
    staff_client: Client, staff: User, pending_withdrawal: Withdrawal
) -> None:
    changelist = staff_client.get(
        reverse("admin:accounts_withdrawal_changelist") + "?status__exact=pending"
    )
    assert "bc1qdestination000" in changelist.content.decode()

    run_action(staff_client, "withdrawal", "approve_selected", [pending_withdrawal.pk])
    pending_withdrawal.refresh_from_db()
    assert pending_withdrawal.status == WithdrawalStatus.APPROVED

    form = run_action(staff_client, "withdrawal", "complete_selected", [pending_withdrawal.pk])
    assert f'name="txid_{pending_withdrawal.pk}"' in form.content.decode()
    run_action(
        staff_client,
        "withdrawal",
        "complete_selected",
        [pending_withdrawal.pk],
        apply="1",
        **{f"txid_{pending_withdrawal.pk}": "0xabc123"},
    )

    pending_withdrawal.refresh_from_db()
    assert (pending_withdrawal.status, pending_withdrawal.external_txid) == (
        WithdrawalStatus.COMPLETED,
        "0xabc123",
    )
    assert pending_withdrawal.decided_by == staff


@pytest.mark.django_db
def test_withdrawal_reject_releases_the_funds(
    staff_client: Client, alice: User, pending_withdrawal: Withdrawal
) -> None:
    form = run_action(staff_client, "withdrawal", "reject_selected", [pending_withdrawal.pk])
    assert 'name="reason"' in form.content.decode()

    run_action(
        staff_client,
        "withdrawal",
        "reject_selected",
        [pending_withdrawal.pk],
        apply="1",
        reason="Address failed screening",
    )

    pending_withdrawal.refresh_from_db()
    assert pending_withdrawal.status == WithdrawalStatus.REJECTED
    assert pending_withdrawal.reject_reason == "Address failed screening"
    balance = Balance.objects.get(user=alice, asset=pending_withdrawal.asset)
    assert (balance.available, balance.locked) == (Decimal("2"), Decimal("0"))


@pytest.mark.django_db
def test_complete_without_txid_changes_nothing(
    staff_client: Client, pending_withdrawal: Withdrawal
) -> None:
    run_action(staff_client, "withdrawal", "approve_selected", [pending_withdrawal.pk])

    run_action(staff_client, "withdrawal", "complete_selected", [pending_withdrawal.pk], apply="1")

    pending_withdrawal.refresh_from_db()
    assert pending_withdrawal.status == WithdrawalStatus.APPROVED


# --- API keys


@pytest.mark.django_db
def test_api_key_admin_revokes_and_never_shows_secrets(
    staff_client: Client, staff: User, alice: User
) -> None:
    created = create_api_key(user=alice, label="alice-bot")
    key = created.api_key

    for url in (
        reverse("admin:accounts_apikey_changelist"),
        reverse("admin:accounts_apikey_change", args=[key.pk]),
    ):
        body = staff_client.get(url).content.decode()
        assert "alice-bot" in body
        assert key.key[:8] in body
        assert key.key not in body
        assert created.secret not in body  # type: ignore[operator]

    run_action(staff_client, "apikey", "revoke_selected", [key.pk])

    key.refresh_from_db()
    assert key.revoked_at is not None
    row = AuditLog.objects.get(action="api_key.revoked")
    assert (row.actor, row.ip_address) == (staff, "127.0.0.1")


@pytest.mark.django_db
def test_authenticator_admin_hides_the_totp_secret(staff_client: Client, alice: User) -> None:
    secret = enable_totp(alice)
    authenticator = alice.authenticator_set.get(type="totp")  # type: ignore[attr-defined]

    body = staff_client.get(
        reverse("admin:mfa_authenticator_change", args=[authenticator.pk])
    ).content.decode()

    assert "alice@example.com" in body
    assert secret not in body


# --- the books are read-only


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["balance", "journalentry", "posting", "auditlog", "deposit"])
def test_books_cannot_be_added_to(staff_client: Client, model: str) -> None:
    assert staff_client.get(reverse(f"admin:accounts_{model}_add")).status_code == 403


@pytest.mark.django_db
def test_ledger_and_balances_are_view_only(
    staff_client: Client, alice: User, assets: dict[str, Asset]
) -> None:
    fund(alice, assets["BTC"], "1")
    balance = Balance.objects.get(user=alice)
    entry = JournalEntry.objects.get()

    entry_page = staff_client.get(reverse("admin:accounts_journalentry_change", args=[entry.pk]))
    response = staff_client.post(
        reverse("admin:accounts_balance_change", args=[balance.pk]), {"available": "1000"}
    )

    assert entry_page.status_code == 200
    assert "Posting" in entry_page.content.decode()
    assert response.status_code == 403
    balance.refresh_from_db()
    assert balance.available == Decimal("1")
    assert (
        staff_client.post(
            reverse("admin:accounts_balance_delete", args=[balance.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert ApiKey.objects.count() == 0


# --- staff decisions carry the staff member's IP (actor_context)


@pytest.mark.django_db
def test_staff_decisions_audit_the_staff_ip(
    staff_client: Client, staff: User, alice: User, pending_withdrawal: Withdrawal
) -> None:
    run_action(staff_client, "user", "set_kyc_identity", [alice.pk])
    run_action(staff_client, "user", "freeze", [alice.pk])
    run_action(staff_client, "withdrawal", "approve_selected", [pending_withdrawal.pk])
    staff_client.post(
        reverse("admin:accounts_deposit_credit"),
        {
            "user": alice.email,
            "asset": pending_withdrawal.asset.pk,
            "amount": "1",
            "external_ref": "bank-780",
        },
    )

    rows = AuditLog.objects.filter(
        action__in=(
            "user.kyc_level_changed",
            "user.frozen",
            "withdrawal.approved",
            "deposit.credited",
        )
    )
    assert sorted((row.action, row.actor, row.ip_address) for row in rows) == [
        ("deposit.credited", staff, "127.0.0.1"),
        ("user.frozen", staff, "127.0.0.1"),
        ("user.kyc_level_changed", staff, "127.0.0.1"),
        ("withdrawal.approved", staff, "127.0.0.1"),
    ]


@pytest.mark.django_db
def test_a_refused_row_is_reported_and_the_others_go_ahead(
    staff_client: Client, staff: User, alice: User
) -> None:
    response = run_action(staff_client, "user", "freeze", [staff.pk, alice.pk])

    alice.refresh_from_db()
    staff.refresh_from_db()
    assert (alice.is_frozen, staff.is_frozen) == (True, False)
    shown = [str(m) for m in response.wsgi_request._messages][-2:]  # type: ignore[attr-defined]
    assert shown[0] == "1 user(s) frozen."
    assert shown[1].startswith(f"{staff.email}: ")
