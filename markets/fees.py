"""Fee tiers: which rates an order pays, and the set-based assignment of users to tiers.

The rule (issue 11): an order's rates are, for maker and taker separately, the LOWER of its
market's fee and its user's tier's fee; a user without a tier pays the market's. The rates
are fixed on the order row at acceptance (trading's accept transaction reads the batch's
users' tiers with `tier_rates`, one query per batch), the hold is computed with them, and
settlement charges each side the rate stored on its own order. So a tier or market fee
changed later never changes an order already accepted, and never beyond its hold.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from decimal import Decimal

from django.db import connection

from exchange import clock
from exchange.db import PreparedStatement
from exchange.pgarray import int_array

Rates = tuple[Decimal, Decimal]  # (maker, taker)

# Prepared (exchange.db): it runs once per accept batch, on the order hot path.
_TIER_RATES = PreparedStatement(
    "markets_tier_rates",
    """
SELECT u.user_id, t.maker_fee, t.taker_fee
FROM markets_userfeetier u JOIN markets_feetier t ON t.id = u.tier_id
WHERE u.user_id = ANY(%(user_ids)s::bigint[])
""",
)


def tier_rates(user_ids: Collection[int]) -> dict[int, Rates]:
    """The (maker, taker) rates of each given user's tier; users without a tier are absent.

    One query whatever the number of users (the accept batch calls it once).
    """
    if not user_ids:
        return {}
    with connection.cursor() as cursor:
        _TIER_RATES.execute(cursor, {"user_ids": int_array(sorted(user_ids))})
        return {user_id: (maker, taker) for user_id, maker, taker in cursor.fetchall()}


def order_rates(*, market_maker: Decimal, market_taker: Decimal, tier: Rates | None) -> Rates:
    """The rates an order pays: per side the lower of the market's and the tier's."""
    if tier is None:
        return market_maker, market_taker
    return min(market_maker, tier[0]), min(market_taker, tier[1])


_SET_TIERS = """
WITH v AS (
    SELECT * FROM unnest(%(user_ids)s::bigint[], %(volumes)s::numeric[]) AS v(user_id, volume)
), pick AS (
    SELECT v.user_id, v.volume, (
        SELECT t.id FROM markets_feetier t WHERE t.min_volume_30d <= v.volume
        ORDER BY t.min_volume_30d DESC LIMIT 1
    ) AS tier_id
    FROM v
)
INSERT INTO markets_userfeetier (user_id, tier_id, volume_30d, assigned_at)
SELECT user_id, tier_id, volume, %(now)s FROM pick
ON CONFLICT (user_id) DO UPDATE SET tier_id = EXCLUDED.tier_id,
    volume_30d = EXCLUDED.volume_30d, assigned_at = EXCLUDED.assigned_at
"""


def set_user_tiers(*, volumes: Mapping[int, Decimal], now: datetime | None = None) -> int:
    """Assign each user in `volumes` (user id -> 30-day volume in the reference asset) the
    tier with the highest threshold the volume reaches (none: tier NULL). One statement, an
    idempotent upsert; users not given keep their row. Returns how many rows were written.
    """
    if not volumes:
        return 0
    ids = sorted(volumes)
    with connection.cursor() as cursor:
        cursor.execute(
            _SET_TIERS,
            {
                "user_ids": ids,
                "volumes": [volumes[i] for i in ids],
                "now": now or clock.now(),
            },
        )
        return cursor.rowcount
