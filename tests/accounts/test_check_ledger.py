"""The ledger auditor: clean on honest data, and it catches each kind of injected drift (T05).

Drift is injected with raw SQL or ORM updates that bypass the services, inside the test's
transaction (rolled back afterwards). Each test asserts exactly which checks fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from accounts.checks import run_ledger_checks
from accounts.models import Balance, Deposit, Withdrawal, WithdrawalStatus
from accounts.services.ledger import hold_funds
from accounts.services.withdrawals import request_withdrawal
from tests.conftest import fund
from tests.database_url import database_url

ROOT = Path(__file__).resolve().parents[2]
INV1_ENTRIES = "INV-1 entries balanced"
INV1_ZERO = "INV-1 global zero per asset"
INV2 = "INV-2 conservation"
INV3 = "INV-3 non-negative"
INV4 = "INV-4 balances equal postings"
INV5 = "INV-5 holds equal commitments"


def _sql(sql: str, params: list[object] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def _forge_entry(postings: list[tuple[int, int, str, str]]) -> None:
    """Insert an entry and postings (balance_id, asset_id, bucket, amount) behind the services.

    Triggers are off for these inserts (replica role), so neither the same-transaction
    check nor the deferred balanced-entry check (which Django's test teardown would fire
    with SET CONSTRAINTS ALL IMMEDIATE) sees them.
    """
    _sql("SET LOCAL session_replication_role = replica")
    _sql(
        "INSERT INTO accounts_journalentry (kind, ref, memo, created_at)"
        " VALUES ('transfer', 'forged', '', now())"
    )
    for balance_id, asset_id, bucket, amount in postings:
        _sql(
            "INSERT INTO accounts_posting (entry_id, balance_id, asset_id, bucket, amount)"
            " VALUES (currval('accounts_journalentry_id_seq'), %s, %s, %s, %s)",
            [balance_id, asset_id, bucket, amount],
        )
    _sql("SET LOCAL session_replication_role = origin")


def _failed() -> list[str]:
    return run_ledger_checks().failed()


@pytest.fixture
def scene(alice, bob, usdt):
    fund(alice, usdt, "100")
    fund(bob, usdt, "50")
    return (
        Balance.objects.get(user=alice, asset=usdt),
        Balance.objects.get(user=bob, asset=usdt),
    )


@pytest.mark.django_db
def test_clean_after_every_kind_of_write(alice_2fa, bob, staff, usdt, limits, order_holds):
    fund(alice_2fa, usdt, "500")
    withdrawal = request_withdrawal(
        user=alice_2fa, asset=usdt, amount=Decimal("100"), address="addr"
    )
    with transaction.atomic():
        hold_funds(user=alice_2fa, asset=usdt, amount=Decimal("7"), ref="order:1")

    report = run_ledger_checks()

    assert report.ok, report.format()
    assert Withdrawal.objects.get().pk == withdrawal.pk
    assert report.format().splitlines()[-1] == "ledger clean"


@pytest.mark.django_db
def test_unbalanced_entry_is_caught(scene, ledger_drift):
    alice_balance, _ = scene
    _forge_entry([(alice_balance.pk, alice_balance.asset_id, "available", "5")])
    _sql("UPDATE accounts_balance SET available = available + 5 WHERE id = %s", [alice_balance.pk])

    assert _failed() == [INV1_ENTRIES, INV1_ZERO, INV2]


@pytest.mark.django_db
def test_posting_in_the_wrong_asset_is_caught(scene, btc, ledger_drift):
    alice_balance, bob_balance = scene
    _forge_entry(
        [
            (alice_balance.pk, btc.pk, "available", "-1"),
            (bob_balance.pk, btc.pk, "available", "1"),
        ]
    )

    report = run_ledger_checks()

    assert report.failed() == [INV1_ENTRIES, INV4]
    assert any("is in BTC but its balance" in v for v in report.violations)


@pytest.mark.django_db
def test_balances_not_summing_to_zero_are_caught(scene, usdt, ledger_drift):
    # The external account absorbs a phantom unit: balance rows no longer sum to zero.
    _sql(
        "UPDATE accounts_balance SET available = available + 1"
        " WHERE kind = 'external' AND asset_id = %s",
        [usdt.pk],
    )

    assert _failed() == [INV1_ZERO, INV4]


@pytest.mark.django_db
def test_conservation_break_is_caught(scene, ledger_drift):
    Deposit.objects.filter(external_ref__isnull=False).update(amount=Decimal("1"))

    assert _failed() == [INV2]


@pytest.mark.django_db
def test_withdrawal_paid_but_not_recorded_is_caught(alice_2fa, usdt, limits, ledger_drift):
    fund(alice_2fa, usdt, "500")
    withdrawal = request_withdrawal(user=alice_2fa, asset=usdt, amount=Decimal("100"), address="a")
    Withdrawal.objects.filter(pk=withdrawal.pk).update(status=WithdrawalStatus.COMPLETED)

    assert _failed() == [INV2, INV5]


@pytest.mark.django_db
def test_negative_balance_is_caught(scene, ledger_drift):
    alice_balance, bob_balance = scene
    # Drop the CHECK inside this transaction only (DDL is transactional in PostgreSQL).
    _sql("SET CONSTRAINTS ALL IMMEDIATE")  # flush pending FK checks so ALTER TABLE may run
    _sql("ALTER TABLE accounts_balance DROP CONSTRAINT balance_available_gte_0")
    _forge_entry(
        [
            (alice_balance.pk, alice_balance.asset_id, "available", "-101"),
            (bob_balance.pk, bob_balance.asset_id, "available", "101"),
        ]
    )
    _sql(
        "UPDATE accounts_balance SET available = available - 101 WHERE id = %s", [alice_balance.pk]
    )
    _sql("UPDATE accounts_balance SET available = available + 101 WHERE id = %s", [bob_balance.pk])

    report = run_ledger_checks()

    assert report.failed() == [INV3]
    assert report.violations == [
        f"{INV3}: balance #{alice_balance.pk} ({alice_balance.user_id}) USDT:"
        " available -1.000000000000000000, locked 0E-18"
    ]


@pytest.mark.django_db
def test_balance_edited_without_the_ledger_is_caught(scene, ledger_drift):
    alice_balance, bob_balance = scene
    # Conserves every total: only the comparison with the postings can see it.
    Balance.objects.filter(pk=alice_balance.pk).update(available=Decimal("110"))
    Balance.objects.filter(pk=bob_balance.pk).update(available=Decimal("40"))

    report = run_ledger_checks()

    assert report.failed() == [INV4]
    assert len(report.violations) == 2


@pytest.mark.django_db
def test_changed_posting_is_caught(scene, ledger_drift):
    alice_balance, _ = scene
    _sql("SET CONSTRAINTS ALL IMMEDIATE")  # check the honest entries now, before the edit
    _sql("SET CONSTRAINTS ALL DEFERRED")
    _sql("SET LOCAL session_replication_role = replica")  # switches off the append-only trigger
    _sql("UPDATE accounts_posting SET amount = 90 WHERE balance_id = %s", [alice_balance.pk])
    _sql("SET LOCAL session_replication_role = origin")

    assert _failed() == [INV1_ENTRIES, INV1_ZERO, INV4]


@pytest.mark.django_db
def test_orphan_hold_is_caught(scene, usdt, ledger_drift):
    alice_balance, _ = scene
    with transaction.atomic():
        hold_funds(user=alice_balance.user, asset=usdt, amount=Decimal("10"), ref="order:404")

    report = run_ledger_checks()

    assert report.failed() == [INV5]
    assert report.violations == [
        f"{INV5}: user {alice_balance.user_id} USDT: locked 10.000000000000000000,"
        " commitments need 0"
    ]


@pytest.mark.django_db
def test_hold_missing_for_a_commitment_is_caught(alice_2fa, usdt, limits, ledger_drift):
    fund(alice_2fa, usdt, "500")
    request_withdrawal(user=alice_2fa, asset=usdt, amount=Decimal("100"), address="a")
    _forge_entry([])  # placeholder entry so postings below stay balanced
    balance = Balance.objects.get(user=alice_2fa, asset=usdt)
    _forge_entry(
        [
            (balance.pk, usdt.pk, "locked", "-101"),
            (balance.pk, usdt.pk, "available", "101"),
        ]
    )
    Balance.objects.filter(pk=balance.pk).update(available=Decimal("500"), locked=Decimal("0"))

    failed = _failed()

    assert failed == [INV1_ENTRIES, INV5]  # INV-1: the empty placeholder entry


@pytest.mark.django_db
def test_system_account_with_locked_funds_is_caught(scene, usdt, ledger_drift):
    _sql(
        "UPDATE accounts_balance SET available = available - 1, locked = locked + 1"
        " WHERE kind = 'external' AND asset_id = %s",
        [usdt.pk],
    )

    assert _failed() == [INV4, INV5]


def always_broken() -> list[str]:
    return ["order #1 filled 3 of 2"]


@pytest.mark.django_db
def test_extra_checks_are_run_and_reported(scene, settings, ledger_drift):
    settings.LEDGER_EXTRA_CHECKS = ["tests.accounts.test_check_ledger.always_broken"]

    report = run_ledger_checks()

    assert report.failed() == ["extra tests.accounts.test_check_ledger.always_broken"]
    assert report.violations == [
        "extra tests.accounts.test_check_ledger.always_broken: order #1 filled 3 of 2"
    ]


def overdue(max_age_seconds: float) -> list[str]:
    return [f"XYZ-USDT: 2 item(s) waiting longer than {max_age_seconds:g} s"]


@pytest.mark.django_db
def test_liveness_checks_run_only_when_asked(scene, settings, ledger_drift):
    settings.LIVENESS_CHECKS = ["tests.accounts.test_check_ledger.overdue"]

    money_only = run_ledger_checks()
    report = run_ledger_checks(liveness_max_age_seconds=12)

    assert money_only.ok
    assert report.failed() == ["liveness overdue"]
    assert report.violations == ["liveness overdue: XYZ-USDT: 2 item(s) waiting longer than 12 s"]
    assert [r.name for r in report.results if r.is_liveness] == ["liveness overdue"]
    assert len(report.results) == len(money_only.results) + 1
    assert report.format().splitlines()[-1] == "1 violation(s) in total"


@pytest.mark.django_db
def test_command_passes_max_age_and_names_a_stall(scene, settings, capsys, ledger_drift):
    settings.LIVENESS_CHECKS = ["tests.accounts.test_check_ledger.overdue"]

    with pytest.raises(
        CommandError, match=r"^pipeline stalled: 1 overdue item\(s\) older than 7 s$"
    ):
        call_command("check_ledger", "--max-age", "7")

    out = capsys.readouterr().out
    assert "FAIL liveness overdue: 1 violation(s)" in out
    assert "       - XYZ-USDT: 2 item(s) waiting longer than 7 s" in out


@pytest.mark.parametrize(
    ("_case", "max_age"), [("negative", "-1"), ("nan", "nan"), ("text", "soon")]
)
@pytest.mark.django_db
def test_command_refuses_a_bad_max_age(scene, _case, max_age):
    with pytest.raises(CommandError, match="--max-age"):
        call_command("check_ledger", "--max-age", max_age)


@pytest.mark.django_db
def test_command_reports_clean(scene, capsys):
    call_command("check_ledger")

    out = capsys.readouterr().out
    assert f"ok   {INV4}: 0 violation(s)" in out
    assert out.splitlines()[-1] == "ledger clean"


@pytest.mark.django_db
def test_command_fails_on_drift(scene, capsys, ledger_drift):
    alice_balance, _ = scene
    Balance.objects.filter(pk=alice_balance.pk).update(available=Decimal("99"))

    with pytest.raises(CommandError, match="ledger drift: 3 violation"):
        call_command("check_ledger")

    out = capsys.readouterr().out
    assert f"FAIL {INV4}: 1 violation(s)" in out


@pytest.mark.django_db(transaction=True)
def test_command_exit_code_in_a_real_process(alice, bob, usdt, ledger_drift):
    fund(alice, usdt, "100")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "exchange.settings.test",
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
    }
    run = [sys.executable, str(ROOT / "manage.py"), "check_ledger"]

    clean = subprocess.run(run, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    Balance.objects.filter(user=alice, asset=usdt).update(available=Decimal("100.5"))
    dirty = subprocess.run(run, env=env, capture_output=True, text=True, check=False)  # noqa: S603

    assert clean.returncode == 0, clean.stderr
    assert dirty.returncode == 1, dirty.stderr
    assert f"FAIL {INV4}: 1 violation(s)" in dirty.stdout
    assert "ledger drift" in dirty.stderr
