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

Settlement (trading.services.settlement) calls ``record_settlement_events`` with the batch's
changed orders and trades as plain columns; it is the batch's one extra statement and
joins the endpoint table first, so users without an endpoint cost only an index probe.
The statement reads ``trading_order`` (client order id, type) and ``trading_trade`` (the
trade's id) by table name for the rows that have an endpoint: SQL, not an import, so the
layer rule (accounts never imports trading) holds; both tables are already locked or
written in settlement's transaction.
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
from exchange.pgarray import int_array, text_array

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

# Amounts arrive as integers of 1e-18 units (settlement's own representation) and leave as
# decimal strings without trailing zeros (trim_scale): exact, never a float.
_SETTLEMENT_SQL = """
WITH o AS (
    SELECT v.*, e.id AS endpoint_id
    FROM unnest(%(o_id)s::bigint[], %(o_user)s::bigint[], %(o_side)s::text[],
                %(o_status)s::text[], %(o_price)s::numeric[], %(o_quantity)s::numeric[],
                %(o_filled_quantity)s::numeric[], %(o_filled_quote)s::numeric[],
                %(o_fee)s::numeric[])
         AS v(id, user_id, side, status, price, quantity, filled_quantity, filled_quote, fee)
    JOIN accounts_webhookendpoint e
      ON e.user_id = v.user_id AND e.is_active AND 'order.update' = ANY(e.events)
), t AS (
    SELECT v.*, e.id AS endpoint_id
    FROM unnest(%(t_seq)s::bigint[], %(t_order)s::bigint[], %(t_user)s::bigint[],
                %(t_side)s::text[], %(t_maker)s::boolean[], %(t_price)s::numeric[],
                %(t_quantity)s::numeric[], %(t_quote)s::numeric[], %(t_fee)s::numeric[])
         AS v(seq, order_id, user_id, side, is_maker, price, quantity, quote, fee)
    JOIN accounts_webhookendpoint e
      ON e.user_id = v.user_id AND e.is_active AND 'trade' = ANY(e.events)
), events AS (
    SELECT o.endpoint_id, 'order:' || o.id || ':' || %(batch_seq)s AS event_id,
           'order.update' AS event_type,
           jsonb_build_object(
               'id', o.id, 'client_order_id', r.client_order_id, 'symbol', %(symbol)s,
               'side', o.side, 'type', r.order_type, 'status', o.status,
               'price', trim_scale(o.price * 1e-18)::text,
               'quantity', trim_scale(o.quantity * 1e-18)::text,
               'filled_quantity', trim_scale(o.filled_quantity * 1e-18)::text,
               'filled_quote', trim_scale(o.filled_quote * 1e-18)::text,
               'fee_paid', trim_scale(o.fee * 1e-18)::text,
               'updated_at', %(now_ms)s::bigint
           ) AS payload
    FROM o JOIN trading_order r ON r.id = o.id
    UNION ALL
    SELECT t.endpoint_id, 'trade:' || %(market_id)s || ':' || t.seq || ':' || t.side,
           'trade',
           jsonb_build_object(
               'id', (SELECT x.id FROM trading_trade x
                      WHERE x.market_id = %(market_id)s AND x.seq = t.seq),
               'seq', t.seq, 'symbol', %(symbol)s, 'order_id', t.order_id, 'side', t.side,
               'is_maker', t.is_maker,
               'price', trim_scale(t.price * 1e-18)::text,
               'quantity', trim_scale(t.quantity * 1e-18)::text,
               'quote_quantity', trim_scale(t.quote * 1e-18)::text,
               'fee', trim_scale(t.fee * 1e-18)::text,
               'fee_asset', (SELECT a.code FROM accounts_asset a WHERE a.id = %(fee_asset_id)s),
               'time', %(now_ms)s::bigint
           )
    FROM t
)
INSERT INTO accounts_webhookdelivery (endpoint_id, event_id, event_type, payload, status,
    attempts, next_attempt_at, last_error, created_at)
SELECT endpoint_id, event_id, event_type, payload, 'pending', 0, %(now)s, '', %(now)s
FROM events
ON CONFLICT (endpoint_id, event_id) DO NOTHING
"""


@dataclass(slots=True)
class OrderColumns:
    """Changed orders of a settlement batch, column by column; amounts in 1e-18 units
    (price and quantity None where the order has none)."""

    id: list[int] = field(default_factory=list)
    user_id: list[int] = field(default_factory=list)
    side: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    price_e18: list[int | None] = field(default_factory=list)
    quantity_e18: list[int | None] = field(default_factory=list)
    filled_quantity_e18: list[int] = field(default_factory=list)
    filled_quote_e18: list[int] = field(default_factory=list)
    fee_paid_e18: list[int] = field(default_factory=list)


@dataclass(slots=True)
class TradeColumns:
    """A settlement batch's trades, one row per side (buyer's and seller's), column by
    column; amounts in 1e-18 units, `fee_e18` the fee of that side."""

    seq: list[int] = field(default_factory=list)
    order_id: list[int] = field(default_factory=list)
    user_id: list[int] = field(default_factory=list)
    side: list[str] = field(default_factory=list)
    is_maker: list[bool] = field(default_factory=list)
    price_e18: list[int] = field(default_factory=list)
    quantity_e18: list[int] = field(default_factory=list)
    quote_e18: list[int] = field(default_factory=list)
    fee_e18: list[int] = field(default_factory=list)


def record_settlement_events(
    *,
    market_id: int,
    symbol: str,
    fee_asset_id: int,
    batch_seq: int,
    now: datetime,
    orders: OrderColumns,
    trades: TradeColumns,
) -> None:
    """Record `order.update` and `trade` events of one settled batch, in its transaction.

    One statement, none at all when the batch changed no order and made no trade.
    Idempotent on the event ids (module docstring); settlement applies a batch at most
    once, and even a second call with the same columns records nothing new.
    """
    if not orders.id and not trades.seq:
        return
    params: dict[str, Any] = {  # Any: array literals and scalars
        "market_id": market_id,
        "symbol": symbol,
        "fee_asset_id": fee_asset_id,
        "batch_seq": batch_seq,
        "now": now,
        "now_ms": epoch_ms(now),
        "o_id": int_array(orders.id),
        "o_user": int_array(orders.user_id),
        "o_side": text_array(orders.side),
        "o_status": text_array(orders.status),
        "o_price": int_array(orders.price_e18),
        "o_quantity": int_array(orders.quantity_e18),
        "o_filled_quantity": int_array(orders.filled_quantity_e18),
        "o_filled_quote": int_array(orders.filled_quote_e18),
        "o_fee": int_array(orders.fee_paid_e18),
        "t_seq": int_array(trades.seq),
        "t_order": int_array(trades.order_id),
        "t_user": int_array(trades.user_id),
        "t_side": text_array(trades.side),
        "t_maker": "{" + ",".join("t" if m else "f" for m in trades.is_maker) + "}",
        "t_price": int_array(trades.price_e18),
        "t_quantity": int_array(trades.quantity_e18),
        "t_quote": int_array(trades.quote_e18),
        "t_fee": int_array(trades.fee_e18),
    }
    with connection.cursor() as cursor:
        cursor.execute(_SETTLEMENT_SQL, params)


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
