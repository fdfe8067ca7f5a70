"""Placing and cancelling orders: the one path for web, API, admin and scripts.

Accept = validate (pure, in the caller's thread), then ONE durable transaction holding the
funds and writing the order, its journal entry and its engine command's outbox row; after
commit the command goes to the market's input stream. By default that transaction is shared
with the orders other threads of the process are placing at the same moment (group commit,
`accept_batch`); the single-order path (two prepared statements: the order with its outbox
row, then accounts' `hold_funds`) is kept for ACCEPT_BATCHING off and as the batch's
fallback. The engine's events, applied by
settlement, decide every later state; this module never fills or releases anything.
"""

from __future__ import annotations

import json
import secrets
from decimal import Decimal
from typing import TypeVar

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.utils import timezone

from accounts.amounts import parse_amount
from accounts.errors import AccountFrozen
from accounts.models import Asset, User
from accounts.services.audit import record_audit
from accounts.services.ledger import hold_funds
from exchange.db import PreparedStatement
from exchange.errors import DomainError
from markets.models import Market, MarketStatus
from markets.selectors import get_current_market, get_market
from trading.engine.commands import (
    CancelAll,
    CancelOrder,
    PlaceOrder,
    Side,
    StpMode,
    TimeInForce,
    command_to_dict,
)
from trading.engine.commands import OrderType as EngineOrderType
from trading.errors import (
    DuplicateClientOrderId,
    InvalidOrder,
    MarketNotTrading,
    OrderNotFound,
    OrderNotOpen,
)
from trading.models import OPEN_STATUSES, Order, OrderStatus, OutboxEntry
from trading.services.outbox import publish_on_commit, write_outbox
from trading.validation import (
    OrderPlan,
    OrderSpec,
    check_order_spec,
    check_spec_amounts,
    parse_order_spec,
)

__all__ = ["OrderSpec", "cancel_all", "cancel_order", "parse_order_spec", "place_order"]

_COID_CONSTRAINT = "order_user_coid"
_M = TypeVar("_M", bound=Model)


def place_order(*, user: User, market: Market, spec: OrderSpec) -> Order:
    """Accept an order for matching and return it (status NEW).

    Guarantees: on success the order row, its hold (one balanced order_hold journal entry,
    ref "order:<id>", moving the hold from available to locked by a guarded update that
    cannot overdraw) and its engine command (an outbox row) have committed together, durably,
    before this returns, and the command has been XADDed to the market's input stream (or,
    if Redis failed, is left to the outbox sweeper, which re-sends it; the matching loop
    drops a re-sent cid). On any DomainError (InvalidOrder, InvalidAmount, MarketNotTrading,
    InsufficientFunds, AccountFrozen, DuplicateClientOrderId) nothing was written for this
    order. Concurrent calls on one account behave as if applied one after the other: a
    balance covering k of them accepts exactly k.

    Idempotent on (user, client_order_id): a repeat of a stored order returns that order
    and moves nothing, whatever the market or balance now says; the same id with a
    different spec raises DuplicateClientOrderId (also when the two arrive together). The
    market row is re-read, so a staff change (status, rules) applies to the next order
    without a restart.

    How: validation runs here, in the caller's thread. With settings.ACCEPT_BATCHING (the
    default) the request then goes to this process's accept batcher
    (trading.services.accept_batch), which commits the orders queued at that moment in one
    transaction (group commit) and falls back to one transaction per order if that batch
    fails as a whole; this call waits for its own outcome. With ACCEPT_BATCHING off, or
    when called inside a transaction (tests), the order gets its own transaction here.

    An amount that parse_order_spec would refuse (NaN, sNaN, Infinity, exponent forms,
    negative) is refused first with the same InvalidAmount, also when the client id is
    stored: a spec need not have come through parse_order_spec.

    Precondition: not inside a transaction (the accept transaction is durable).
    """
    check_spec_amounts(spec)
    if user.is_frozen:
        raise AccountFrozen("This account is frozen and cannot trade.", field=None)
    market = get_current_market(market_id=market.pk)
    coid = spec.client_order_id
    try:
        plan = check_order_spec(market=market, spec=spec)
    except DomainError:
        # A retry of an accepted order must get that order back even if the market or its
        # rules moved since; only a first attempt is judged by today's rules.
        stored = _find_repeat(user=user, market=market, spec=spec) if coid else None
        if stored is None:
            raise
        return stored
    if not settings.ACCEPT_BATCHING or connection.in_atomic_block:
        return accept_single(user=user, market=market, spec=spec, plan=plan, coid=coid)
    from trading.services.accept_batch import AcceptRequest, get_batcher  # imports this module

    hold_asset = market.base if plan.hold_asset == "base" else market.quote
    request = AcceptRequest(
        user=user,
        market=market,
        spec=spec,
        plan=plan,
        coid=coid or secrets.token_hex(16),  # 32 hex digits, like uuid4().hex
        client_coid=coid is not None,
        hold_asset=hold_asset,
        hold_amount=parse_amount(plan.hold_amount, asset=hold_asset),  # as hold_funds checks
    )
    return get_batcher().submit(request).result()


