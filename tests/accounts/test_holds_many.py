"""accounts.services.holds: HoldBook and hold_funds_many, the accept batch's holds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction

from accounts.errors import InsufficientFunds
from accounts.models import EntryKind, JournalEntry, Posting
from accounts.services.holds import Hold, HoldBook, hold_funds_many
from tests.conftest import balance_of, fund
from tests.conftest import ledger_snapshot as snapshot

pytestmark = pytest.mark.django_db
D = Decimal


def test_each_hold_gets_its_entry_and_each_balance_one_update(alice, bob, usdt, order_holds):
    fund(alice, usdt, "100")
    fund(bob, usdt, "10")
    holds = [
        Hold(user_id=alice.pk, asset=usdt, amount=D("30"), ref="order:1"),
        Hold(user_id=bob.pk, asset=usdt, amount=D("10"), ref="order:2"),
        Hold(user_id=alice.pk, asset=usdt, amount=D("12.5"), ref="order:3"),
    ]

    with transaction.atomic():
        HoldBook.lock(user_assets=[(alice.pk, usdt.pk), (bob.pk, usdt.pk)])
        hold_funds_many(holds=holds)

    assert balance_of(alice, usdt) == (D("57.5"), D("42.5"))
    assert balance_of(bob, usdt) == (D("0"), D("10"))
    entries = list(JournalEntry.objects.filter(kind=EntryKind.ORDER_HOLD).order_by("pk"))
    assert [e.ref for e in entries] == ["order:1", "order:2", "order:3"]  # ids follow the holds
    for entry, hold in zip(entries, holds, strict=True):
        assert sorted(Posting.objects.filter(entry=entry).values_list("bucket", "amount")) == [
            ("available", -hold.amount),
            ("locked", hold.amount),
        ]


def test_a_short_single_hold_raises_and_the_transaction_rolls_back(alice, usdt, order_holds):
    fund(alice, usdt, "10")
    before = snapshot()

    with pytest.raises(InsufficientFunds) as caught, transaction.atomic():
        hold_funds_many(holds=[Hold(user_id=alice.pk, asset=usdt, amount=D("10.01"), ref="o:1")])

    assert caught.value.code == "insufficient_funds"
    assert "USDT" in caught.value.message
    assert snapshot() == before


def test_a_user_without_a_balance_row_is_short(bob, usdt, order_holds):
    with pytest.raises(InsufficientFunds), transaction.atomic():
        hold_funds_many(holds=[Hold(user_id=bob.pk, asset=usdt, amount=D("1"), ref="o:1")])

    assert not JournalEntry.objects.exists()


def test_the_book_reserves_in_order_and_refuses_what_does_not_fit(alice, bob, usdt):
    fund(alice, usdt, "100")

    with transaction.atomic():
        book = HoldBook.lock(user_assets=[(alice.pk, usdt.pk), (bob.pk, usdt.pk)])
        book.reserve(user_id=alice.pk, asset=usdt, amount=D("60"))
        with pytest.raises(InsufficientFunds):
            book.reserve(user_id=alice.pk, asset=usdt, amount=D("50"))
        book.reserve(user_id=alice.pk, asset=usdt, amount=D("40"))  # what is left still fits
        with pytest.raises(InsufficientFunds):
            book.reserve(user_id=bob.pk, asset=usdt, amount=D("1"))  # no row

    assert balance_of(alice, usdt) == (D("100"), D("0"))  # reserving writes nothing


@pytest.mark.parametrize(
    ("amount", "ref"),
    [(D("0"), "a"), (D("-1"), "a"), (D("NaN"), "a"), (D("1"), "x" * 65)],
)
def test_bad_holds_are_programming_errors(alice, usdt, amount, ref):
    fund(alice, usdt, "10")

    with pytest.raises(ValueError, match=r"amount|ref"), transaction.atomic():
        hold_funds_many(holds=[Hold(user_id=alice.pk, asset=usdt, amount=amount, ref=ref)])


def test_refs_must_be_distinct(alice, usdt):
    fund(alice, usdt, "10")
    hold = Hold(user_id=alice.pk, asset=usdt, amount=D("1"), ref="order:1")

    with pytest.raises(ValueError, match="distinct"), transaction.atomic():
        hold_funds_many(holds=[hold, hold])
    assert balance_of(alice, usdt) == (D("10"), D("0"))


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_nothing_is_held(alice, usdt):
    fund(alice, usdt, "10")

    with pytest.raises(RuntimeError, match="transaction"):
        hold_funds_many(holds=[Hold(user_id=alice.pk, asset=usdt, amount=D("1"), ref="o:1")])
    assert balance_of(alice, usdt) == (D("10"), D("0"))
