"""The accept transaction: validated orders in, their rows, holds and commands written.

The one write path of order acceptance (place_order's guarantees, trading.services.orders):
the accept batcher applies every batch through `apply_batch`, and an order placed without
batching is a batch of one through the same function. In one durable transaction:

0. One query for the batch's users' fee tiers (markets.fees.tier_rates): each order's rates
   become the lower of its market's and its user's tier's (markets.fees.order_rates), and
   its hold is recomputed with them (validation.fee_hold), before any hold is reserved.
1. With several requests: the stored orders of their client_order_ids (idempotency), then
   accounts' HoldBook locks their (user, hold asset) balance rows in id order. In arrival
   order, in Python: a repeat of a stored or earlier-in-batch client_order_id gets that
   order back (DuplicateClientOrderId if the spec differs); an order whose hold does not fit
   what is left gets InsufficientFunds. Neither writes anything.
2. One statement for the accepted orders and their outbox rows (the commands get the order
   ids by jsonb_set), then accounts' `hold_funds_many` for their holds (one order_hold entry,
   ref "order:<id>", and two postings each; one guarded UPDATE per balance), then the audit
   rows of orders placed on someone's behalf; COMMIT.

A batch of one skips step 1: the order's unique (user, client_order_id) and the hold's
guarded UPDATE are its checks (as the single-order path always did), and their failure
rolls the transaction back and becomes the outcome. The caller publishes the outbox rows
returned, after commit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from django.db import IntegrityError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Model

from accounts.models import Asset, User
from accounts.services.audit import ActorContext, record_audit
from accounts.services.holds import Hold, HoldBook, hold_funds_many
from exchange import clock
from exchange.db import PreparedStatement
from exchange.errors import DomainError
from exchange.pgarray import decimal_array, int_array, text_array
from markets.fees import order_rates, tier_rates
from markets.models import Market
from trading.engine.commands import OrderType as EngineOrderType
from trading.engine.commands import PlaceOrder, Side, StpMode, TimeInForce, command_to_dict
from trading.errors import DuplicateClientOrderId
from trading.models import Order, OrderStatus, OutboxEntry
from trading.validation import OrderPlan, OrderSpec, fee_hold

_COID_CONSTRAINT = "order_user_coid"
_M = TypeVar("_M", bound=Model)


@dataclass(slots=True, eq=False)
class AcceptRequest:
    """One validated order to accept; `coid` is generated if the client gave none.

    `audit` is the context of someone placing it on the user's behalf (an audit row is
    written with the order), None for the user's own order.
    """

    user: User
    market: Market
    spec: OrderSpec
    plan: OrderPlan
    coid: str
    client_coid: bool  # the client chose `coid` (idempotency applies)
    hold_asset: Asset
    hold_amount: Decimal
    audit: ActorContext | None = None
    future: Future[Order] = field(default_factory=Future)
    # Set by the accept transaction (_fix_rates): the rates the order will pay.
    maker_fee_rate: Decimal = Decimal(0)
    taker_fee_rate: Decimal = Decimal(0)


Outcome = Order | DomainError


def apply_batch(batch: Sequence[AcceptRequest]) -> tuple[list[Outcome], list[OutboxEntry]]:
    """Accept the batch in one durable transaction; each request's outcome and the outbox
    rows written (in id order), to publish after commit.

    A batch of one always returns its outcome (a refusal rolled back). A larger batch
    raises, having written nothing, if its transaction fails as a whole (a client_order_id
    inserted concurrently by another process, a lost connection): apply each request on its
    own then. Precondition: not inside a transaction (tests: only the test's own).
    """
    if len(batch) != 1:
        return _apply(batch, checked=True)
    request = batch[0]
    try:
        return _apply(batch, checked=False)
    except DomainError as exc:
        return [exc], []
    except IntegrityError as exc:
        if not request.client_coid or _COID_CONSTRAINT not in str(exc):
            raise
    # A concurrent or earlier request holds this client_order_id; ours rolled back whole.
    try:
        stored = find_repeat(user=request.user, market=request.market, spec=request.spec)
    except DuplicateClientOrderId as exc:
        return [exc], []
    if stored is None:  # the holder rolled back after our insert failed: let the client retry
        return [
            DuplicateClientOrderId(
                "This client_order_id is being used by another request; retry.",
                field="client_order_id",
            )
        ], []
    return [stored], []


def _apply(
    batch: Sequence[AcceptRequest], *, checked: bool
) -> tuple[list[Outcome], list[OutboxEntry]]:
    outcomes: list[Outcome | None] = [None] * len(batch)
    same_as: dict[int, int] = {}  # request index -> earlier accepted index with its coid
    entries: list[OutboxEntry] = []
    now = clock.now()
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        _fix_rates(batch)
        accepted = _decide(cursor, batch, outcomes, same_as) if checked else list(range(len(batch)))
        if accepted:
            held = [batch[i] for i in accepted]
            orders, entries = _insert_orders(cursor, held, now=now)
            hold_funds_many(
                holds=[
                    Hold(user_id=r.user.pk, asset=r.hold_asset, amount=r.hold_amount, ref=ref)
                    for r, ref in zip(held, (f"order:{o.pk}" for o in orders), strict=True)
                ]
            )
            for i, order in zip(accepted, orders, strict=True):
                outcomes[i] = order
                if batch[i].audit is not None:
                    record_audit(action="order.place", target=order, context=batch[i].audit)
    for i, j in same_as.items():
        outcomes[i] = outcomes[j]
    final = [o for o in outcomes if o is not None]
    if len(final) != len(batch):
        raise RuntimeError("an accept request was left without an outcome")
    return final, entries


def _fix_rates(batch: Sequence[AcceptRequest]) -> None:
    """Step 0: each request's rates (market vs its user's tier) and the hold they need.

    Recomputed from the plan every time, so a request applied again (the one-by-one
    fallback) gets the same result. The rates can only be at most the market's, so the hold
    is at most what validation computed with the market's.
    """
    tiers = tier_rates({r.user.pk for r in batch})
    for r in batch:
        market = r.market
        maker, taker = order_rates(
            market_maker=market.maker_fee, market_taker=market.taker_fee, tier=tiers.get(r.user.pk)
        )
        r.maker_fee_rate, r.taker_fee_rate = maker, taker
        r.hold_amount = fee_hold(r.plan, maker=maker, taker=taker, places=market.quote.decimals)


def _decide(
    cursor: CursorWrapper,
    batch: Sequence[AcceptRequest],
    outcomes: list[Outcome | None],
    same_as: dict[int, int],
) -> list[int]:
    """Step 1: lock, then judge each request in arrival order; the indexes to write."""
    stored = _stored_orders(cursor, batch)
    book = HoldBook.lock(user_assets=[(r.user.pk, r.hold_asset.pk) for r in batch])
    taken: dict[tuple[int, str], int] = {}
    accepted: list[int] = []
    for i, request in enumerate(batch):
        key = (request.user.pk, request.coid)
        if request.client_coid and key in stored:
            found = stored[key]
            same = same_order(found, market=request.market, spec=request.spec)
            outcomes[i] = found if same else _different_order()
            continue
        if request.client_coid and key in taken:
            j = taken[key]
            if spec_key(batch[j].market.pk, batch[j].spec) == spec_key(
                request.market.pk, request.spec
            ):
                same_as[i] = j
            else:
                outcomes[i] = _different_order()
            continue
        try:
            book.reserve(
                user_id=request.user.pk, asset=request.hold_asset, amount=request.hold_amount
            )
        except DomainError as exc:
            outcomes[i] = exc
            continue
        accepted.append(i)
        taken[key] = i
    return accepted


# The stored orders of the batch's client-chosen ids (idempotency on (user, coid)).
_FIND_STORED = PreparedStatement(
    "trading_batch_find_stored",
    """
