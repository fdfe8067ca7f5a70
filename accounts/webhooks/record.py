"""Recording webhook events: one INSERT ... SELECT per change, inside the caller's transaction.

Each statement inserts one delivery per active endpoint of the user subscribed to the event
type and nothing for anyone else, and is idempotent: (endpoint, event_id) is unique and the
insert is ON CONFLICT DO NOTHING, so running it again (a retried transaction, a repeated
call) records nothing twice. Event ids are derived from the settled data only:

* ``deposit:<deposit id>:credited``
* ``withdrawal:<withdrawal id>:<status>`` (pending, approved, completed, rejected)
* ``order:<order id>:<settlement batch's last seq>``
* ``trade:<market id>:<trade seq>:<buy|sell>`` (the side of the user told; a self-trade
  tells its owner twice, once per side)

Settlement (trading.services.settlement) calls ``record_settlement_events`` with the ids of
the batch's changed orders and trades (plain columns); it is the batch's one extra
statement and joins the endpoint table first, so users without an endpoint cost only an
index probe. For the rows that have an endpoint it reads the payloads from ``trading_order``
and ``trading_trade`` by table name: SQL, not an import, so the layer rule (accounts never
imports trading) holds; settlement wrote (and locked) those rows earlier in the same
transaction, so the payload is exactly what was settled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from accounts.models import Deposit, WebhookEventType, Withdrawal
from exchange.db import PreparedStatement
from exchange.pgarray import int_array

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_EXACT = Context(prec=80)  # 36-digit amounts must never round or raise

_USER_EVENT_SQL = """
INSERT INTO accounts_webhookdelivery (endpoint_id, event_id, event_type, payload, status,
    attempts, next_attempt_at, last_error, created_at)
SELECT e.id, %(event_id)s, %(event_type)s, %(payload)s::jsonb, 'pending', 0, %(now)s, '',
       %(now)s
FROM accounts_webhookendpoint e
WHERE e.user_id = %(user_id)s AND e.is_active AND %(event_type)s = ANY(e.events)
ON CONFLICT (endpoint_id, event_id) DO NOTHING
"""

# The batch's changed orders and its trades arrive as ids only (plus the user each row
# tells, to join the endpoints first): the payloads are read from the order and trade rows
# settlement wrote a statement earlier in this transaction, and only for rows that have an
# endpoint. The batch's distinct users are probed first (`subscribed`, one index scan): a
# batch without subscribers joins nothing and costs a few bigint arrays, not the parse of a
# dozen numeric arrays. Amounts leave as decimal strings
# without trailing zeros (trim_scale of numeric(36, 18)): exact, never a float. Prepared
# once per connection, as settlement's own statements are.
_SETTLEMENT = PreparedStatement(
    "accounts_webhook_settlement_events",
    """
WITH subscribed AS MATERIALIZED (
    SELECT e.id, e.user_id, e.events FROM accounts_webhookendpoint e
    WHERE e.user_id = ANY(%(users)s::bigint[]) AND e.is_active
), o AS (
    SELECT v.id, e.id AS endpoint_id
    FROM subscribed e
    JOIN unnest(%(o_id)s::bigint[], %(o_user)s::bigint[]) AS v(id, user_id)
      ON v.user_id = e.user_id
    WHERE 'order.update' = ANY(e.events)
), t AS (
    SELECT v.seq, v.order_id, e.id AS endpoint_id
    FROM subscribed e
    JOIN unnest(%(t_seq)s::bigint[], %(t_order)s::bigint[], %(t_user)s::bigint[])
         AS v(seq, order_id, user_id)
      ON v.user_id = e.user_id
    WHERE 'trade' = ANY(e.events)
), events AS (
    SELECT o.endpoint_id, 'order:' || r.id || ':' || %(batch_seq)s::bigint AS event_id,
           'order.update' AS event_type,
           jsonb_build_object(
               'id', r.id, 'client_order_id', r.client_order_id, 'symbol', %(symbol)s::text,
               'side', r.side, 'type', r.order_type, 'status', r.status,
               'price', trim_scale(r.price)::text,
               'quantity', trim_scale(r.quantity)::text,
               'filled_quantity', trim_scale(r.filled_quantity)::text,
               'filled_quote', trim_scale(r.filled_quote)::text,
               'fee_paid', trim_scale(r.fee_paid)::text,
               'updated_at', floor(extract(epoch FROM r.updated_at) * 1000)::bigint
           ) AS payload
    FROM o JOIN trading_order r ON r.id = o.id
    UNION ALL
    SELECT t.endpoint_id,
           'trade:' || x.market_id || ':' || x.seq || ':'
               || CASE WHEN x.buy_order_id = t.order_id THEN 'buy' ELSE 'sell' END,
           'trade',
           jsonb_build_object(
               'id', x.id, 'seq', x.seq, 'symbol', %(symbol)s::text, 'order_id', t.order_id,
               'side', CASE WHEN x.buy_order_id = t.order_id THEN 'buy' ELSE 'sell' END,
               'is_maker', x.maker_order_id = t.order_id,
               'price', trim_scale(x.price)::text,
               'quantity', trim_scale(x.quantity)::text,
               'quote_quantity', trim_scale(x.quote_quantity)::text,
               'fee', trim_scale(
                   CASE WHEN x.maker_order_id = t.order_id THEN x.maker_fee ELSE x.taker_fee END
               )::text,
               'fee_asset', (SELECT a.code FROM accounts_asset a
                             WHERE a.id = %(fee_asset_id)s::bigint),
               'time', floor(extract(epoch FROM x.created_at) * 1000)::bigint
           )
    FROM t JOIN trading_trade x ON x.market_id = %(market_id)s::bigint AND x.seq = t.seq
)
INSERT INTO accounts_webhookdelivery (endpoint_id, event_id, event_type, payload, status,
    attempts, next_attempt_at, last_error, created_at)