def accept_single(
    *, user: User, market: Market, spec: OrderSpec, plan: OrderPlan, coid: str | None
) -> Order:
    """Accept one validated order in its own durable transaction (place_order's guarantees).

    The path without batching, and the batcher's fallback when a batch fails as a whole.
    """
    try:
        return _accept(user=user, market=market, spec=spec, plan=plan, coid=coid)
    except IntegrityError as exc:
        if coid is None or _COID_CONSTRAINT not in str(exc):
            raise
    # A concurrent or earlier request holds this client_order_id; ours rolled back whole.
    stored = _find_repeat(user=user, market=market, spec=spec)
    if stored is None:  # the holder rolled back after our insert failed: let the client retry
        raise DuplicateClientOrderId(
            "This client_order_id is being used by another request; retry.",
            field="client_order_id",
        )
    return stored


def _accept(
    *, user: User, market: Market, spec: OrderSpec, plan: OrderPlan, coid: str | None
) -> Order:
    hold_asset = market.base if plan.hold_asset == "base" else market.quote
    with transaction.atomic(durable=True):
        order, entry = _apply_insert_order(
            user=user, market=market, spec=spec, plan=plan, coid=coid, hold_asset=hold_asset
        )
        hold_funds(user=user, asset=hold_asset, amount=plan.hold_amount, ref=f"order:{order.pk}")
        publish_on_commit(entry=entry)
    return order


# Raw SQL: the order row and its outbox row in one prepared statement (the command needs the
# order's id, which the ORM would only hand back after a round trip of its own), and the
# ORM's create() was the largest client-side cost of the accept when profiled. A
# (user, client_order_id) clash raises IntegrityError on order_user_coid before the hold,
# as before; the whole transaction then rolls back.
_INSERT_ORDER = PreparedStatement(
    "trading_insert_order",
    """
WITH o AS (
    INSERT INTO trading_order (
        user_id, market_id, client_order_id, side, order_type, time_in_force, price,
        stop_price, quantity, quote_amount, stp_mode, filled_quantity, filled_quote, fee_paid,
        hold_asset_id, hold_amount, hold_remaining, status, reject_reason, accepted_seq,
        created_at, updated_at
    ) VALUES (
        %(user_id)s, %(market_id)s, %(coid)s, %(side)s, %(order_type)s, %(tif)s, %(price)s,
        %(stop_price)s, %(quantity)s, %(quote_amount)s, %(stp_mode)s, 0, 0, 0,
        %(hold_asset_id)s, %(hold)s, %(hold)s, %(status)s, '', NULL, %(now)s, %(now)s
    )
    RETURNING id
)
INSERT INTO trading_outboxentry (market_id, payload, created_at, published_at, stream_id)
SELECT %(market_id)s, jsonb_set(%(payload)s::jsonb, '{order_id}', to_jsonb(o.id)), %(now)s,
       NULL, ''
FROM o
RETURNING id, (payload ->> 'order_id')::bigint
""",
)


