"""The ledger auditor: the DESIGN.md / RELIABILITY Part F invariants that accounts owns.

`run_ledger_checks()` recomputes everything from the rows and reports each violation as
one readable line; it never repairs. Other apps extend it without accounts importing them:

- `LEDGER_HOLD_SOURCES`: dotted paths to callables returning
  `Mapping[(user_id, asset_id), Decimal]`, the holds they need (e.g. open orders). INV-5
  compares each user's `locked` with open withdrawals plus these.
- `LEDGER_EXTRA_CHECKS`: dotted paths to callables returning `list[str]` of violations.
- `LIVENESS_CHECKS`: dotted paths to callables taking `max_age_seconds` and returning
  `list[str]`: work accepted but not finished within that age (unmatched orders, unsettled
  events, unpublished outbox rows). The money invariants keep holding while the pipeline
  is stalled, so only these see a stall. They run when a caller passes
  `liveness_max_age_seconds` (check_ledger and the periodic auditor do); the tests'
  end-of-scenario audits of quiet data leave them out.

The hidden arrow, on purpose: at run time this module calls into trading (today
`trading.holds.open_order_holds`, `trading.holds.check_orders` and three functions of
`trading.liveness`), named as strings in exchange/settings/base.py and loaded with
`import_string`, so no import statement shows it and import-linter cannot see it. The
direction is inverted deliberately: accounts sits below trading ("Lower apps do not reach
up" in pyproject.toml), yet INV-5 needs the holds of open orders, which only trading
knows. Trading therefore provides them behind the three plain signatures above, and the
project's settings, which know every app, wire them in. To find every caller-provided
check, read those three settings; to change one, change its function in trading and keep
its signature. Tests swap the lists through `settings` (tests/accounts/conftest.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils.module_loading import import_string

from accounts.amounts import money_context
from accounts.models import ZERO, Asset, Balance, Deposit, Withdrawal, WithdrawalStatus

HoldSource = Callable[[], Mapping[tuple[int, int], Decimal]]
ExtraCheck = Callable[[], list[str]]
LivenessCheck = Callable[[float], list[str]]
MAX_LISTED = 50  # per check: enough to diagnose, bounded so one bad day cannot flood logs


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One invariant: its name and every violation found (empty when it holds).

    `is_liveness` marks a liveness check (work overdue) as opposed to a money invariant.
    """

    name: str
    violations: list[str] = field(default_factory=list)
    is_liveness: bool = False

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass(frozen=True, slots=True)
class LedgerReport:
    """All results of one auditor run."""

    results: list[CheckResult]

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results)

    @property
    def violations(self) -> list[str]:
        return [f"{r.name}: {v}" for r in self.results for v in r.violations]

    def failed(self) -> list[str]:
        """Names of the checks that found at least one violation."""
        return [result.name for result in self.results if not result.ok]

    def format(self) -> str:
        """One line per check with its count, then each violation indented."""
        lines: list[str] = []
        for result in self.results:
            status = "ok" if result.ok else "FAIL"
            lines.append(f"{status:4} {result.name}: {len(result.violations)} violation(s)")
            lines.extend(f"       - {violation}" for violation in result.violations)
        total = len(self.violations)
        lines.append("ledger clean" if total == 0 else f"{total} violation(s) in total")
        return "\n".join(lines)


def run_ledger_checks(*, liveness_max_age_seconds: float | None = None) -> LedgerReport:
    """Run every ledger invariant (plus registered extra checks) and return the report.

    With `liveness_max_age_seconds` the registered liveness checks run too, after the
    money checks, each reporting work older than that. Read-only. For a consistent view
    across checks use `run_audit` (one REPEATABLE READ snapshot); in tests the data is
    quiet anyway.
    """
    with money_context():  # Python-side sums of 36-digit amounts must not round
        report = _run(codes=dict(Asset.objects.values_list("pk", "code")))
    if liveness_max_age_seconds is None:
        return report
    return LedgerReport(report.results + _run_liveness(liveness_max_age_seconds))


