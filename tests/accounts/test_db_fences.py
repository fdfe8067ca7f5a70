"""The database itself refuses illegal ledger writes that bypass the services (T04)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import F

from accounts.models import Balance, EntryKind, JournalEntry, Posting
from tests.conftest import fund
from tests.conftest import ledger_snapshot as snapshot


def _execute_checked(sql: str, params: list[object]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # run the deferred check now


def _refused(sql: str, params: list[object] | None = None) -> DatabaseError:
    with pytest.raises(DatabaseError) as caught:
        _execute_checked(sql, params or [])
    return caught.value


def _forge_entry(balance: Balance, amounts: list[str]) -> None:
    with transaction.atomic():
        entry = JournalEntry.objects.create(kind=EntryKind.TRANSFER, ref="forged")
        Posting.objects.bulk_create(
            Posting(
                entry=entry,
                balance=balance,
                asset_id=balance.asset_id,
                bucket="available",
                amount=Decimal(amount),
            )
            for amount in amounts
        )
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.fixture
def funded(alice, usdt):
    fund(alice, usdt, "100")
    return Balance.objects.get(user=alice, asset=usdt)


@pytest.mark.parametrize(
    ("_case", "sql", "message"),
    [
        (
            "negative available",
            "UPDATE accounts_balance SET available = -1 WHERE id = %s",
            "balance_available_gte_0",
        ),
        (
            "negative locked",
            "UPDATE accounts_balance SET locked = -0.000001 WHERE id = %s",
            "balance_locked_gte_0",
        ),
        (
            "change a posting",
            "UPDATE accounts_posting SET amount = 1000 WHERE balance_id = %s",
            "ledger_append_only",
        ),
        (
            "delete a posting",
            "DELETE FROM accounts_posting WHERE balance_id = %s",
            "ledger_append_only",
        ),
        (
            "change an entry",
            "UPDATE accounts_journalentry SET ref = 'x' WHERE id IN"
            " (SELECT entry_id FROM accounts_posting WHERE balance_id = %s)",
            "ledger_append_only",
        ),
        (
            "delete an entry",
            "DELETE FROM accounts_journalentry WHERE id IN"
            " (SELECT entry_id FROM accounts_posting WHERE balance_id = %s)",
            "ledger_append_only",
        ),
    ],
)
@pytest.mark.django_db
def test_raw_sql_is_refused(funded, _case, sql, message):
    before = snapshot()

    error = _refused(sql, [funded.pk])

    assert message in str(error)
    assert snapshot() == before


@pytest.mark.django_db
def test_orm_update_below_zero_is_refused(funded):
    before = snapshot()

    with pytest.raises(DatabaseError, match="balance_available_gte_0"), transaction.atomic():
        Balance.objects.filter(pk=funded.pk).update(available=F("available") - Decimal("100.01"))

    assert snapshot() == before


@pytest.mark.django_db
def test_orm_posting_update_and_delete_are_refused(funded):
    before = snapshot()

    with pytest.raises(DatabaseError, match="ledger_append_only"), transaction.atomic():
        Posting.objects.filter(balance=funded).update(amount=Decimal("1"))
    with pytest.raises(DatabaseError, match="ledger_append_only"), transaction.atomic():
        Posting.objects.filter(balance=funded).delete()

    assert snapshot() == before


@pytest.mark.parametrize(
    ("_case", "amounts", "message"),
    [
        ("one-sided", ["5"], "ledger_unbalanced"),
        ("off by one unit", ["5", "-4.999999"], "ledger_unbalanced"),
        ("no postings", [], "ledger_empty_entry"),
    ],
)
@pytest.mark.django_db
def test_unbalanced_entry_is_refused_at_commit(funded, _case, amounts, message):
    before = snapshot()

    with pytest.raises(DatabaseError, match=message):
        _forge_entry(funded, amounts)

    assert snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_balanced_postings_added_to_a_committed_entry_are_refused(alice, usdt):
    fund(alice, usdt, "100")  # committed: its entry belongs to a finished transaction
    before = snapshot()

    error = _refused(
        "INSERT INTO accounts_posting (entry_id, balance_id, asset_id, bucket, amount)"
        " SELECT entry_id, balance_id, asset_id, 'available', v.amount"
        " FROM accounts_posting, (VALUES (1), (-1)) AS v(amount)"
        " WHERE balance_id = (SELECT id FROM accounts_balance WHERE user_id = %s)",
        [alice.pk],
    )

    assert "ledger_closed_entry" in str(error)
    assert snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_one_posting_to_a_committed_entry_refuses_the_whole_statement(alice, usdt):
    """The fence is checked per statement: a batch insert with a single stray row (here
    postings to a fresh entry plus a pair to an entry committed earlier) writes nothing."""
    fund(alice, usdt, "100")
    balance = Balance.objects.get(user=alice, asset=usdt)
    old_entry = Posting.objects.get(balance=balance).entry_id
    before = snapshot()

    def mixed_insert() -> None:
        with transaction.atomic():
            fresh = JournalEntry.objects.create(kind=EntryKind.TRANSFER, ref="mixed")
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO accounts_posting"
                    " (entry_id, balance_id, asset_id, bucket, amount)"
                    " SELECT v.entry_id, %s, %s, 'available', v.amount"
                    " FROM (VALUES (%s, 1), (%s, -1), (%s, 1), (%s, -1)) AS v(entry_id, amount)",
                    [balance.pk, usdt.pk, fresh.pk, fresh.pk, old_entry, old_entry],
                )

    with pytest.raises(DatabaseError, match="ledger_closed_entry"):
        mixed_insert()

    assert snapshot() == before
