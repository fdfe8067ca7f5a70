"""The money primitive: balanced journal entries applied to balances that cannot overdraw.

Every balance change in the system goes through `apply_moves`: one JournalEntry, each
touched balance row locked once in primary-key order and updated once with a guard in the
WHERE clause, and the postings inserted in one statement. The exception is the holds of the
order hot path (accounts.services.holds: `hold_funds`, re-exported here, `hold_funds_many`):
the same entries and postings, written by prepared statements whose guarded UPDATE checks
the same bounds. The database is the second fence: CHECK constraints on balances,
append-only postings, and a deferred trigger that refuses an unbalanced entry at COMMIT
(migration 0002).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection

from accounts.amounts import LEDGER_DECIMALS, decimal_places, money_context, parse_amount
from accounts.errors import InsufficientFunds
from accounts.locks import LockedBalance, lock_balance_rows
from accounts.models import (
    Asset,
    Balance,
    BalanceKind,
    Bucket,
    EntryKind,
    JournalEntry,
    User,
)
from accounts.services.holds import hold_funds as hold_funds  # its callers import it here
from accounts.services.holds import require_atomic
from exchange import clock

ZERO = Decimal("0")
SYSTEM_KINDS = frozenset({BalanceKind.FEES, BalanceKind.ROUNDING, BalanceKind.EXTERNAL})
_BUCKETS = frozenset({Bucket.AVAILABLE.value, Bucket.LOCKED.value})


@dataclass(frozen=True, slots=True, kw_only=True)
class Move:
    """One signed change to one bucket of one balance.

    Name the balance exactly one way: `balance_id`; or `user_id` + `asset_id`; or
    `system` (fees, rounding, external) + `asset_id`, with an optional `scope` (a caller's
    own system rows, e.g. one fee row per market; "" is the exchange-wide row). Missing
    user and system rows are created on demand. Positive `delta` credits the bucket,
    negative debits it.
    """

    delta: Decimal
    bucket: str = Bucket.AVAILABLE
    balance_id: int | None = None
    user_id: int | None = None
    system: str | None = None
    asset_id: int | None = None
    scope: str = ""

    def __post_init__(self) -> None:
        named = [self.balance_id is not None, self.user_id is not None, self.system is not None]
        if sum(named) != 1:
            raise ValueError("a Move names its balance by exactly one of id, user or system")
        if self.balance_id is None and self.asset_id is None:
            raise ValueError("a user or system Move needs asset_id")
        if self.system is not None and self.system not in SYSTEM_KINDS:
            raise ValueError(f"unknown system balance kind {self.system!r}")
        if self.scope and (self.system is None or len(self.scope) > 32):
            raise ValueError("scope names a system balance, in at most 32 characters")
        if self.bucket not in _BUCKETS:
            raise ValueError(f"unknown bucket {self.bucket!r}")
        if not isinstance(self.delta, Decimal) or not self.delta.is_finite():
            raise ValueError(f"delta must be a finite Decimal, got {self.delta!r}")
        if decimal_places(self.delta) > LEDGER_DECIMALS:
            raise ValueError(f"delta {self.delta} is finer than the ledger's 18 decimals")


def apply_moves(
    *, kind: EntryKind | str, ref: str, moves: Sequence[Move], memo: str = ""
) -> JournalEntry:
    """Write one balanced journal entry and apply its moves to the balances.

    Guarantees: the moves sum to zero per asset (ValueError otherwise: a programming
    error); each touched balance row is locked once, in ascending id order, and updated
    once; no non-external bucket goes below zero (InsufficientFunds, raised before
    anything but empty balance rows is written; the caller's transaction must roll back).
    Zero deltas are skipped. One posting per non-zero move, inserted in one statement.

    Precondition: runs inside the caller's transaction (asserted). Cost is a constant
    number of statements whatever the number of moves (3, or up to 6 when rows are created).
    """
    require_atomic()
    with money_context():  # sums of 36-digit amounts must not round
        return _apply(kind=kind, ref=ref, moves=moves, memo=memo)


def _apply(*, kind: EntryKind | str, ref: str, moves: Sequence[Move], memo: str) -> JournalEntry:
    if len(ref) > 64 or len(memo) > 200:
        raise ValueError("ref is at most 64 characters and memo at most 200")
    live = [move for move in moves if move.delta != 0]
    if not live:
        raise ValueError("apply_moves needs at least one non-zero move")

    rows = _lock_rows_for(live)
    net: dict[int, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    per_asset: dict[int, Decimal] = defaultdict(lambda: ZERO)
    postings: list[tuple[int, int, str, Decimal]] = []  # (balance, asset, bucket, amount)
    for move in live:
        row = rows[_key(move)]
        net[row.id][0 if move.bucket == Bucket.AVAILABLE else 1] += move.delta
        per_asset[row.asset_id] += move.delta
        postings.append((row.id, row.asset_id, str(move.bucket), move.delta))
    unbalanced = {asset_id: total for asset_id, total in per_asset.items() if total != 0}
    if unbalanced:
        raise ValueError(f"moves do not sum to zero per asset: {unbalanced}")

    by_id = {row.id: row for row in rows.values()}
    for balance_id, (d_available, d_locked) in net.items():
        _check_cover(by_id[balance_id], d_available=d_available, d_locked=d_locked)

    return _write_entry(kind=str(kind), ref=ref, memo=memo, net=net, postings=postings)


Key = tuple[
    str, int | str, int, str
]  # ("id", id) / ("user", user, asset) / ("system", kind, asset, scope)


def _key(move: Move) -> Key:
    if move.balance_id is not None:
        return ("id", move.balance_id, 0, "")
    asset_id = move.asset_id or 0  # __post_init__ guarantees it is set
    if move.user_id is not None:
        return ("user", move.user_id, asset_id, "")
    return ("system", move.system or "", asset_id, move.scope)


def _row_keys(row: LockedBalance) -> Iterable[Key]:
    yield ("id", row.id, 0, "")
    if row.user_id is not None:
        yield ("user", row.user_id, row.asset_id, "")
    else:
        yield ("system", row.kind, row.asset_id, row.scope)


def _lock_rows_for(moves: Sequence[Move]) -> dict[Key, LockedBalance]:
    wanted = {_key(move) for move in moves}
    ids = sorted(int(k[1]) for k in wanted if k[0] == "id")
    users = sorted((int(k[1]), k[2]) for k in wanted if k[0] == "user")
    systems = sorted((str(k[1]), k[2], k[3]) for k in wanted if k[0] == "system")
    found = {
        key: row
        for row in lock_balance_rows(balance_ids=ids, user_assets=users, system_assets=systems)
        for key in _row_keys(row)
    }
    missing_users = [pair for pair in users if ("user", *pair, "") not in found]
    missing_systems = [named for named in systems if ("system", *named) not in found]
    if missing_users or missing_systems:
        # New rows get ids above the ones we hold, so pk order is kept; two transactions
        # creating the same rows insert them in the same sorted order.
        _insert_missing(user_assets=missing_users, system_assets=missing_systems)
        for row in lock_balance_rows(user_assets=missing_users, system_assets=missing_systems):
            found.update((key, row) for key in _row_keys(row))
    unknown = wanted - found.keys()
    if unknown:
        raise ValueError(f"unknown balances: {sorted(map(str, unknown))}")
    return found


def _insert_missing(
    *,
    user_assets: Collection[tuple[int, int]],
    system_assets: Collection[tuple[str, int, str]],
) -> None:
    now = clock.now()
    with connection.cursor() as cursor:
        if user_assets:
            cursor.execute(
                """
                INSERT INTO accounts_balance
                    (user_id, asset_id, kind, scope, available, locked, updated_at)
                SELECT k.user_id, k.asset_id, 'user', '', 0, 0, %s
                FROM unnest(%s::bigint[], %s::bigint[]) AS k(user_id, asset_id)
                WHERE NOT EXISTS (SELECT 1 FROM accounts_balance b
                                  WHERE b.user_id = k.user_id AND b.asset_id = k.asset_id)
                ORDER BY k.user_id, k.asset_id
                ON CONFLICT DO NOTHING
                """,
                [now, [u for u, _ in user_assets], [a for _, a in user_assets]],
            )
        if system_assets:
            cursor.execute(
                """
                INSERT INTO accounts_balance
                    (user_id, asset_id, kind, scope, available, locked, updated_at)
                SELECT NULL, k.asset_id, k.kind, k.scope, 0, 0, %s
                FROM unnest(%s::text[], %s::bigint[], %s::text[]) AS k(kind, asset_id, scope)
                WHERE NOT EXISTS (SELECT 1 FROM accounts_balance b WHERE b.user_id IS NULL
                                  AND b.kind = k.kind AND b.asset_id = k.asset_id
                                  AND b.scope = k.scope)
                ORDER BY k.kind, k.asset_id, k.scope
                ON CONFLICT DO NOTHING
                """,
                [
                    now,
                    [k for k, _, _ in system_assets],
                    [a for _, a, _ in system_assets],
                    [scope for _, _, scope in system_assets],
                ],
            )


def _check_cover(row: LockedBalance, *, d_available: Decimal, d_locked: Decimal) -> None:
    short_available = row.available + d_available < 0 and row.kind != BalanceKind.EXTERNAL
    short_locked = row.locked + d_locked < 0
    if not (short_available or short_locked):
        return
    code = Asset.objects.filter(pk=row.asset_id).values_list("code", flat=True).first() or ""
    bucket = "available" if short_available else "locked"
    requested = -(d_available if short_available else d_locked)
    raise InsufficientFunds(
        f"Insufficient {bucket} {code}: {requested} requested.", asset=code, requested=requested
    )


# The guarded balance UPDATE, then the entry and its postings as one statement (the shape
# of hold_funds below): a settlement batch runs this once, and every round trip counts
# there. Raw rather than bulk_create: building a model instance per posting cost more than
# the INSERT. The triggers of migration 0002 still check each posting and the entry.
_UPDATE_SQL = """
UPDATE accounts_balance AS b
SET available = b.available + v.d_available, locked = b.locked + v.d_locked, updated_at = %s
FROM unnest(%s::bigint[], %s::numeric[], %s::numeric[]) AS v(id, d_available, d_locked)
WHERE b.id = v.id
  AND (b.available + v.d_available >= 0 OR b.kind = 'external')
  AND b.locked + v.d_locked >= 0
"""

_ENTRY_SQL = """
WITH entry AS (
    INSERT INTO accounts_journalentry (kind, ref, memo, created_at)
    VALUES (%s, %s, %s, %s)
    RETURNING id
), postings AS (
    INSERT INTO accounts_posting (entry_id, balance_id, asset_id, bucket, amount)
    SELECT entry.id, p.balance_id, p.asset_id, p.bucket, p.amount
    FROM entry, unnest(%s::bigint[], %s::bigint[], %s::text[], %s::numeric[])
                AS p(balance_id, asset_id, bucket, amount)
)
SELECT id FROM entry
"""


def _write_entry(
    *,
    kind: str,
    ref: str,
    memo: str,
    net: dict[int, list[Decimal]],
    postings: Sequence[tuple[int, int, str, Decimal]],
) -> JournalEntry:
    ids = sorted(net)
    now = clock.now()
    with connection.cursor() as cursor:
        cursor.execute(_UPDATE_SQL, [now, ids, [net[i][0] for i in ids], [net[i][1] for i in ids]])
        # The rows are locked and were checked above, so a miss means a broken invariant
        # (or a writer that bypassed the locks); refuse rather than write a partial entry.
        if cursor.rowcount != len(ids):
            raise InsufficientFunds("A balance changed under its lock; nothing was moved.")
        cursor.execute(
            _ENTRY_SQL,
            [
                kind,
                ref,
                memo,
                now,
                [p[0] for p in postings],
                [p[1] for p in postings],
                [p[2] for p in postings],
                [p[3] for p in postings],
            ],
        )
        (entry_id,) = cursor.fetchone()
    entry = JournalEntry(id=entry_id, kind=kind, ref=ref, memo=memo, created_at=now)
    entry._state.adding, entry._state.db = False, connection.alias
    return entry


def get_system_balance(*, asset_id: int, kind: str, scope: str = "") -> Balance:
    """Return the system balance (fees, rounding or external) of an asset, creating it.

    Safe under concurrency (INSERT ... ON CONFLICT DO NOTHING). Takes no lock.
    """
    if kind not in SYSTEM_KINDS:
        raise ValueError(f"{kind!r} is not a system balance kind")
    _insert_missing(user_assets=(), system_assets=[(kind, asset_id, scope)])
    return Balance.objects.get(user__isnull=True, kind=kind, asset_id=asset_id, scope=scope)


def ensure_balances(*, user_ids: Collection[int], asset_id: int) -> dict[int, int]:
    """Make sure each user has a balance row for the asset; return user id -> balance id.

    Idempotent and safe under concurrency (INSERT ... ON CONFLICT DO NOTHING). No lock.
    """
    unique = sorted(set(user_ids))
    _insert_missing(user_assets=[(u, asset_id) for u in unique], system_assets=())
    rows = Balance.objects.filter(user_id__in=unique, asset_id=asset_id).values_list(
        "user_id", "pk"
    )
    return {user_id: pk for user_id, pk in rows if user_id is not None}


def release_hold(
    *,
    user: User,
    asset: Asset,
    amount: Decimal,
    ref: str,
    kind: EntryKind = EntryKind.ORDER_RELEASE,
) -> JournalEntry:
    """Move `amount` of the user's asset from locked back to available and journal it.

    The inverse of `hold_funds`, with the same preconditions. Raises InsufficientFunds if
    the user's locked bucket holds less than `amount`.
    """
    amount = parse_amount(amount, asset=asset)
    debit = amount.copy_negate()  # exact; unary minus would round to 28 digits
    return apply_moves(
        kind=kind,
        ref=ref,
        moves=[
            Move(user_id=user.pk, asset_id=asset.pk, bucket=Bucket.LOCKED, delta=debit),
            Move(user_id=user.pk, asset_id=asset.pk, bucket=Bucket.AVAILABLE, delta=amount),
        ],
    )
