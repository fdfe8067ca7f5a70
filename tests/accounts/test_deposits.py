"""credit_deposit: exactly once per (asset, external reference), audited when staff credits."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.errors import DepositConflict, DomainError
from accounts.models import Asset, AuditLog, Balance, BalanceKind, Deposit, EntryKind
from accounts.services.deposits import credit_deposit
from tests.conftest import balance_of
from tests.conftest import ledger_snapshot as snapshot


def _external(asset: Asset) -> Decimal:
    return Balance.objects.get(user__isnull=True, kind=BalanceKind.EXTERNAL, asset=asset).available


@pytest.mark.django_db
def test_credit_posts_external_to_user(alice, usdt):
    deposit = credit_deposit(user=alice, asset=usdt, amount=Decimal("250.5"), external_ref="tx-1")

    assert balance_of(alice, usdt) == (Decimal("250.5"), Decimal("0"))
    assert _external(usdt) == Decimal("-250.5")
    assert (deposit.user_id, deposit.amount, deposit.external_ref) == (
        alice.pk,
        Decimal("250.5"),
        "tx-1",
    )
    assert deposit.entry.kind == EntryKind.DEPOSIT
    assert sorted(deposit.entry.postings.values_list("amount", flat=True)) == [
        Decimal("-250.5"),
        Decimal("250.5"),
    ]
    assert AuditLog.objects.count() == 0


@pytest.mark.django_db
def test_repeat_returns_the_stored_deposit_and_moves_nothing(alice, usdt):
    first = credit_deposit(user=alice, asset=usdt, amount=Decimal("10"), external_ref="tx-2")
    before = snapshot()

    again = credit_deposit(user=alice, asset=usdt, amount=Decimal("10.000"), external_ref="tx-2")

    assert again.pk == first.pk
    assert snapshot() == before
    assert balance_of(alice, usdt) == (Decimal("10"), Decimal("0"))


@pytest.mark.django_db
def test_same_reference_on_another_asset_is_another_deposit(alice, usdt, btc):
    credit_deposit(user=alice, asset=usdt, amount=Decimal("10"), external_ref="tx-3")
    credit_deposit(user=alice, asset=btc, amount=Decimal("1"), external_ref="tx-3")

    assert Deposit.objects.count() == 2


@pytest.mark.parametrize(
    ("_case", "who", "amount"),
    [("another user", "bob", "10"), ("another amount", "alice", "11")],
)
@pytest.mark.django_db
def test_repeat_with_different_details_is_a_conflict(alice, bob, usdt, _case, who, amount):
    credit_deposit(user=alice, asset=usdt, amount=Decimal("10"), external_ref="tx-4")
    before = snapshot()

    with pytest.raises(DepositConflict) as caught:
        credit_deposit(
            user={"alice": alice, "bob": bob}[who],
            asset=usdt,
            amount=Decimal(amount),
            external_ref="tx-4",
        )

    assert (caught.value.code, caught.value.field) == ("deposit_conflict", "external_ref")
    assert snapshot() == before


@pytest.mark.django_db
def test_staff_credit_is_audited(alice, staff, usdt):
    deposit = credit_deposit(
        user=alice, asset=usdt, amount=Decimal("5"), external_ref="bank-77", staff=staff
    )

    audit = AuditLog.objects.get()
    assert (audit.actor_id, audit.action, audit.target_id) == (
        staff.pk,
        "deposit.credited",
        str(deposit.pk),
    )
    assert audit.details == {
        "user_id": alice.pk,
        "asset": "USDT",
        "amount": "5",
        "external_ref": "bank-77",
    }
    assert deposit.credited_by_id == staff.pk


@pytest.mark.parametrize(
    ("_case", "amount", "ref", "code", "field"),
    [
        ("negative", "-1", "r", "amount_not_positive", "amount"),
        ("zero", "0", "r", "amount_not_positive", "amount"),
        ("NaN", "NaN", "r", "amount_invalid", "amount"),
        ("Infinity", "Infinity", "r", "amount_invalid", "amount"),
        ("exponent", "1e3", "r", "amount_invalid", "amount"),
        ("too precise for USDT", "1.0000001", "r", "amount_too_precise", "amount"),
        ("10,000 characters", "9" * 10_000, "r", "amount_too_long", "amount"),
        ("float", 1.5, "r", "amount_invalid", "amount"),
        ("empty reference", "1", "", "external_ref_invalid", "external_ref"),
        ("reference with spaces", "1", "tx 1", "external_ref_invalid", "external_ref"),
        ("huge reference", "1", "x" * 10_000, "external_ref_invalid", "external_ref"),
    ],
)
@pytest.mark.django_db
def test_bad_input_is_refused_and_changes_nothing(alice, usdt, _case, amount, ref, code, field):
    credit_deposit(user=alice, asset=usdt, amount=Decimal("1"), external_ref="seed")
    before = snapshot()

    with pytest.raises(DomainError) as caught:
        credit_deposit(user=alice, asset=usdt, amount=amount, external_ref=ref)

    assert (caught.value.code, caught.value.field) == (code, field)
    assert snapshot() == before


@pytest.mark.django_db
def test_unknown_asset_is_refused(alice, usdt):
    before = snapshot()
    ghost = Asset(pk=999_999, code="GHOST", name="Ghost", decimals=2)

    with pytest.raises(DomainError) as caught:
        credit_deposit(user=alice, asset=ghost, amount=Decimal("1"), external_ref="g")

    assert (caught.value.code, caught.value.field) == ("asset_unknown", "asset")
    assert snapshot() == before


@pytest.mark.django_db
def test_non_staff_cannot_credit(alice, mallory, usdt):
    before = snapshot()

    with pytest.raises(DomainError) as caught:
        credit_deposit(
            user=mallory, asset=usdt, amount=Decimal("1000"), external_ref="m", staff=mallory
        )

    assert caught.value.code == "permission_denied"
    assert snapshot() == before