def run_audit(*, liveness_max_age_seconds: float | None = None) -> LedgerReport:
    """`run_ledger_checks` in one REPEATABLE READ, READ ONLY transaction.

    Every check sees the same committed state, so concurrent traffic cannot produce a
    false positive between two queries. Inside an open transaction (a test) it runs in
    that transaction instead, whose isolation can no longer be changed.
    """
    nested = transaction.get_connection().in_atomic_block
    with transaction.atomic():
        if not nested:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return run_ledger_checks(liveness_max_age_seconds=liveness_max_age_seconds)


def _run_liveness(max_age_seconds: float) -> list[CheckResult]:
    results = []
    for path in getattr(settings, "LIVENESS_CHECKS", []):
        check: LivenessCheck = import_string(path)
        name = "liveness " + path.rsplit(".", 1)[-1].replace("_", " ")
        violations = list(check(max_age_seconds))[:MAX_LISTED]
        results.append(CheckResult(name, violations, is_liveness=True))
    return results


def _run(*, codes: dict[int, str]) -> LedgerReport:
    results = [
        CheckResult("INV-1 entries balanced", _entries_balanced(codes)),
        CheckResult("INV-1 global zero per asset", _global_zero(codes)),
        CheckResult("INV-2 conservation", _conservation(codes)),
        CheckResult("INV-3 non-negative", _non_negative(codes)),
        CheckResult("INV-4 balances equal postings", _balances_match_postings(codes)),
        CheckResult("INV-5 holds equal commitments", _holds(codes)),
    ]
    for path in getattr(settings, "LEDGER_EXTRA_CHECKS", []):
        check: ExtraCheck = import_string(path)
        results.append(CheckResult(f"extra {path}", list(check())))
    return LedgerReport([CheckResult(r.name, r.violations[:MAX_LISTED]) for r in results])


def _rows(sql: str) -> list[tuple[Any, ...]]:  # Any: raw SQL rows, typed by each query
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall())


def _entries_balanced(codes: dict[int, str]) -> list[str]:
    found = [
        f"entry #{entry_id} sums to {total} {codes.get(asset_id, asset_id)}"
        for entry_id, asset_id, total in _rows(
            "SELECT entry_id, asset_id, SUM(amount) FROM accounts_posting"
            " GROUP BY entry_id, asset_id HAVING SUM(amount) <> 0 ORDER BY 1, 2"
        )
    ]
    found += [
        f"entry #{entry_id} has no postings"
        for (entry_id,) in _rows(
            "SELECT e.id FROM accounts_journalentry e WHERE NOT EXISTS"
            " (SELECT 1 FROM accounts_posting p WHERE p.entry_id = e.id) ORDER BY 1"
        )
    ]
    found += [
        f"posting #{posting_id} is in {codes.get(p_asset, p_asset)} but its balance #{b_id}"
        f" is {codes.get(b_asset, b_asset)}"
        for posting_id, p_asset, b_id, b_asset in _rows(
            "SELECT p.id, p.asset_id, b.id, b.asset_id FROM accounts_posting p"
            " JOIN accounts_balance b ON b.id = p.balance_id"
            " WHERE p.asset_id <> b.asset_id ORDER BY 1"
        )
    ]
    found += [
        f"posting #{posting_id} has unknown bucket {bucket!r}"
        for posting_id, bucket in _rows(
            "SELECT id, bucket FROM accounts_posting"
            " WHERE bucket NOT IN ('available', 'locked') ORDER BY 1"
        )
    ]
    return found


def _global_zero(codes: dict[int, str]) -> list[str]:
    found = [
        f"postings of {codes.get(asset_id, asset_id)} sum to {total}, not 0"
        for asset_id, total in _rows(
            "SELECT asset_id, SUM(amount) FROM accounts_posting"
            " GROUP BY asset_id HAVING SUM(amount) <> 0 ORDER BY 1"
        )
    ]
    found += [
        f"balances of {codes.get(asset_id, asset_id)} (external included) sum to {total}, not 0"
        for asset_id, total in _rows(
            "SELECT asset_id, SUM(available + locked) FROM accounts_balance"
            " GROUP BY asset_id HAVING SUM(available + locked) <> 0 ORDER BY 1"
        )
    ]
    return found


