"""The money primitive: apply_moves, holds, system and user balance rows."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.errors import InsufficientFunds, InvalidAmount
from accounts.models import Balance, BalanceKind, Bucket, EntryKind, JournalEntry, Posting
from accounts.services.ledger import (
    Move,
    apply_moves,
    ensure_balances,
    get_system_balance,
    hold_funds,
    release_hold,
)
from tests.conftest import balance_of, fund, make_user
from tests.conftest import ledger_snapshot as snapshot


def _fees(asset_id: int) -> tuple[Decimal, Decimal]:
    row = Balance.objects.get(user__isnull=True, kind=BalanceKind.FEES, asset_id=asset_id)
    return row.available, row.locked


@pytest.mark.django_db
def test_hold_then_release_moves_between_buckets(alice, usdt, order_holds):
    fund(alice, usdt, "100")

    with transaction.atomic():
        hold_funds(user=alice, asset=usdt, amount=Decimal("30"), ref="order:1")
    assert balance_of(alice, usdt) == (Decimal("70"), Decimal("30"))

    with transaction.atomic():
        entry = release_hold(user=alice, asset=usdt, amount=Decimal("12.5"), ref="order:1")
    assert balance_of(alice, usdt) == (Decimal("82.5"), Decimal("17.5"))
    assert entry.kind == EntryKind.ORDER_RELEASE
    assert entry.ref == "order:1"
    assert sorted(entry.postings.values_list("bucket", "amount")) == [
        ("available", Decimal("12.5")),
        ("locked", Decimal("-12.5")),
    ]


@pytest.mark.django_db
def test_hold_writes_one_balanced_entry_with_its_two_postings(alice, usdt, order_holds):
    fund(alice, usdt, "100")
    row = Balance.objects.get(user=alice, asset=usdt)

    with transaction.atomic():
        entry = hold_funds(user=alice, asset=usdt, amount=Decimal("30.000001"), ref="order:7")

    stored = JournalEntry.objects.get(pk=entry.pk)
    assert (stored.kind, stored.ref, stored.memo) == (EntryKind.ORDER_HOLD, "order:7", "")
    assert sorted(stored.postings.values_list("balance_id", "asset_id", "bucket", "amount")) == [
        (row.pk, usdt.pk, "available", Decimal("-30.000001")),
        (row.pk, usdt.pk, "locked", Decimal("30.000001")),
    ]
    assert balance_of(alice, usdt) == (Decimal("69.999999"), Decimal("30.000001"))


@pytest.mark.django_db
def test_hold_beyond_available_raises_and_writes_nothing(alice, usdt, order_holds):
    fund(alice, usdt, "100")
    before = snapshot()

    with pytest.raises(InsufficientFunds) as caught, transaction.atomic():
        hold_funds(user=alice, asset=usdt, amount=Decimal("100.000001"), ref="order:2")

    assert caught.value.code == "insufficient_funds"
    assert caught.value.field == "amount"
    assert caught.value.asset == "USDT"
    assert snapshot() == before


@pytest.mark.django_db
def test_release_beyond_locked_raises(alice, usdt, order_holds):
    fund(alice, usdt, "100")
    with transaction.atomic():
        hold_funds(user=alice, asset=usdt, amount=Decimal("10"), ref="order:3")
    before = snapshot()

    with pytest.raises(InsufficientFunds), transaction.atomic():
        release_hold(user=alice, asset=usdt, amount=Decimal("10.5"), ref="order:3")

    assert snapshot() == before


@pytest.mark.django_db
def test_hold_without_any_balance_row_is_insufficient(bob, usdt):
    before = snapshot()

    with pytest.raises(InsufficientFunds), transaction.atomic():
        hold_funds(user=bob, asset=usdt, amount=Decimal("1"), ref="order:4")

    assert snapshot() == before


@pytest.mark.parametrize(
    ("_case", "amount", "code"),
    [
        ("negative", Decimal("-1"), "amount_not_positive"),
        ("zero", Decimal("0"), "amount_not_positive"),
        ("NaN", Decimal("NaN"), "amount_invalid"),
        ("more decimals than USDT", Decimal("0.0000001"), "amount_too_precise"),
        ("float", 1.5, "amount_invalid"),
    ],
)
@pytest.mark.django_db
def test_hold_bad_amount_is_refused(alice, usdt, _case, amount, code):
    fund(alice, usdt, "100")
    before = snapshot()

    with pytest.raises(InvalidAmount) as caught, transaction.atomic():
        hold_funds(user=alice, asset=usdt, amount=amount, ref="order:5")

    assert (caught.value.code, caught.value.field) == (code, "amount")
    assert snapshot() == before


@pytest.mark.django_db
def test_hold_outside_a_transaction_is_a_programming_error(alice, usdt):
    fund(alice, usdt, "100")

    # pytest-django wraps the test in an atomic block; leave it to see the real guard.
    connection.in_atomic_block, saved = False, connection.in_atomic_block
    try:
        with pytest.raises(RuntimeError, match="inside the caller's transaction"):
            hold_funds(user=alice, asset=usdt, amount=Decimal("1"), ref="order:6")
    finally:
        connection.in_atomic_block = saved


@pytest.mark.django_db
def test_unbalanced_moves_are_refused_before_any_write(alice, usdt):
    fund(alice, usdt, "100")
    before = snapshot()

    with pytest.raises(ValueError, match="do not sum to zero"), transaction.atomic():
        apply_moves(
            kind=EntryKind.TRANSFER,
            ref="bad",
            moves=[Move(user_id=alice.pk, asset_id=usdt.pk, delta=Decimal("-1"))],
        )

    assert snapshot() == before


@pytest.mark.parametrize(
    ("_case", "kwargs"),
    [
        ("no balance named", {"delta": Decimal("1")}),
        ("two names", {"delta": Decimal("1"), "balance_id": 1, "user_id": 1, "asset_id": 1}),
        ("user without asset", {"delta": Decimal("1"), "user_id": 1}),
        ("unknown system kind", {"delta": Decimal("1"), "system": "user", "asset_id": 1}),
        ("unknown bucket", {"delta": Decimal("1"), "balance_id": 1, "bucket": "frozen"}),
        ("float delta", {"delta": 1.0, "balance_id": 1}),
        ("infinite delta", {"delta": Decimal("-Infinity"), "balance_id": 1}),
        ("finer than the ledger", {"delta": Decimal("1e-19"), "balance_id": 1}),
    ],
)
def test_malformed_moves_are_refused(_case, kwargs):
    with pytest.raises(ValueError):  # noqa: PT011  (each case has its own message)
        Move(**kwargs)


@pytest.mark.django_db
def test_moves_between_users_and_system_accounts(alice, bob, usdt, btc):
    fund(alice, usdt, "100")
    fund(bob, btc, "2")

    with transaction.atomic():
        entry = apply_moves(
            kind=EntryKind.SETTLEMENT,
            ref="batch:1",
            moves=[
                Move(user_id=alice.pk, asset_id=usdt.pk, delta=Decimal("-50")),
                Move(user_id=bob.pk, asset_id=usdt.pk, delta=Decimal("49.9")),
                Move(system=BalanceKind.FEES, asset_id=usdt.pk, delta=Decimal("0.1")),
                Move(user_id=bob.pk, asset_id=btc.pk, delta=Decimal("-1")),
                Move(user_id=alice.pk, asset_id=btc.pk, delta=Decimal("1")),
                Move(user_id=alice.pk, asset_id=btc.pk, delta=Decimal("0")),  # skipped
            ],
        )

    assert balance_of(alice, usdt) == (Decimal("50"), Decimal("0"))
    assert balance_of(bob, usdt) == (Decimal("49.9"), Decimal("0"))
    assert balance_of(alice, btc) == (Decimal("1"), Decimal("0"))
    assert balance_of(bob, btc) == (Decimal("1"), Decimal("0"))
    assert _fees(usdt.pk) == (Decimal("0.1"), Decimal("0"))
    assert entry.postings.count() == 5


@pytest.mark.django_db
def test_one_short_balance_rolls_back_the_whole_batch(alice, bob, usdt):
    fund(alice, usdt, "100")
    fund(bob, usdt, "5")
    before = snapshot()

    with pytest.raises(InsufficientFunds), transaction.atomic():
        apply_moves(
            kind=EntryKind.SETTLEMENT,
            ref="batch:2",
            moves=[
                Move(user_id=alice.pk, asset_id=usdt.pk, delta=Decimal("-10")),
                Move(user_id=bob.pk, asset_id=usdt.pk, delta=Decimal("10")),
                Move(user_id=bob.pk, asset_id=usdt.pk, delta=Decimal("-16")),  # net -6 of 5
                Move(user_id=alice.pk, asset_id=usdt.pk, delta=Decimal("16")),
            ],
        )

    assert snapshot() == before


@pytest.mark.django_db
def test_a_debit_covered_by_a_credit_in_the_same_batch_is_allowed(alice, bob, usdt):
    fund(alice, usdt, "10")

    with transaction.atomic():
        apply_moves(
            kind=EntryKind.SETTLEMENT,
            ref="batch:3",
            moves=[
                Move(user_id=bob.pk, asset_id=usdt.pk, delta=Decimal("-4")),  # bob has nothing
                Move(user_id=alice.pk, asset_id=usdt.pk, delta=Decimal("-10")),
                Move(user_id=bob.pk, asset_id=usdt.pk, delta=Decimal("10")),
                Move(user_id=alice.pk, asset_id=usdt.pk, delta=Decimal("4")),
            ],
        )

    assert balance_of(alice, usdt) == (Decimal("4"), Decimal("0"))
    assert balance_of(bob, usdt) == (Decimal("6"), Decimal("0"))


@pytest.mark.django_db
def test_36_digit_amounts_are_exact(alice, bob, assets):
    eth = assets["ETH"]
    big = Decimal("123456789012345678.123456789012345678")
    fund(alice, eth, big)

    with transaction.atomic():
        apply_moves(
            kind=EntryKind.TRANSFER,
            ref="big",
            moves=[
                Move(user_id=alice.pk, asset_id=eth.pk, delta=big.copy_negate()),
                Move(
                    user_id=bob.pk,
                    asset_id=eth.pk,
                    delta=Decimal("123456789012345678.123456789012345677"),
                ),
                Move(user_id=bob.pk, asset_id=eth.pk, delta=Decimal("1e-18")),
            ],
        )

    assert balance_of(alice, eth) == (Decimal("0"), Decimal("0"))
    assert balance_of(bob, eth) == (big, Decimal("0"))


@pytest.mark.django_db
def test_large_batch_costs_a_constant_number_of_statements(assets):
    usdt = assets["USDT"]
    users = [make_user(f"trader{i}@example.com") for i in range(500)]
    for user in users:
        fund(user, usdt, "10")
    # 2,000 moves: every user pays 1 to the next one, twice, plus a fee each.
    moves: list[Move] = []
    for i, user in enumerate(users):
        nxt = users[(i + 1) % len(users)]
        for _ in range(2):
            moves.append(Move(user_id=user.pk, asset_id=usdt.pk, delta=Decimal("-1")))
            moves.append(Move(user_id=nxt.pk, asset_id=usdt.pk, delta=Decimal("0.99")))
        moves.append(Move(system=BalanceKind.FEES, asset_id=usdt.pk, delta=Decimal("0.02")))
    get_system_balance(asset_id=usdt.pk, kind=BalanceKind.FEES)

    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        entry = apply_moves(kind=EntryKind.SETTLEMENT, ref="batch:big", moves=moves)

    # savepoint + lock + entry + update + postings + release
    assert len(queries) <= 6, [q["sql"][:80] for q in queries]
    assert entry.postings.count() == 2_500
    assert balance_of(users[0], usdt) == (Decimal("9.98"), Decimal("0"))
    assert _fees(usdt.pk) == (Decimal("10.00"), Decimal("0"))


@pytest.mark.django_db
def test_rows_are_locked_in_id_order_before_they_are_updated(alice, bob, usdt):
    fund(bob, usdt, "10")
    fund(alice, usdt, "10")

    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        apply_moves(
            kind=EntryKind.TRANSFER,
            ref="order-check",
            moves=[
                Move(user_id=bob.pk, asset_id=usdt.pk, delta=Decimal("-1")),
                Move(user_id=alice.pk, asset_id=usdt.pk, delta=Decimal("1")),
            ],
        )

    sqls = [q["sql"] for q in queries]
    lock = next(i for i, sql in enumerate(sqls) if "FOR NO KEY UPDATE" in sql)
    update = next(i for i, sql in enumerate(sqls) if sql.lstrip().startswith("UPDATE"))
    assert lock < update
    assert "ORDER BY b.id" in sqls[lock]


@pytest.mark.django_db
def test_system_and_user_rows_are_created_once(alice, bob, usdt):
    fees = get_system_balance(asset_id=usdt.pk, kind=BalanceKind.FEES)
    again = get_system_balance(asset_id=usdt.pk, kind=BalanceKind.FEES)
    first = ensure_balances(user_ids=[alice.pk, bob.pk, alice.pk], asset_id=usdt.pk)
    second = ensure_balances(user_ids=[bob.pk], asset_id=usdt.pk)

    assert fees.pk == again.pk
    assert (fees.user_id, fees.kind, fees.available, fees.locked) == (
        None,
        "fees",
        Decimal("0"),
        Decimal("0"),
    )
    assert set(first) == {alice.pk, bob.pk}
    assert second == {bob.pk: first[bob.pk]}
    assert Balance.objects.filter(asset=usdt).count() == 3
    with pytest.raises(ValueError, match="not a system balance kind"):
        get_system_balance(asset_id=usdt.pk, kind=BalanceKind.USER)


@pytest.mark.django_db
def test_moves_by_balance_id(alice, usdt):
    fund(alice, usdt, "5")
    own = Balance.objects.get(user=alice, asset=usdt)
    rounding = get_system_balance(asset_id=usdt.pk, kind=BalanceKind.ROUNDING)

    with transaction.atomic():
        apply_moves(
            kind=EntryKind.SETTLEMENT,
            ref="dust",
            moves=[
                Move(balance_id=own.pk, delta=Decimal("-0.000001")),
                Move(balance_id=rounding.pk, delta=Decimal("0.000001")),
            ],
        )

    rounding.refresh_from_db()
    assert rounding.available == Decimal("0.000001")
    assert balance_of(alice, usdt) == (Decimal("4.999999"), Decimal("0"))
    assert JournalEntry.objects.filter(ref="dust").count() == 1
    assert Posting.objects.filter(entry__ref="dust", bucket=Bucket.AVAILABLE).count() == 2
