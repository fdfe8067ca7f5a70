"""Row locks of the accounts app, always taken in primary-key order.

Every multi-row lock in accounts goes through here. A fixed order (ascending balance id)
means two transactions touching overlapping balances wait for each other instead of
deadlocking. `FOR NO KEY UPDATE`: we never change a key, so inserts of postings that
reference a locked balance (FOR KEY SHARE) are not blocked.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection

from accounts.models import Balance
from exchange.db import PreparedStatement


@dataclass(frozen=True, slots=True)
class LockedBalance:
    """A balance row as read under its row lock."""

    id: int
    user_id: int | None
    kind: str
    asset_id: int
    available: Decimal
    locked: Decimal
    scope: str = ""


def lock_balances(*, user_ids: Collection[int], asset_id: int) -> dict[int, Balance]:
    """Lock the users' balance rows of one asset in primary-key order; key by user id.

    Users without a row are absent from the result. Call inside a transaction.
    """
    rows = (
        Balance.objects.filter(user_id__in=user_ids, asset_id=asset_id)
        .order_by("pk")
        .select_for_update(of=("self",), no_key=True)
    )
    return {row.user_id: row for row in rows if row.user_id is not None}  # evaluates: locks


_LOCK_SQL = """
SELECT b.id, b.user_id, b.kind, b.asset_id, b.available, b.locked, b.scope
FROM accounts_balance b
WHERE b.id IN (
    SELECT unnest(%s::bigint[])
    UNION
    SELECT u.id FROM accounts_balance u
    JOIN unnest(%s::bigint[], %s::bigint[]) AS k(user_id, asset_id)
      ON u.user_id = k.user_id AND u.asset_id = k.asset_id
    UNION
    SELECT s.id FROM accounts_balance s
    JOIN unnest(%s::text[], %s::bigint[], %s::text[]) AS k(kind, asset_id, scope)
      ON s.user_id IS NULL AND s.kind = k.kind AND s.asset_id = k.asset_id
     AND s.scope = k.scope
)
ORDER BY b.id
FOR NO KEY UPDATE OF b
"""


def lock_balance_rows(
    *,
    balance_ids: Collection[int] = (),
    user_assets: Collection[tuple[int, int]] = (),
    system_assets: Collection[tuple[str, int, str]] = (),
) -> list[LockedBalance]:
    """Lock balance rows named by id, by (user_id, asset_id) or by (kind, asset_id, scope).

    One statement, rows locked in ascending id order (the sort runs below the row-lock
    step, so locks are taken in that order). Missing rows are simply absent. Raw SQL
    rather than the ORM because the settlement batch names thousands of rows at once.
    Call inside a transaction.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _LOCK_SQL,
            [
                list(balance_ids),
                [user_id for user_id, _ in user_assets],
                [asset_id for _, asset_id in user_assets],
                [kind for kind, _, _ in system_assets],
                [asset_id for _, asset_id, _ in system_assets],
                [scope for _, _, scope in system_assets],
            ],
        )
        return [LockedBalance(*row) for row in cursor.fetchall()]


# The accept path's lock: only users' rows, by (user_id, asset_id), prepared (exchange.db)
# because it runs once per accept batch, where lock_balance_rows' three-way UNION cost
# more to plan than to run.
_LOCK_USER_ROWS = PreparedStatement(
    "accounts_lock_user_balances",
    """
SELECT b.id, b.user_id, b.kind, b.asset_id, b.available, b.locked, b.scope
FROM accounts_balance b
JOIN unnest(%(user_ids)s::bigint[], %(asset_ids)s::bigint[]) AS k(user_id, asset_id)
  ON b.user_id = k.user_id AND b.asset_id = k.asset_id
ORDER BY b.id
FOR NO KEY UPDATE OF b
""",
)


def lock_user_balances(
    *, user_assets: Collection[tuple[int, int]]
) -> dict[tuple[int, int], LockedBalance]:
    """Lock the users' balance rows named by (user_id, asset_id), in ascending id order.

    Keyed by (user_id, asset_id); missing rows are simply absent. One prepared statement.
    Call inside a transaction.
    """
    with connection.cursor() as cursor:
        _LOCK_USER_ROWS.execute(
            cursor,
            {
                "user_ids": [user_id for user_id, _ in user_assets],
                "asset_ids": [asset_id for _, asset_id in user_assets],
            },
        )
        rows = [LockedBalance(*row) for row in cursor.fetchall()]
    return {(row.user_id or 0, row.asset_id): row for row in rows}
