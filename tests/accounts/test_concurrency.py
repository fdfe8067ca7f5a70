"""Races on real PostgreSQL: threads on their own connections, released by a barrier.

T06 (withdrawal double-spend), T08 (over-reservation through holds) and a lock-order
check with opposing transfers. Thread count stays at 64 so 64 worker connections plus the
test's own stay below PostgreSQL's default max_connections of 100.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import connections, transaction

from accounts.errors import DomainError, InsufficientFunds
from accounts.models import Balance, KycLevel, User, Withdrawal
from accounts.services.ledger import hold_funds
from accounts.services.transfers import transfer
from accounts.services.withdrawals import request_withdrawal
from tests.conftest import balance_of, fund, make_user

THREADS = 64
ROUNDS = 25

Outcome = object  # the worker's return value, or the exception it raised


def race_rounds(
    *,
    threads: int,
    rounds: int,
    before_round: Callable[[int], None],
    work: Callable[[int, int], object],
    after_round: Callable[[int, list[Outcome]], None],
) -> None:
    """Run `work(round, thread)` on `threads` long-lived threads, all released together.

    Each thread keeps its own connection across rounds and closes it at the end. The main
    thread prepares each round and checks its outcomes between two barriers.
    """
    start = threading.Barrier(threads + 1)
    done = threading.Barrier(threads + 1)
    outcomes: list[Outcome] = [None] * threads

    def worker(index: int) -> None:
        try:
            for round_no in range(rounds):
                start.wait(timeout=60)
                try:
                    outcomes[index] = work(round_no, index)
                except Exception as exc:
                    outcomes[index] = exc
                done.wait(timeout=60)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    try:
        for round_no in range(rounds):
            before_round(round_no)
            start.wait(timeout=60)
            done.wait(timeout=120)
            after_round(round_no, list(outcomes))
    except BaseException:
        # Only on failure: aborting a barrier that just released would break its waiters.
        start.abort()
        done.abort()
        raise
    finally:
        for thread in pool:
            thread.join(timeout=30)


def _codes(outcomes: list[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        key = outcome.code if isinstance(outcome, DomainError) else type(outcome).__name__
        counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.mark.django_db(transaction=True)
def test_concurrent_withdrawals_of_the_whole_balance_accept_exactly_one(alice_2fa, usdt, limits):
    User.objects.filter(pk=alice_2fa.pk).update(kyc_level=KycLevel.FULL)
    whole = Decimal("100")  # + fee 1 = everything alice has at the start of each round
    accepted_per_round: list[int] = []
    overdrafts = 0

    def before_round(round_no: int) -> None:
        fund(alice_2fa, usdt, whole + usdt.withdrawal_fee)

    def work(round_no: int, index: int) -> object:
        return request_withdrawal(user=alice_2fa, asset=usdt, amount=whole, address="addr-1")

    def after_round(round_no: int, outcomes: list[Outcome]) -> None:
        nonlocal overdrafts
        accepted_per_round.append(sum(isinstance(o, Withdrawal) for o in outcomes))
        assert _codes(outcomes) == {"Withdrawal": 1, "insufficient_funds": THREADS - 1}
        available, locked = balance_of(alice_2fa, usdt)
        overdrafts += available < 0
        assert (available, locked) == (Decimal("0"), Decimal("101") * (round_no + 1))

    started = time.perf_counter()
    race_rounds(
        threads=THREADS,
        rounds=ROUNDS,
        before_round=before_round,
        work=work,
        after_round=after_round,
    )
    elapsed = time.perf_counter() - started

    print(  # noqa: T201  (the figure, one line)
        f"T06 {THREADS} concurrent withdrawals x {ROUNDS} rounds: accepted per round"
        f" min={min(accepted_per_round)} max={max(accepted_per_round)}, overdrafts={overdrafts},"
        f" final available={balance_of(alice_2fa, usdt)[0]}, held={balance_of(alice_2fa, usdt)[1]}"
        f" ({elapsed:.1f}s)"
    )
    assert accepted_per_round == [1] * ROUNDS
    assert overdrafts == 0
    assert Withdrawal.objects.filter(user=alice_2fa).count() == ROUNDS


@pytest.mark.django_db(transaction=True)
def test_concurrent_holds_accept_exactly_what_the_balance_covers(alice, usdt, order_holds):
    hold, k = Decimal("12.5"), 10
    fund(alice, usdt, hold * k)
    outcomes: list[Outcome] = []

    def work(round_no: int, index: int) -> object:
        with transaction.atomic():
            return hold_funds(user=alice, asset=usdt, amount=hold, ref=f"order:{index}")

    race_rounds(
        threads=THREADS,
        rounds=1,
        before_round=lambda _: None,
        work=work,
        after_round=lambda _, result: outcomes.extend(result),
    )

    accepted = sum(not isinstance(o, Exception) for o in outcomes)
    available, locked = balance_of(alice, usdt)
    print(  # noqa: T201
        f"T08 {THREADS} concurrent holds against a balance covering k={k}: accepted={accepted},"
        f" held={locked}, available={available}"
    )
    assert accepted == k
    assert all(isinstance(o, InsufficientFunds) for o in outcomes if isinstance(o, Exception))
    assert (available, locked) == (Decimal("0"), hold * k)


@pytest.mark.django_db(transaction=True)
def test_opposing_transfers_neither_deadlock_nor_lose_money(usdt):
    users = [make_user(f"ring{i}@example.com") for i in range(4)]
    for user in users:
        fund(user, usdt, "1000")
    threads, per_thread = 16, 20

    def work(round_no: int, index: int) -> object:
        failures = []
        for step in range(per_thread):
            sender = users[(index + step) % 4]
            recipient = users[(index + step + 1 + index % 3) % 4]
            if sender.pk == recipient.pk:
                continue
            try:
                transfer(
                    sender=sender,
                    recipient=recipient,
                    asset=usdt,
                    amount=Decimal("7"),
                    ref=f"t{index}-{step}",
                )
            except InsufficientFunds:
                pass
            except Exception as exc:
                failures.append(exc)
        return failures

    outcomes: list[Outcome] = []
    race_rounds(
        threads=threads,
        rounds=1,
        before_round=lambda _: None,
        work=work,
        after_round=lambda _, result: outcomes.extend(result),
    )

    errors = [e for o in outcomes for e in (o if isinstance(o, list) else [o])]
    total = sum(
        Balance.objects.filter(user__in=users, asset=usdt).values_list("available", flat=True)
    )
    print(  # noqa: T201
        f"T10-lite {threads} threads x {per_thread} opposing transfers: errors={len(errors)},"
        f" total={total} (expected 4000)"
    )
    assert errors == []
    assert total == Decimal("4000")
