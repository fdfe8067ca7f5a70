"""Shared fixtures: the personas (alice, bob, mallory, staff), the demo assets, the auditor.

Every test under tests/accounts and tests/trading that touches the database ends with the
ledger auditor (`run_ledger_checks`, with trading's hold source and order checks registered
in settings): a scenario that leaves drift fails even if its own asserts passed. Tests that
inject drift on purpose request the `ledger_drift` fixture to opt out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from accounts.checks import run_ledger_checks
from accounts.models import Asset, Balance, JournalEntry, Posting, User, Withdrawal
from tests.factories import PASSWORD as PASSWORD  # re-exported: tests import it from here
from tests.factories import AssetFactory, UserFactory
from tests.factories import fund as fund  # re-exported: tests import it from here

TESTS = Path(__file__).resolve().parent
# The folders (under tests/) whose database tests end with the ledger audit.
AUDITED = frozenset({"accounts", "trading"})


def assert_ledger_clean() -> None:
    """Fail with the auditor's full report unless every invariant holds."""
    report = run_ledger_checks()
    assert report.ok, report.format()


def _audited(request: pytest.FixtureRequest) -> bool:
    path = Path(request.node.path).resolve()
    if not path.is_relative_to(TESTS) or path.parent == TESTS:
        return False
    if path.relative_to(TESTS).parts[0] not in AUDITED:
        return False
    names = request.fixturenames
    uses_db = request.node.get_closest_marker("django_db") is not None or any(
        name in names for name in ("db", "transactional_db", "_django_db_helper")
    )
    return uses_db and "ledger_drift" not in names


@pytest.fixture(autouse=True)
def _ledger_audit(request: pytest.FixtureRequest) -> Iterator[None]:
    if not _audited(request):
        yield
        return
    # Set up the database first so it is torn down (rolled back) after the audit, and
    # settings too: what a fixture registered there (a hold source) still holds at the audit.
    request.getfixturevalue("_django_db_helper")
    request.getfixturevalue("settings")
    yield
    assert_ledger_clean()


@pytest.fixture
def ledger_drift() -> None:
    """Marks a test that breaks an invariant on purpose: the end-of-test audit is skipped."""


@pytest.fixture
def assets(db: None) -> dict[str, Asset]:
    """The four demo assets with their real decimal places."""
    specs = [
        ("BTC", "Bitcoin", 8),
        ("ETH", "Ether", 18),
        ("USDT", "Tether", 6),
        ("IRT", "Toman", 0),
    ]
    return {
        code: AssetFactory.create(code=code, name=name, decimals=decimals)
        for code, name, decimals in specs
    }


def make_user(email: str, **extra: object) -> User:
    """A user with the test password (UserFactory)."""
    return UserFactory.create(email=email, **extra)


@pytest.fixture
def alice(db: None) -> User:
    """A trader who will be funded by the test."""
    return make_user("alice@example.com")


@pytest.fixture
def bob(db: None) -> User:
    """The counterparty."""
    return make_user("bob@example.com")


@pytest.fixture
def mallory(db: None) -> User:
    """Tries other users' ids."""
    return make_user("mallory@example.com")


@pytest.fixture
def staff(db: None) -> User:
    """A staff member (2FA set up by tests that need the admin)."""
    return make_user("staff@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client: Client, staff: User) -> Client:
    """`client` signed in as `staff`, its session past the TOTP step (the admin's door):
    allauth's record of the MFA login, stamped on the session. tests/accounts/test_admin.py
    goes through the real login form instead."""
    from tests.accounts.conftest import enable_totp

    enable_totp(staff)
    client.force_login(staff)
    session = client.session
    session["account_authentication_methods_user"] = str(staff.pk)
    session["account_authentication_methods"] = [{"method": "mfa", "at": time.time()}]
    session.save()
    return client


def balance_of(user: User, asset: Asset) -> tuple[Decimal, Decimal]:
    """(available, locked) of the user's asset, zeros when there is no row."""
    row = Balance.objects.filter(user=user, asset=asset).values_list("available", "locked").first()
    return row if row is not None else (Decimal("0"), Decimal("0"))


def ledger_snapshot() -> dict[str, Any]:
    """Everything a rejected request must leave untouched: balances, ledger, withdrawals."""
    return {
        "balances": list(
            Balance.objects.order_by("pk").values_list(
                "pk", "user_id", "kind", "asset_id", "available", "locked"
            )
        ),
        "entries": JournalEntry.objects.count(),
        "postings": Posting.objects.count(),
        "withdrawals": list(
            Withdrawal.objects.order_by("pk").values_list("pk", "status", "amount", "fee")
        ),
    }


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--faults-long",
        action="store_true",
        default=False,
        help="fault matrix (tests/faults): more seeds and repeated random faults, for a night",
    )