def _apply_insert_order(
    *,
    user: User,
    market: Market,
    spec: OrderSpec,
    plan: OrderPlan,
    coid: str | None,
    hold_asset: Asset,
) -> tuple[Order, OutboxEntry]:
    """Insert the order (status NEW) and its engine command; assumes a validated spec.

    Precondition: inside the accept transaction, which also holds the funds.
    """
    now = timezone.now()
    fields = {
        "user": user,
        "market": market,
        "client_order_id": coid or secrets.token_hex(16),  # 32 hex digits, like uuid4().hex
        "side": spec.side,
        "order_type": spec.order_type,
        "time_in_force": spec.resolved_time_in_force,
        "price": spec.price,
        "stop_price": spec.stop_price,
        "quantity": spec.quantity,
        "quote_amount": spec.quote_amount,
        "stp_mode": spec.stp_mode,
        "hold_asset": hold_asset,
        "hold_amount": plan.hold_amount,
        "hold_remaining": plan.hold_amount,
        "status": OrderStatus.NEW,
        "created_at": now,
        "updated_at": now,
    }
    # order_id is filled in by the statement; the rest of the command is known already.
    command = build_place_command(
        order_id=0, account_id=user.pk, side=spec.side, stp_mode=spec.stp_mode, plan=plan
    )
    payload = command_to_dict(command)
    with connection.cursor() as cursor:
        _INSERT_ORDER.execute(
            cursor,
            {
                "user_id": user.pk,
                "market_id": market.pk,
                "coid": fields["client_order_id"],
                "side": spec.side,
                "order_type": spec.order_type,
                "tif": fields["time_in_force"],
                "price": spec.price,
                "stop_price": spec.stop_price,
                "quantity": spec.quantity,
                "quote_amount": spec.quote_amount,
                "stp_mode": spec.stp_mode,
                "hold_asset_id": hold_asset.pk,
                "hold": plan.hold_amount,
                "status": str(OrderStatus.NEW),
                "now": now,
                "payload": json.dumps(payload),
            },
        )
        entry_id, order_id = cursor.fetchone()
    payload["order_id"] = order_id
    order = loaded(Order(pk=order_id, **fields))
    entry = loaded(OutboxEntry(pk=entry_id, market=market, payload=payload, created_at=now))
    return order, entry


def loaded(instance: _M) -> _M:
    """Mark an instance built from a row we just inserted as saved (save() will UPDATE)."""
    instance._state.adding, instance._state.db = False, connection.alias
    return instance


def place_command(*, order: Order, plan: OrderPlan) -> PlaceOrder:
    """The engine command for an accepted order (engine ids: order pk and user id)."""
    return build_place_command(
        order_id=order.pk,
        account_id=order.user_id,
        side=order.side,
        stp_mode=order.stp_mode,
        plan=plan,
    )


def build_place_command(
    *, order_id: int, account_id: int, side: str, stp_mode: str, plan: OrderPlan
) -> PlaceOrder:
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


def _find_repeat(*, user: User, market: Market, spec: OrderSpec) -> Order | None:
    """The stored order of a repeated client_order_id, if any; raise if it differs."""
    stored = Order.objects.filter(user=user, client_order_id=spec.client_order_id).first()
    if stored is None:
        return None
    if not same_order(stored, market=market, spec=spec):
        raise DuplicateClientOrderId(
            "This client_order_id was already used for a different order.",
            field="client_order_id",
        )
    return stored


def _same_decimal(stored: Decimal | None, given: Decimal | None) -> bool:
    return stored == given if stored is not None and given is not None else stored is given