SELECT o.id FROM trading_order o
JOIN unnest(%(user_ids)s::bigint[], %(coids)s::text[]) AS k(user_id, coid)
  ON o.user_id = k.user_id AND o.client_order_id = k.coid
""",
)


def _stored_orders(
    cursor: CursorWrapper, batch: Sequence[AcceptRequest]
) -> dict[tuple[int, str], Order]:
    keys = sorted({(r.user.pk, r.coid) for r in batch if r.client_coid})
    if not keys:
        return {}
    _FIND_STORED.execute(
        cursor,
        {"user_ids": int_array([u for u, _ in keys]), "coids": text_array([c for _, c in keys])},
    )
    ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return {}
    return {(o.user_id, o.client_order_id): o for o in Order.objects.filter(pk__in=ids)}


def find_repeat(*, user: User, market: Market, spec: OrderSpec) -> Order | None:
    """The stored order of a repeated client_order_id, if any; raise if it differs."""
    stored = Order.objects.filter(user=user, client_order_id=spec.client_order_id).first()
    if stored is None:
        return None
    if not same_order(stored, market=market, spec=spec):
        raise _different_order()
    return stored


def _different_order() -> DuplicateClientOrderId:
    return DuplicateClientOrderId(
        "This client_order_id was already used for a different order.",
        field="client_order_id",
    )


# What makes two orders "the same" for idempotency: a repeat of a client_order_id must ask
# for exactly this again. Tuple equality compares amounts by value and None only to None.
SpecKey = tuple[object, ...]


def spec_key(market_id: int, spec: OrderSpec) -> SpecKey:
    return (
        market_id,
        spec.side,
        spec.order_type,
        spec.resolved_time_in_force,
        spec.stp_mode,
        spec.price,
        spec.stop_price,
        spec.quantity,
        spec.quote_amount,
    )


def same_order(order: Order, *, market: Market, spec: OrderSpec) -> bool:
    """Whether the stored order is what `spec` in `market` asks for."""
    stored: SpecKey = (
        order.market_id,
        order.side,
        order.order_type,
        order.time_in_force,
        order.stp_mode,
        order.price,
        order.stop_price,
        order.quantity,
        order.quote_amount,
    )
    return stored == spec_key(market.pk, spec)


# The orders (arrival order, so ids ascend with it) and their outbox rows, whose commands get
# the order ids by jsonb_set. Raw SQL: the command needs the order's id, which the ORM would
# only hand back after a round trip of its own. A (user, client_order_id) clash raises
# IntegrityError on order_user_coid, before any hold.
_INSERT_ORDERS = PreparedStatement(
    "trading_accept_insert_orders",
    """