SELECT endpoint_id, event_id, event_type, payload, 'pending', 0, %(now)s::timestamptz, '',
       %(now)s::timestamptz
FROM events
ON CONFLICT (endpoint_id, event_id) DO NOTHING
""",
)


@dataclass(slots=True)
class SettlementEvents:
    """What a settled batch changed, as plain columns: each changed order with its owner,
    and each trade once per side (its seq, that side's order and that order's owner)."""

    order_id: list[int] = field(default_factory=list)
    order_user_id: list[int] = field(default_factory=list)
    trade_seq: list[int] = field(default_factory=list)
    trade_order_id: list[int] = field(default_factory=list)
    trade_user_id: list[int] = field(default_factory=list)


def record_settlement_events(
    *,
    market_id: int,
    symbol: str,
    fee_asset_id: int,
    batch_seq: int,
    events: SettlementEvents,
) -> None:
    """Record `order.update` and `trade` events of one settled batch, in its transaction,
    after its order and trade rows are written (the payloads are read from them).

    One statement, none at all when the batch changed no order and made no trade.
    Idempotent on the event ids (module docstring); settlement applies a batch at most
    once, and even a second call with the same columns records nothing new.
    """
    if not events.order_id and not events.trade_seq:
        return
    params: dict[str, Any] = {  # Any: array literals and scalars
        "market_id": market_id,
        "symbol": symbol,
        "fee_asset_id": fee_asset_id,
        "batch_seq": batch_seq,
        "now": timezone.now(),  # real time, even where settlement's clock is shifted
        "users": int_array(sorted({*events.order_user_id, *events.trade_user_id})),
        "o_id": int_array(events.order_id),
        "o_user": int_array(events.order_user_id),
        "t_seq": int_array(events.trade_seq),
        "t_order": int_array(events.trade_order_id),
        "t_user": int_array(events.trade_user_id),
    }
    with connection.cursor() as cursor:
        _SETTLEMENT.execute(cursor, params)


def record_user_event(
    *,
    user_id: int,
    event_type: str,
    event_id: str,
    payload: dict[str, Any],  # Any: JSON values
    now: datetime | None = None,
) -> int:
    """Record one event for each of the user's active endpoints subscribed to `event_type`;
    return how many deliveries were created (0 on a repeat). Runs in the caller's
    transaction, which must be the one that writes the change the event reports."""
    with connection.cursor() as cursor:
        cursor.execute(
            _USER_EVENT_SQL,
            {
                "user_id": user_id,
                "event_type": event_type,
                "event_id": event_id,
                "payload": json.dumps(payload),
                "now": now or timezone.now(),
            },
        )
        return int(cursor.rowcount)


def amount_text(value: Decimal, places: int) -> str:
    """A Decimal as a fixed-point string with the asset's `places` (as the v1 API shows it)."""
    return format(value.quantize(Decimal(1).scaleb(-places), context=_EXACT), "f")


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch (integer arithmetic: exact)."""
    return (moment - _EPOCH) // _MS


def record_deposit_event(deposit: Deposit) -> None:
    """Record the `deposit` event of a newly credited deposit (credit_deposit's transaction)."""
    asset = deposit.asset
    record_user_event(
        user_id=deposit.user_id,
        event_type=WebhookEventType.DEPOSIT,
        event_id=f"deposit:{deposit.pk}:credited",
        payload={
            "id": deposit.pk,
            "asset": asset.code,
            "amount": amount_text(deposit.amount, asset.decimals),
            "external_ref": deposit.external_ref,
            "status": "credited",
            "created_at": epoch_ms(deposit.created_at),
        },
    )


def record_withdrawal_event(withdrawal: Withdrawal) -> None:
    """Record the `withdrawal` event of the withdrawal's current status (requested, approved,
    completed or rejected), in the transaction that moved it there."""
    asset = withdrawal.asset
    places = asset.decimals
    record_user_event(
        user_id=withdrawal.user_id,
        event_type=WebhookEventType.WITHDRAWAL,
        event_id=f"withdrawal:{withdrawal.pk}:{withdrawal.status}",
        payload={
            "id": withdrawal.pk,
            "asset": asset.code,
            "amount": amount_text(withdrawal.amount, places),
            "fee": amount_text(withdrawal.fee, places),
            "address": withdrawal.address,
            "status": withdrawal.status,
            "external_txid": withdrawal.external_txid,
            "reject_reason": withdrawal.reject_reason,
            "created_at": epoch_ms(withdrawal.created_at),
            "decided_at": _ms_or_none(withdrawal.decided_at),
            "completed_at": _ms_or_none(withdrawal.completed_at),
        },
    )


def _ms_or_none(moment: datetime | None) -> int | None:
    return None if moment is None else epoch_ms(moment)