def same_order(order: Order, *, market: Market, spec: OrderSpec) -> bool:
    return (
        order.market_id == market.pk
        and order.side == spec.side
        and order.order_type == spec.order_type
        and order.time_in_force == spec.resolved_time_in_force
        and order.stp_mode == spec.stp_mode
        and _same_decimal(order.price, spec.price)
        and _same_decimal(order.stop_price, spec.stop_price)
        and _same_decimal(order.quantity, spec.quantity)
        and _same_decimal(order.quote_amount, spec.quote_amount)
    )


def _find_own_order(
    *, user: User, order_id: int | str | None, client_order_id: str | None
) -> Order:
    if (order_id is None) == (client_order_id is None):
        raise InvalidOrder(
            "Give exactly one of order_id and client_order_id.",
            field="order_id",
            code="order_id_required",
        )
    orders = Order.objects.select_related("market").filter(user=user)
    if order_id is not None:
        text = str(order_id)
        # Anything but a plain id looks like an unknown order, never a 500.
        found = (
            orders.filter(pk=int(text)).first()
            if text.isascii() and text.isdigit() and len(text) < 19
            else None
        )
    else:
        found = orders.filter(client_order_id=client_order_id).first()
    if found is None:
        raise OrderNotFound("No such order.", field="order_id")
    return found


def cancel_order(
    *,
    user: User,
    order_id: int | str | None = None,
    client_order_id: str | None = None,
    actor: User | None = None,
) -> Order:
    """Ask the engine to cancel one of the user's open orders; return the order as it is.

    Nothing changes here but an outbox row: the engine's Cancelled (or a fill that got there
    first) decides the outcome, and settlement releases the hold. Works in TRADING and
    CANCEL_ONLY markets, also for frozen users (cancelling only reduces exposure).
    Raises OrderNotFound for unknown ids and other users' orders alike, OrderNotOpen for a
    terminal order, MarketNotTrading (market_halted) when the market is halted. `actor` is
    the staff member cancelling on the user's behalf (audited).
    """
    order = _find_own_order(user=user, order_id=order_id, client_order_id=client_order_id)
    _check_cancels_allowed(order.market)
    if not order.is_open:
        raise OrderNotOpen(f"The order is already {order.status}.", field="order_id")
    with transaction.atomic(durable=True):
        write_outbox(
            market=order.market,
            command=CancelOrder(order_id=order.pk, account_id=user.pk),
            flush_account_id=user.pk,
        )
        if actor is not None:
            record_audit(action="order.cancel", actor=actor, target=order)
    return order


def cancel_all(*, user: User, market: Market | None = None, actor: User | None = None) -> int:
    """Ask the engine to cancel all the user's open orders, in one market or everywhere.

    One CancelAll command per market that has open orders of the user, written in one
    transaction. With `market` given a halted market raises MarketNotTrading; without it,
    halted markets are skipped. Returns how many open orders the commands cover.
    """
    open_orders = Order.objects.filter(user=user, status__in=OPEN_STATUSES)
    if market is not None:
        _check_cancels_allowed(get_market(market_id=market.pk))
        open_orders = open_orders.filter(market=market)
    counts: dict[int, int] = {}
    for market_id in open_orders.values_list("market_id", flat=True):
        counts[market_id] = counts.get(market_id, 0) + 1
    markets = [
        m
        for m in Market.objects.filter(pk__in=counts).order_by("pk")
        if m.status != MarketStatus.HALTED
    ]
    if not markets:
        return 0
    with transaction.atomic(durable=True):
        for target in markets:
            write_outbox(
                market=target, command=CancelAll(account_id=user.pk), flush_account_id=user.pk
            )
        if actor is not None:
            record_audit(
                action="order.cancel_all",
                actor=actor,
                target=user,
                details={"markets": [m.symbol for m in markets]},
            )
    return sum(counts[m.pk] for m in markets)


def _check_cancels_allowed(market: Market) -> None:
    if market.status == MarketStatus.HALTED:
        raise MarketNotTrading(
            f"{market.symbol} is halted; orders cannot be cancelled until it resumes.",
            field="market",
            code="market_halted",
        )
