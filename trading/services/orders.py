"""Placing and cancelling orders: the one path for web, API, admin and scripts.

Accept = validate (pure), then ONE durable transaction: insert the order, hold its funds
(conditional update through accounts' ledger), write the engine command to the outbox.
After commit the command goes to the market's input stream. The engine's events, applied by
settlement, decide every later state; this module never fills or releases anything.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import IntegrityError, transaction

from accounts.errors import AccountFrozen
from accounts.models import User
from accounts.services.audit import record_audit
from accounts.services.ledger import hold_funds
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
)
from trading.engine.commands import OrderType as EngineOrderType
from trading.errors import (
    DuplicateClientOrderId,
    InvalidOrder,
    MarketNotTrading,
    OrderNotFound,
    OrderNotOpen,
)
from trading.models import OPEN_STATUSES, Order
from trading.services.outbox import write_outbox
from trading.validation import OrderPlan, OrderSpec, check_order_spec, parse_order_spec

__all__ = ["OrderSpec", "cancel_all", "cancel_order", "parse_order_spec", "place_order"]

_COID_CONSTRAINT = "order_user_coid"


def place_order(*, user: User, market: Market, spec: OrderSpec) -> Order:
    """Accept an order for matching and return it (status NEW).

    Guarantees: on success the order row, its hold (one balanced journal entry moving the
    hold from available to locked) and its engine command (an outbox row) commit together,
    and the command is sent to the market's input stream after commit. On any DomainError
    (InvalidOrder, MarketNotTrading, InsufficientFunds, AccountFrozen,
    DuplicateClientOrderId) nothing is written.

    Idempotent on (user, client_order_id): a repeat of a stored order returns that order
    and moves nothing, whatever the market or balance now says; the same id with a
    different spec raises DuplicateClientOrderId. The market row is re-read, so a staff
    change (status, rules) applies to the next order without a restart.

    Precondition: not inside a transaction (the accept transaction is durable).
    """
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
        order = Order.objects.create(
            user=user,
            market=market,
            client_order_id=coid or uuid.uuid4().hex,
            side=spec.side,
            order_type=spec.order_type,
            time_in_force=spec.resolved_time_in_force,
            price=spec.price,
            stop_price=spec.stop_price,
            quantity=spec.quantity,
            quote_amount=spec.quote_amount,
            stp_mode=spec.stp_mode,
            hold_asset=hold_asset,
            hold_amount=plan.hold_amount,
            hold_remaining=plan.hold_amount,
        )
        hold_funds(user=user, asset=hold_asset, amount=plan.hold_amount, ref=f"order:{order.pk}")
        write_outbox(market=market, command=place_command(order=order, plan=plan))
    return order


def place_command(*, order: Order, plan: OrderPlan) -> PlaceOrder:
    """The engine command for an accepted order (engine ids: order pk and user id)."""
    return PlaceOrder(
        order_id=order.pk,
        account_id=order.user_id,
        side=Side(order.side),
        order_type=EngineOrderType(plan.engine_order_type),
        tif=TimeInForce(plan.engine_time_in_force),
        price_ticks=plan.price_ticks,
        qty_lots=plan.qty_lots,
        quote_budget=plan.quote_budget,
        stop_ticks=plan.stop_ticks,
        stp_mode=StpMode(order.stp_mode),
    )


def _find_repeat(*, user: User, market: Market, spec: OrderSpec) -> Order | None:
    """The stored order of a repeated client_order_id, if any; raise if it differs."""
    stored = Order.objects.filter(user=user, client_order_id=spec.client_order_id).first()
    if stored is None:
        return None
    if not _same_order(stored, market=market, spec=spec):
        raise DuplicateClientOrderId(
            "This client_order_id was already used for a different order.",
            field="client_order_id",
        )
    return stored


def _same_decimal(stored: Decimal | None, given: Decimal | None) -> bool:
    return stored == given if stored is not None and given is not None else stored is given


def _same_order(order: Order, *, market: Market, spec: OrderSpec) -> bool:
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
