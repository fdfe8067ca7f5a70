"""Internal transfers between users."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.errors import DomainError
from accounts.models import Asset, EntryKind
from accounts.services.transfers import transfer
from accounts.services.users import set_frozen
from tests.conftest import balance_of, fund
from tests.conftest import ledger_snapshot as snapshot


@pytest.mark.django_db
def test_transfer_moves_available_funds(alice, bob, btc):
    fund(alice, btc, "1.5")

    entry = transfer(sender=alice, recipient=bob, asset=btc, amount=Decimal("0.25"), ref="gift-1")

    assert balance_of(alice, btc) == (Decimal("1.25"), Decimal("0"))
    assert balance_of(bob, btc) == (Decimal("0.25"), Decimal("0"))
    assert (entry.kind, entry.ref) == (EntryKind.TRANSFER, "gift-1")


@pytest.mark.parametrize(
    ("_case", "amount", "ref", "code", "field"),
    [
        ("more than available", "1.50000001", "r", "insufficient_funds", "amount"),
        ("negative", "-1", "r", "amount_not_positive", "amount"),
        ("zero", "0", "r", "amount_not_positive", "amount"),
        ("NaN", "NaN", "r", "amount_invalid", "amount"),
        ("Infinity", "Infinity", "r", "amount_invalid", "amount"),
        ("exponent trick", "1e-8", "r", "amount_invalid", "amount"),
        ("more decimals than BTC", "0.000000001", "r", "amount_too_precise", "amount"),
        ("10,000 characters", "0." + "1" * 9_998, "r", "amount_too_long", "amount"),
        ("empty ref", "1", "", "ref_invalid", "ref"),
        ("65-character ref", "1", "r" * 65, "ref_invalid", "ref"),
    ],
)
@pytest.mark.django_db
def test_bad_input_is_refused_and_changes_nothing(alice, bob, btc, _case, amount, ref, code, field):
    fund(alice, btc, "1.5")
    before = snapshot()

    with pytest.raises(DomainError) as caught:
        transfer(sender=alice, recipient=bob, asset=btc, amount=amount, ref=ref)

    assert (caught.value.code, caught.value.field) == (code, field)
    assert snapshot() == before


@pytest.mark.django_db
def test_transfer_to_oneself_is_refused(alice, btc):
    fund(alice, btc, "1")
    before = snapshot()

    with pytest.raises(DomainError) as caught:
        transfer(sender=alice, recipient=alice, asset=btc, amount=Decimal("1"), ref="self")

    assert (caught.value.code, caught.value.field) == ("recipient_invalid", "recipient")
    assert snapshot() == before


@pytest.mark.django_db
def test_frozen_sender_cannot_transfer_but_can_receive(alice, bob, staff, btc):
    fund(alice, btc, "1")
    fund(bob, btc, "1")
    set_frozen(staff=staff, user=alice, is_frozen=True)
    before = snapshot()

    with pytest.raises(DomainError) as caught:
        transfer(sender=alice, recipient=bob, asset=btc, amount=Decimal("1"), ref="out")

    assert caught.value.code == "account_frozen"
    assert snapshot() == before
    transfer(sender=bob, recipient=alice, asset=btc, amount=Decimal("1"), ref="in")
    assert balance_of(alice, btc) == (Decimal("2"), Decimal("0"))


@pytest.mark.django_db
def test_unknown_asset_is_refused(alice, bob, btc):
    fund(alice, btc, "1")
    before = snapshot()
    ghost = Asset(pk=999_999, code="GHOST", name="Ghost", decimals=8)

    with pytest.raises(DomainError) as caught:
        transfer(sender=alice, recipient=bob, asset=ghost, amount=Decimal("1"), ref="g")

    assert (caught.value.code, caught.value.field) == ("asset_unknown", "asset")
    assert snapshot() == before
