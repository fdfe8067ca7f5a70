"""Holds: funds moved from a user's available bucket to locked, each journaled as one entry.

The accept path's writes to the ledger, split from ledger.py (whose `apply_moves` is the
general primitive): the same entry and two postings per hold that `apply_moves` would
write, by set-based prepared statements because this runs once per accepted order.

- `hold_funds`: one hold, one statement; its guarded UPDATE is also the row lock.
- `HoldBook` + `hold_funds_many`: a batch of holds (the accept batch). `HoldBook.lock`
  locks the batch's balance rows in id order (accounts.locks) and `reserve` decides, in
  arrival order and without writing, which holds fit; `hold_funds_many` then writes the
  reserved holds: one guarded UPDATE per balance (of the balance's total), one entry per
  hold, two postings each, all in one statement.

The database still checks every entry (migrations 0002/0003: balanced at COMMIT, postings
only into an entry of the same transaction) and the balance CHECK constraints.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction

from accounts.amounts import parse_amount
from accounts.errors import InsufficientFunds
from accounts.locks import LockedBalance, lock_user_balances
from accounts.models import Asset, EntryKind, JournalEntry, User
from exchange import clock
from exchange.db import PreparedStatement
from exchange.pgarray import decimal_array, int_array, text_array

MAX_REF_CHARS = 64


def require_atomic() -> None:
    """Refuse a ledger write outside the caller's transaction (a programming error)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ledger writes must run inside the caller's transaction.atomic()")


def _insufficient(code: str, amount: Decimal) -> InsufficientFunds:
    return InsufficientFunds(
        f"Insufficient available {code}: {amount} requested.", asset=code, requested=amount
    )


# The hold of one user's asset as one statement: the guarded UPDATE takes the row lock
# (FOR NO KEY UPDATE, as lock_balance_rows would) and re-checks `available` after any
# wait, and the entry and its two postings are inserted only if it matched. Raw SQL
# because this runs once per hold: apply_moves' general path (lock SELECT, entry INSERT,
# UPDATE, postings INSERT) costs four round trips for the same effect.
_HOLD = PreparedStatement(
    "accounts_hold_funds",
    """
WITH held AS (
    UPDATE accounts_balance
    SET available = available - %(amount)s, locked = locked + %(amount)s, updated_at = %(now)s
    WHERE user_id = %(user_id)s AND asset_id = %(asset_id)s AND available >= %(amount)s
    RETURNING id, asset_id
), entry AS (
    INSERT INTO accounts_journalentry (kind, ref, memo, created_at)
    SELECT %(kind)s, %(ref)s, '', %(now)s FROM held
    RETURNING id
), postings AS (
    INSERT INTO accounts_posting (entry_id, balance_id, asset_id, bucket, amount)
    SELECT entry.id, held.id, held.asset_id, p.bucket, p.amount
    FROM entry, held,
         (VALUES ('available', %(debit)s::numeric), ('locked', %(amount)s::numeric))
             AS p(bucket, amount)
)
SELECT id FROM entry
""",
)


def hold_funds(
    *,
    user: User,
    asset: Asset,
    amount: Decimal,
    ref: str,
    kind: EntryKind = EntryKind.ORDER_HOLD,
) -> JournalEntry:
    """Move `amount` of the user's asset from available to locked and journal it.

    `ref` is an opaque string ("order:42"): accounts never imports trading. `amount` must
    be positive with at most `asset.decimals` places (InvalidAmount). Raises
    InsufficientFunds when available is short (or the user has no balance row); the
    guarded UPDATE makes a concurrent overdraw impossible. Same entry and postings as
    `apply_moves` with the two moves, in one statement.

    Precondition: runs inside the caller's transaction, which must roll back on error.
    """
    amount = parse_amount(amount, asset=asset)
    require_atomic()
    if len(ref) > MAX_REF_CHARS:
        raise ValueError("ref is at most 64 characters")
    now = clock.now()
    with connection.cursor() as cursor:
        _HOLD.execute(
            cursor,
            {
                "amount": amount,
                "debit": amount.copy_negate(),  # exact; unary minus would round to 28 digits
                "now": now,
                "user_id": user.pk,
                "asset_id": asset.pk,
                "kind": str(kind),
                "ref": ref,
            },
        )
        row = cursor.fetchone()
    if row is None:
        raise _insufficient(asset.code, amount)
    entry = JournalEntry(id=row[0], kind=kind, ref=ref, memo="", created_at=now)
    entry._state.adding, entry._state.db = False, connection.alias
    return entry


@dataclass(frozen=True, slots=True)
class Hold:
    """One hold of `hold_funds_many`: `amount` of the user's asset, journaled under `ref`."""

    user_id: int
    asset: Asset
    amount: Decimal
    ref: str


