"""Withdrawals: request with hold, staff approve / complete / reject, limits, 2FA, freeze."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.errors import DomainError
from accounts.models import (
    Asset,
    AuditLog,
    Balance,
    BalanceKind,
    KycLevel,
    Withdrawal,
    WithdrawalLimit,
    WithdrawalStatus,
)
from accounts.selectors import get_withdrawal_for_user
from accounts.services.users import set_frozen, set_kyc_level
from accounts.services.withdrawals import (
    approve_withdrawal,
    complete_withdrawal,
    reject_withdrawal,
    request_withdrawal,
)
from tests.accounts.conftest import enable_totp
from tests.conftest import balance_of, fund
from tests.conftest import ledger_snapshot as snapshot

ADDRESS = "TXYZ1234567890abcdef"


def _system(asset: Asset, kind: str) -> Decimal:
    row = Balance.objects.filter(user__isnull=True, kind=kind, asset=asset).first()
    return row.available if row else Decimal("0")


def _request(user, asset, amount="100"):
    return request_withdrawal(user=user, asset=asset, amount=Decimal(amount), address=ADDRESS)


@pytest.mark.django_db
def test_request_locks_amount_plus_fee(alice_2fa, usdt, limits):
    fund(alice_2fa, usdt, "500")

    withdrawal = _request(alice_2fa, usdt, "100")

    assert (withdrawal.status, withdrawal.amount, withdrawal.fee) == (
        WithdrawalStatus.PENDING,
        Decimal("100"),
        Decimal("1"),
    )
    assert balance_of(alice_2fa, usdt) == (Decimal("399"), Decimal("101"))


@pytest.mark.django_db
def test_approve_then_complete_pays_out_and_books_the_fee(alice_2fa, staff, usdt, limits):
    fund(alice_2fa, usdt, "500")
    withdrawal = _request(alice_2fa, usdt, "100")

    approved = approve_withdrawal(staff=staff, withdrawal_id=withdrawal.pk)
    completed = complete_withdrawal(staff=staff, withdrawal_id=withdrawal.pk, external_txid="0xabc")

    assert (approved.status, approved.decided_by_id) == (WithdrawalStatus.APPROVED, staff.pk)
    assert (completed.status, completed.external_txid) == (WithdrawalStatus.COMPLETED, "0xabc")
    assert completed.completed_at is not None
    assert balance_of(alice_2fa, usdt) == (Decimal("399"), Decimal("0"))
    assert _system(usdt, BalanceKind.FEES) == Decimal("1")
    assert _system(usdt, BalanceKind.EXTERNAL) == Decimal("-400")  # -500 in, +100 out
    assert list(AuditLog.objects.order_by("pk").values_list("action", "actor_id")) == [
        ("withdrawal.approved", staff.pk),
        ("withdrawal.completed", staff.pk),
    ]


@pytest.mark.parametrize("_case", ["pending", "approved"])
@pytest.mark.django_db
def test_reject_releases_the_whole_hold(alice_2fa, staff, usdt, limits, _case):
    fund(alice_2fa, usdt, "500")
    withdrawal = _request(alice_2fa, usdt, "100")
    if _case == "approved":
        approve_withdrawal(staff=staff, withdrawal_id=withdrawal.pk)

    rejected = reject_withdrawal(
        staff=staff, withdrawal_id=withdrawal.pk, reason="address on a list"
    )

    assert (rejected.status, rejected.reject_reason) == (
        WithdrawalStatus.REJECTED,
        "address on a list",
    )
    assert balance_of(alice_2fa, usdt) == (Decimal("500"), Decimal("0"))
    audit = AuditLog.objects.get(action="withdrawal.rejected")
    assert audit.details == {"reason": "address on a list"}


@pytest.mark.parametrize(
    ("_case", "setup", "decide"),
    [
        ("approve twice", ["approve"], "approve"),
        ("complete a pending one", [], "complete"),
        ("complete twice", ["approve", "complete"], "complete"),
        ("reject a completed one", ["approve", "complete"], "reject"),
        ("reject twice", ["reject"], "reject"),
        ("approve a rejected one", ["reject"], "approve"),
    ],
)
@pytest.mark.django_db
def test_a_decision_applies_at_most_once(alice_2fa, staff, usdt, limits, _case, setup, decide):
    fund(alice_2fa, usdt, "500")
    withdrawal = _request(alice_2fa, usdt, "100")
    actions = {
        "approve": lambda: approve_withdrawal(staff=staff, withdrawal_id=withdrawal.pk),
        "complete": lambda: complete_withdrawal(
            staff=staff, withdrawal_id=withdrawal.pk, external_txid="0x1"
        ),
        "reject": lambda: reject_withdrawal(staff=staff, withdrawal_id=withdrawal.pk, reason="no"),
    }
    for step in setup:
        actions[step]()
    before = snapshot()
    audits = AuditLog.objects.count()

    with pytest.raises(DomainError) as caught:
        actions[decide]()

    assert (caught.value.code, caught.value.field) == ("withdrawal_invalid_state", "withdrawal_id")
    assert snapshot() == before
    assert AuditLog.objects.count() == audits


@pytest.mark.django_db
def test_decisions_need_staff(alice_2fa, mallory, usdt, limits):
    fund(alice_2fa, usdt, "500")
    withdrawal = _request(alice_2fa, usdt, "100")
    before = snapshot()

    with pytest.raises(DomainError) as caught:
        approve_withdrawal(staff=mallory, withdrawal_id=withdrawal.pk)

    assert caught.value.code == "permission_denied"
    assert snapshot() == before


@pytest.mark.django_db
def test_unknown_withdrawal_id_is_not_found(staff, usdt):
    with pytest.raises(DomainError) as caught:
        approve_withdrawal(staff=staff, withdrawal_id=424242)

    assert (caught.value.code, caught.value.field) == ("not_found", "withdrawal_id")


@pytest.mark.django_db
def test_another_users_withdrawal_looks_missing(alice_2fa, mallory, usdt, limits):
    fund(alice_2fa, usdt, "500")
    withdrawal = _request(alice_2fa, usdt, "100")

    with pytest.raises(DomainError) as caught:
        get_withdrawal_for_user(user=mallory, withdrawal_id=withdrawal.pk)

    assert (caught.value.code, caught.value.field) == ("not_found", "withdrawal_id")
    assert get_withdrawal_for_user(user=alice_2fa, withdrawal_id=withdrawal.pk) == withdrawal


@pytest.mark.django_db
def test_daily_limit_follows_the_kyc_level(alice_2fa, staff, usdt, limits):
    fund(alice_2fa, usdt, "5000")
    _request(alice_2fa, usdt, "600")
    before = snapshot()

    with pytest.raises(DomainError) as caught:
        _request(alice_2fa, usdt, "400.000001")  # 600 + 400.000001 > 1,000 at level 0

    assert (caught.value.code, caught.value.field) == ("withdrawal_limit_exceeded", "amount")
    assert snapshot() == before
    _request(alice_2fa, usdt, "400")  # exactly the limit is allowed

    set_kyc_level(staff=staff, user=alice_2fa, level=KycLevel.IDENTITY)
    _request(alice_2fa, usdt, "2000")
    assert Withdrawal.objects.filter(user=alice_2fa).count() == 3


@pytest.mark.django_db
def test_rejected_and_older_withdrawals_do_not_count_towards_today(alice_2fa, staff, usdt, limits):
    fund(alice_2fa, usdt, "5000")
    rejected = _request(alice_2fa, usdt, "900")
    reject_withdrawal(staff=staff, withdrawal_id=rejected.pk, reason="test")
    old = _request(alice_2fa, usdt, "900")
    Withdrawal.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=1))

    _request(alice_2fa, usdt, "1000")

    assert Withdrawal.objects.filter(user=alice_2fa).count() == 3


@pytest.mark.django_db
def test_no_limit_row_means_no_withdrawal(alice_2fa, usdt, limits):
    fund(alice_2fa, usdt, "500")
    WithdrawalLimit.objects.filter(asset=usdt, kyc_level=KycLevel.EMAIL_VERIFIED).delete()
    before = snapshot()

    with pytest.raises(DomainError) as caught:
        _request(alice_2fa, usdt, "10")

    assert caught.value.code == "withdrawal_limit_exceeded"
    assert snapshot() == before


@pytest.mark.django_db
def test_frozen_user_cannot_withdraw(alice_2fa, staff, usdt, limits):
    fund(alice_2fa, usdt, "500")
    set_frozen(staff=staff, user=alice_2fa, is_frozen=True)
    before = snapshot()

    with pytest.raises(DomainError) as caught:
        _request(alice_2fa, usdt, "100")

    assert caught.value.code == "account_frozen"
    assert snapshot() == before
    assert list(AuditLog.objects.values_list("action", flat=True)) == ["user.frozen"]

    set_frozen(staff=staff, user=alice_2fa, is_frozen=False)
    assert _request(alice_2fa, usdt, "100").status == WithdrawalStatus.PENDING


@pytest.mark.django_db
def test_two_factor_is_required(alice, usdt, limits):
    fund(alice, usdt, "500")
    before = snapshot()

    with pytest.raises(DomainError) as caught:
        _request(alice, usdt, "100")

    assert caught.value.code == "two_factor_required"
    assert snapshot() == before
    enable_totp(alice)
    assert _request(alice, usdt, "100").status == WithdrawalStatus.PENDING


@pytest.mark.parametrize(
    ("_case", "amount", "address", "code", "field"),
    [
        ("negative", "-100", ADDRESS, "amount_not_positive", "amount"),
        ("zero", "0", ADDRESS, "amount_not_positive", "amount"),
        ("NaN", "NaN", ADDRESS, "amount_invalid", "amount"),
        ("Infinity", "Infinity", ADDRESS, "amount_invalid", "amount"),
        ("exponent", "1E2", ADDRESS, "amount_invalid", "amount"),
        ("too precise for USDT", "100.0000001", ADDRESS, "amount_too_precise", "amount"),
        ("10,000 characters", "1" * 10_000, ADDRESS, "amount_too_long", "amount"),
        ("below the minimum", "9.999999", ADDRESS, "amount_below_minimum", "amount"),
        ("more than the balance", "499.000001", ADDRESS, "insufficient_funds", "amount"),
        ("empty address", "100", "", "address_invalid", "address"),
        ("address with a space", "100", "T XYZ", "address_invalid", "address"),
        ("address with bidi override", "100", "TXYZ\u202e", "address_invalid", "address"),
        ("10,000-character address", "100", "T" * 10_000, "address_invalid", "address"),
    ],
)
@pytest.mark.django_db
def test_bad_input_is_refused_and_changes_nothing(
    alice_2fa, usdt, limits, _case, amount, address, code, field
):
    fund(alice_2fa, usdt, "500")
    before = snapshot()

    with pytest.raises(DomainError) as caught:
        request_withdrawal(user=alice_2fa, asset=usdt, amount=amount, address=address)

    assert (caught.value.code, caught.value.field) == (code, field)
    assert snapshot() == before


@pytest.mark.parametrize(
    ("_case", "change", "code"),
    [
        ("unknown asset", "ghost", "asset_unknown"),
        ("disabled asset", "inactive", "asset_inactive"),
    ],
)
@pytest.mark.django_db
def test_unavailable_asset_is_refused(alice_2fa, usdt, limits, _case, change, code):
    fund(alice_2fa, usdt, "500")
    asset = usdt
    if change == "ghost":
        asset = Asset(pk=999_999, code="GHOST", name="Ghost", decimals=2)
    else:
        Asset.objects.filter(pk=usdt.pk).update(is_active=False)
    before = snapshot()

    with pytest.raises(DomainError) as caught:
        _request(alice_2fa, asset, "100")

    assert (caught.value.code, caught.value.field) == (code, "asset")
    assert snapshot() == before


@pytest.mark.parametrize(
    ("_case", "kwargs", "code", "field"),
    [
        ("empty reason", {"reason": "   "}, "reason_invalid", "reason"),
        ("10,000-character reason", {"reason": "x" * 10_000}, "reason_invalid", "reason"),
    ],
)
@pytest.mark.django_db
def test_bad_reject_reason_changes_nothing(
    alice_2fa, staff, usdt, limits, _case, kwargs, code, field
):
    fund(alice_2fa, usdt, "500")
    withdrawal = _request(alice_2fa, usdt, "100")
    before = snapshot()

    with pytest.raises(DomainError) as caught:
        reject_withdrawal(staff=staff, withdrawal_id=withdrawal.pk, **kwargs)

    assert (caught.value.code, caught.value.field) == (code, field)
    assert snapshot() == before


@pytest.mark.django_db
def test_kyc_level_and_freeze_are_validated_and_audited(alice, staff, mallory):
    with pytest.raises(DomainError) as caught:
        set_kyc_level(staff=staff, user=alice, level=7)
    assert (caught.value.code, caught.value.field) == ("kyc_level_invalid", "level")
    with pytest.raises(DomainError) as caught:
        set_kyc_level(staff=mallory, user=alice, level=KycLevel.FULL)
    assert caught.value.code == "permission_denied"

    set_kyc_level(staff=staff, user=alice, level=KycLevel.FULL)

    alice.refresh_from_db()
    assert alice.kyc_level == KycLevel.FULL
    audit = AuditLog.objects.get()
    assert (audit.action, audit.actor_id, audit.details) == (
        "user.kyc_level_changed",
        staff.pk,
        {"from": 0, "to": 2},
    )