WITH v AS (
    SELECT * FROM unnest(
        %(user_ids)s::bigint[], %(market_ids)s::bigint[], %(coids)s::text[], %(sides)s::text[],
        %(types)s::text[], %(tifs)s::text[], %(prices)s::numeric[], %(stop_prices)s::numeric[],
        %(quantities)s::numeric[], %(quote_amounts)s::numeric[], %(stp_modes)s::text[],
        %(hold_asset_ids)s::bigint[], %(holds)s::numeric[], %(payloads)s::text[],
        %(maker_rates)s::numeric[], %(taker_rates)s::numeric[]
    ) WITH ORDINALITY AS v(
        user_id, market_id, coid, side, order_type, tif, price, stop_price, quantity,
        quote_amount, stp_mode, hold_asset_id, hold, payload, maker_rate, taker_rate, n
    )
), o AS (
    INSERT INTO trading_order (
        user_id, market_id, client_order_id, side, order_type, time_in_force, price,
        stop_price, quantity, quote_amount, stp_mode, filled_quantity, filled_quote, fee_paid,
        hold_asset_id, hold_amount, hold_remaining, status, reject_reason, accepted_seq,
        created_at, updated_at, maker_fee_rate, taker_fee_rate
    )
    SELECT user_id, market_id, coid, side, order_type, tif, price, stop_price, quantity,
           quote_amount, stp_mode, 0, 0, 0, hold_asset_id, hold, hold, %(status)s, '', NULL,
           %(now)s, %(now)s, maker_rate, taker_rate
    FROM v ORDER BY n
    RETURNING id, user_id, client_order_id
), x AS (
    INSERT INTO trading_outboxentry (market_id, payload, created_at, published_at, stream_id)
    SELECT v.market_id, jsonb_set(v.payload::jsonb, '{order_id}', to_jsonb(o.id)), %(now)s,
           NULL, ''
    FROM v JOIN o ON o.user_id = v.user_id AND o.client_order_id = v.coid
    ORDER BY v.n
    RETURNING id, (payload ->> 'order_id')::bigint AS order_id
)
SELECT o.user_id, o.client_order_id, o.id, x.id FROM o JOIN x ON x.order_id = o.id
""",
)


def _insert_orders(
    cursor: CursorWrapper, held: Sequence[AcceptRequest], *, now: datetime
) -> tuple[list[Order], list[OutboxEntry]]:
    # order_id is filled in by the statement; the rest of the command is known already.
    payloads = [
        command_to_dict(
            build_place_command(
                order_id=0,
                account_id=r.user.pk,
                side=r.spec.side,
                stp_mode=r.spec.stp_mode,
                plan=r.plan,
            )
        )
        for r in held
    ]
    specs = [r.spec for r in held]
    _INSERT_ORDERS.execute(
        cursor,
        {
            "user_ids": int_array([r.user.pk for r in held]),
            "market_ids": int_array([r.market.pk for r in held]),
            "coids": text_array([r.coid for r in held]),
            "sides": text_array([s.side for s in specs]),
            "types": text_array([s.order_type for s in specs]),
            "tifs": text_array([s.resolved_time_in_force for s in specs]),
            "prices": decimal_array([s.price for s in specs]),
            "stop_prices": decimal_array([s.stop_price for s in specs]),
            "quantities": decimal_array([s.quantity for s in specs]),
            "quote_amounts": decimal_array([s.quote_amount for s in specs]),
            "stp_modes": text_array([s.stp_mode for s in specs]),
            "hold_asset_ids": int_array([r.hold_asset.pk for r in held]),
            "holds": decimal_array([r.hold_amount for r in held]),
            "payloads": text_array([json.dumps(p) for p in payloads]),
            "maker_rates": decimal_array([r.maker_fee_rate for r in held]),
            "taker_rates": decimal_array([r.taker_fee_rate for r in held]),
            "status": str(OrderStatus.NEW),
            "now": now,
        },
    )
    ids = {(user_id, coid): (order_id, entry_id) for user_id, coid, order_id, entry_id in cursor}
    orders: list[Order] = []
    entries: list[OutboxEntry] = []
    for r, payload in zip(held, payloads, strict=True):
        order_id, entry_id = ids[(r.user.pk, r.coid)]
        orders.append(loaded(_order_row(r, order_id=order_id, now=now)))
        payload["order_id"] = order_id
        entries.append(
            loaded(OutboxEntry(pk=entry_id, market=r.market, payload=payload, created_at=now))
        )
    entries.sort(key=lambda e: e.pk)
    return orders, entries


def _order_row(r: AcceptRequest, *, order_id: int, now: datetime) -> Order:
    s = r.spec
    return Order(
        pk=order_id,
        user=r.user,
        market=r.market,
        client_order_id=r.coid,
        side=s.side,
        order_type=s.order_type,
        time_in_force=s.resolved_time_in_force,
        price=s.price,
        stop_price=s.stop_price,
        quantity=s.quantity,
        quote_amount=s.quote_amount,
        stp_mode=s.stp_mode,
        hold_asset=r.hold_asset,
        hold_amount=r.hold_amount,
        hold_remaining=r.hold_amount,
        maker_fee_rate=r.maker_fee_rate,
        taker_fee_rate=r.taker_fee_rate,
        status=OrderStatus.NEW,
        created_at=now,
        updated_at=now,
    )


def loaded(instance: _M) -> _M:
    """Mark an instance built from a row we just inserted as saved (save() will UPDATE)."""
    instance._state.adding, instance._state.db = False, connection.alias
    return instance


def build_place_command(
    *, order_id: int, account_id: int, side: str, stp_mode: str, plan: OrderPlan
) -> PlaceOrder:
    """The engine command for an accepted order (engine ids: order pk and user id)."""
    return PlaceOrder(
        order_id=order_id,
        account_id=account_id,
        side=Side(side),
        order_type=EngineOrderType(plan.engine_order_type),
        tif=TimeInForce(plan.engine_time_in_force),
        price_ticks=plan.price_ticks,
        qty_lots=plan.qty_lots,
        quote_budget=plan.quote_budget,
        stop_ticks=plan.stop_ticks,
        stp_mode=StpMode(stp_mode),
    )