class HoldBook:
    """The balance rows of a batch of holds, locked, and what is still available on each.

    Built by `lock`; `reserve` takes a hold out of what is left, in the caller's order, so
    the batch behaves as if its holds had been applied one after the other.
    """

    __slots__ = ("_left",)

    def __init__(self, rows: Mapping[tuple[int, int], LockedBalance]) -> None:
        self._left = {key: row.available for key, row in rows.items()}

    @classmethod
    def lock(cls, *, user_assets: Collection[tuple[int, int]]) -> HoldBook:
        """Lock the (user_id, asset_id) balance rows in id order (accounts.locks).

        Precondition: inside the transaction that will call hold_funds_many.
        """
        return cls(lock_user_balances(user_assets=sorted(set(user_assets))))

    def reserve(self, *, user_id: int, asset: Asset, amount: Decimal) -> None:
        """Set `amount` aside for a hold; InsufficientFunds (nothing set aside) if it does
        not fit what is left of the user's available (or the user has no balance row)."""
        key = (user_id, asset.pk)
        left = self._left.get(key)
        if left is None or left < amount:
            raise _insufficient(asset.code, amount)
        self._left[key] = left - amount


# The whole batch's holds in one statement: per balance row one UPDATE of its total with
# the guard in the WHERE (the row count is returned and checked), per hold one entry and
# its two postings. Entries are inserted in the holds' order, so their ids follow it.
_HOLD_MANY = PreparedStatement(
    "accounts_hold_funds_many",
    """
WITH t AS (
    SELECT * FROM unnest(%(t_users)s::bigint[], %(t_assets)s::bigint[], %(t_amounts)s::numeric[])
        AS t(user_id, asset_id, amount)
), held AS (
    UPDATE accounts_balance AS b
    SET available = b.available - t.amount, locked = b.locked + t.amount, updated_at = %(now)s
    FROM t
    WHERE b.user_id = t.user_id AND b.asset_id = t.asset_id AND b.available >= t.amount
    RETURNING b.id, b.user_id, b.asset_id
), v AS (
    SELECT * FROM unnest(%(refs)s::text[], %(users)s::bigint[], %(assets)s::bigint[],
                         %(amounts)s::numeric[])
        WITH ORDINALITY AS v(ref, user_id, asset_id, amount, n)
), e AS (
    INSERT INTO accounts_journalentry (kind, ref, memo, created_at)
    SELECT %(kind)s, ref, '', %(now)s FROM v ORDER BY n
    RETURNING id, ref
), p AS (
    INSERT INTO accounts_posting (entry_id, balance_id, asset_id, bucket, amount)
    SELECT e.id, held.id, v.asset_id, p.bucket, p.sign * v.amount
    FROM v
    JOIN e ON e.ref = v.ref
    JOIN held ON held.user_id = v.user_id AND held.asset_id = v.asset_id,
    (VALUES ('available', -1), ('locked', 1)) AS p(bucket, sign)
)
SELECT count(*) FROM held
""",
)


def hold_funds_many(*, holds: Sequence[Hold], kind: EntryKind = EntryKind.ORDER_HOLD) -> None:
    """Apply every hold (as hold_funds would, one after the other) in one statement.

    Guarantees: each hold gets its own entry (`kind`, its `ref`) with the two postings of
    hold_funds; each balance row is updated once, by its total, with the guard
    `available >= total`; if any balance is short (or missing) InsufficientFunds is raised
    and the caller's transaction must roll back (entries may have been written).

    Preconditions: inside the caller's transaction; the refs are distinct and each amount
    positive with the asset's places (callers check with parse_amount); when the holds
    name more than one balance row, the rows are locked by this transaction already
    (HoldBook.lock), since the UPDATE alone would lock them in no fixed order. A single
    row needs no prior lock: the guarded UPDATE is its lock, as in hold_funds.
    """
    if not holds:
        return
    require_atomic()
    totals: dict[tuple[int, int], Decimal] = {}
    for hold in holds:
        if not (isinstance(hold.amount, Decimal) and hold.amount.is_finite() and hold.amount > 0):
            raise ValueError(f"a hold amount must be a positive Decimal, got {hold.amount!r}")
        if len(hold.ref) > MAX_REF_CHARS:
            raise ValueError("ref is at most 64 characters")
        key = (hold.user_id, hold.asset.pk)
        totals[key] = totals.get(key, Decimal(0)) + hold.amount
    if len({hold.ref for hold in holds}) != len(holds):
        raise ValueError("the refs of one hold_funds_many call must be distinct")
    keys = sorted(totals)
    with connection.cursor() as cursor:
        _HOLD_MANY.execute(
            cursor,
            {
                "t_users": int_array([u for u, _ in keys]),
                "t_assets": int_array([a for _, a in keys]),
                "t_amounts": decimal_array([totals[k] for k in keys]),
                "refs": text_array([h.ref for h in holds]),
                "users": int_array([h.user_id for h in holds]),
                "assets": int_array([h.asset.pk for h in holds]),
                "amounts": decimal_array([h.amount for h in holds]),
                "kind": str(kind),
                "now": clock.now(),
            },
        )
        (held,) = cursor.fetchone()
    if held != len(keys):
        # One row: its balance was short. Several: they were locked and reserved through a
        # HoldBook, so only a writer that bypassed the locks gets here; refuse all the same.
        first = holds[0]
        short = first.amount if len(keys) == 1 else totals[(first.user_id, first.asset.pk)]
        raise _insufficient(first.asset.code, short)
