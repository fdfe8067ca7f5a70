"""The nightly fee tier assignment (issue 11): 30-day volume per user, then markets' tiers.

A user's 30-day volume is the quote volume of their UserDailyVolume rows over the 30 closed
local days before `today` (days today-30 .. today-1 of REPORTING_TIME_ZONE), expressed in
settings.FEE_TIER_REFERENCE_ASSET:
- a market quoted in the reference asset counts at face value;
- another quote Q counts at the last price of the market Q-<reference> (volume x price)
  or, failing that, of <reference>-Q (volume / price);
- a quote with neither market (or no last price yet) is not counted.
The tiers are then set through markets.fees.set_user_tiers (one upsert). Users who traded
nothing in the window but had a tier row are set to volume 0 (so they lose their tier).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, localcontext

from celery import shared_task
from django.conf import settings
from django.db import connection

from markets.fees import set_user_tiers
from reporting.calendars import local_today

WINDOW_DAYS = 30
_E18 = Decimal("1e-18")

_VOLUMES = """
WITH ref AS (SELECT id FROM accounts_asset WHERE code = %(ref)s),
rows AS (
    SELECT v.user_id, m.quote_id, sum(v.quote_volume) AS volume
    FROM reporting_userdailyvolume v JOIN markets_market m ON m.id = v.market_id
    WHERE v.day >= %(start)s AND v.day < %(end)s
      AND (%(user)s::bigint IS NULL OR v.user_id = %(user)s::bigint)
    GROUP BY v.user_id, m.quote_id
), rate AS (
    SELECT r.quote_id, COALESCE(
        CASE WHEN r.quote_id = (SELECT id FROM ref) THEN 1 END,
        (SELECT d.last_price FROM markets_market d
         WHERE d.base_id = r.quote_id AND d.quote_id = (SELECT id FROM ref)
           AND d.last_price IS NOT NULL ORDER BY d.id LIMIT 1),
        (SELECT 1 / i.last_price FROM markets_market i
         WHERE i.quote_id = r.quote_id AND i.base_id = (SELECT id FROM ref)
           AND i.last_price IS NOT NULL ORDER BY i.id LIMIT 1)
    ) AS price
    FROM (SELECT DISTINCT quote_id FROM rows) r
)
SELECT u.user_id, COALESCE(sum(rows.volume * rate.price), 0)
FROM (SELECT user_id FROM rows UNION SELECT user_id FROM markets_userfeetier
      WHERE %(user)s::bigint IS NULL OR user_id = %(user)s::bigint) u
LEFT JOIN rows ON rows.user_id = u.user_id
LEFT JOIN rate ON rate.quote_id = rows.quote_id
GROUP BY u.user_id
"""


def thirty_day_volumes(today: date, user_id: int | None = None) -> dict[int, Decimal]:
    """Each user's volume (reference asset) over the 30 closed days before `today`; with
    `user_id`, that user's alone (absent: nothing traded and no tier row)."""
    start = today - timedelta(days=WINDOW_DAYS)
    params: dict[str, str | date | int | None] = {
        "ref": settings.FEE_TIER_REFERENCE_ASSET,
        "start": start,
        "end": today,
        "user": user_id,
    }
    with connection.cursor() as cursor:
        cursor.execute(_VOLUMES, params)
        rows = cursor.fetchall()
    with localcontext(prec=80):  # numeric(48, 18) fits; never round the integer part
        return {user_id: Decimal(volume).quantize(_E18) for user_id, volume in rows}


def assign_fee_tiers(today: date | None = None) -> int:
    """Assign every user's tier from their 30-day volume; returns the rows written.

    Idempotent (an upsert from the daily rows): a re-run or a late run gives the same tiers.
    """
    return set_user_tiers(volumes=thirty_day_volumes(today or local_today()))


@shared_task(name="reporting.tiers.assign_fee_tiers", ignore_result=True)
def assign_fee_tiers_task() -> None:
    """Beat, nightly after the day closes: assign_fee_tiers for today."""
    assign_fee_tiers()