def _conservation(codes: dict[int, str]) -> list[str]:
    held: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for row in (
        Balance.objects.exclude(kind="external")
        .values("asset_id")
        .annotate(holding=Sum(F("available") + F("locked")))
    ):
        held[row["asset_id"]] += row["holding"]
    expected: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for deposits in Deposit.objects.values("asset_id").annotate(total=Sum("amount")):
        expected[deposits["asset_id"]] += deposits["total"]
    # A completed withdrawal's amount left the exchange; its fee stayed, in the fee account.
    for paid_out in (
        Withdrawal.objects.filter(status=WithdrawalStatus.COMPLETED)
        .values("asset_id")
        .annotate(total=Sum("amount"))
    ):
        expected[paid_out["asset_id"]] -= paid_out["total"]
    return [
        f"{codes.get(asset_id, asset_id)}: users + fees + rounding hold {held[asset_id]},"
        f" deposits - completed withdrawals = {expected[asset_id]}"
        for asset_id in sorted(held.keys() | expected.keys())
        if held[asset_id] != expected[asset_id]
    ]


def _non_negative(codes: dict[int, str]) -> list[str]:
    return [
        f"balance #{b_id} ({owner or kind}) {codes.get(asset_id, asset_id)}:"
        f" available {available}, locked {locked}"
        for b_id, owner, kind, asset_id, available, locked in _rows(
            "SELECT id, user_id, kind, asset_id, available, locked FROM accounts_balance"
            " WHERE locked < 0 OR (available < 0 AND kind <> 'external') ORDER BY 1"
        )
    ]


def _balances_match_postings(codes: dict[int, str]) -> list[str]:
    return [
        f"balance #{b_id} {codes.get(asset_id, asset_id)}: stored {available}/{locked},"
        f" postings say {p_available}/{p_locked} (available/locked)"
        for b_id, asset_id, available, locked, p_available, p_locked in _rows(
            """
            SELECT b.id, b.asset_id, b.available, b.locked,
                   COALESCE(p.available, 0), COALESCE(p.locked, 0)
            FROM accounts_balance b
            LEFT JOIN (
                SELECT balance_id,
                       SUM(amount) FILTER (WHERE bucket = 'available') AS available,
                       SUM(amount) FILTER (WHERE bucket = 'locked') AS locked
                FROM accounts_posting GROUP BY balance_id
            ) p ON p.balance_id = b.id
            WHERE b.available <> COALESCE(p.available, 0) OR b.locked <> COALESCE(p.locked, 0)
            ORDER BY b.id
            """
        )
    ]


def required_holds() -> dict[tuple[int, int], Decimal]:
    """What every (user_id, asset_id) must have locked: open withdrawals + hold sources."""
    required: dict[tuple[int, int], Decimal] = defaultdict(lambda: ZERO)
    for row in (
        Withdrawal.objects.filter(status__in=(WithdrawalStatus.PENDING, WithdrawalStatus.APPROVED))
        .values("user_id", "asset_id")
        .annotate(total=Sum(F("amount") + F("fee")))
    ):
        required[(row["user_id"], row["asset_id"])] += row["total"]
    for path in getattr(settings, "LEDGER_HOLD_SOURCES", []):
        source: HoldSource = import_string(path)
        for key, amount in source().items():
            required[key] += amount
    return dict(required)


def _holds(codes: dict[int, str]) -> list[str]:
    required = required_holds()
    locked = {
        (user_id, asset_id): amount
        for user_id, asset_id, amount in Balance.objects.filter(user__isnull=False).values_list(
            "user_id", "asset_id", "locked"
        )
    }
    found = [
        f"user {user_id} {codes.get(asset_id, asset_id)}: locked {locked.get(key, ZERO)},"
        f" commitments need {required.get(key, ZERO)}"
        for key in sorted(locked.keys() | required.keys())
        for user_id, asset_id in [key]
        if locked.get(key, ZERO) != required.get(key, ZERO)
    ]
    found += [
        f"system balance #{b_id} ({kind}) {codes.get(asset_id, asset_id)} has {amount} locked"
        for b_id, kind, asset_id, amount in Balance.objects.filter(user__isnull=True)
        .exclude(locked=0)
        .values_list("pk", "kind", "asset_id", "locked")
    ]
    return found
