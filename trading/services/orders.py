"""Placing and cancelling orders: the one path for web, API, admin and scripts.

Accept = validate (pure, in the caller's thread), then ONE durable transaction holding the
funds and writing the order, its journal entry and its engine command's outbox row; after
commit the command goes to the market's input stream. That transaction is written by
`accept_write.apply_batch` alone: by default shared with the orders other threads of the
process are placing at the same moment (group commit, `accept_batch`), without batching a
batch of one. The engine's events, applied by settlement, decide every later state; this
module never fills or releases anything.
"""

from __future__ import annotations

import secrets
from decimal import localcontext

from django.db import transaction

from accounts.amounts import parse_amount
from accounts.errors import AccountFrozen
from accounts.models import User
from accounts.services.audit import ActorContext, record_audit
from exchange.errors import DomainError
from markets.models import Market, MarketStatus
from markets.selectors import get_current_market, get_market
from trading.engine.commands import CancelAll, CancelOrder, ReduceOrder
from trading.errors import InvalidOrder, MarketNotTrading, OrderNotFound, OrderNotOpen
from trading.models import OPEN_STATUSES, Order
from trading.services.accept_batch import accept
from trading.services.accept_write import AcceptRequest, find_repeat
from trading.services.outbox import write_outbox
from trading.validation import OrderSpec, check_order_spec, check_spec_amounts, parse_order_spec

__all__ = [
    "OrderSpec",
    "cancel_all",
    "cancel_order",
    "parse_order_spec",
    "place_order",
    "reduce_order",
]


def place_order(
    *, user: User, market: Market, spec: OrderSpec, context: ActorContext | None = None
) -> Order:
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
    when called inside a transaction (tests), the order is a batch of one, applied here.

    `context` (accounts.http.actor_context) names who acts and from where: when it is
    someone other than `user` (staff placing for the user), an "order.place" audit row with
    its IP is written in the accept transaction. The user's own orders are not audited.

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
        stored = find_repeat(user=user, market=market, spec=spec) if coid else None
        if stored is None:
            raise
        return stored
    hold_asset = market.base if plan.hold_asset == "base" else market.quote
    return accept(
        AcceptRequest(
            user=user,
            market=market,
            spec=spec,
            plan=plan,
            coid=coid or secrets.token_hex(16),  # 32 hex digits, like uuid4().hex
            client_coid=coid is not None,
            hold_asset=hold_asset,
            hold_amount=parse_amount(plan.hold_amount, asset=hold_asset),  # as holds check
            audit=_audited(user=user, actor=None, context=context),
        )
    )


def _audited(
    *, user: User, actor: User | None, context: ActorContext | None
) -> ActorContext | None:
    """The context to audit an order action with, or None for the user's own action.

    `actor` (the older keyword) always audits, with the context's IP if one is given.
    """
    if actor is not None:
        return ActorContext(user=actor, ip_address=context.ip_address if context else None)
    if context is not None and context.user is not None and context.user.pk != user.pk:
        return context
    return None


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
    context: ActorContext | None = None,
) -> Order:
    """Ask the engine to cancel one of the user's open orders; return the order as it is.

    Nothing changes here but an outbox row: the engine's Cancelled (or a fill that got there
    first) decides the outcome, and settlement releases the hold. Works in TRADING and
    CANCEL_ONLY markets, also for frozen users (cancelling only reduces exposure).
    Raises OrderNotFound for unknown ids and other users' orders alike, OrderNotOpen for a
    terminal order, MarketNotTrading (market_halted) when the market is halted. `context`
    (or the older `actor`) names staff cancelling on the user's behalf: audited, with the
    context's IP; the user's own cancels are not audited.
    """
    order = _find_own_order(user=user, order_id=order_id, client_order_id=client_order_id)
    _check_cancels_allowed(order.market)
    if not order.is_open:
        raise OrderNotOpen(f"The order is already {order.status}.", field="order_id")
    audit = _audited(user=user, actor=actor, context=context)
    with transaction.atomic(durable=True):
        write_outbox(
            market=order.market,
            command=CancelOrder(order_id=order.pk, account_id=user.pk),
            flush_account_id=user.pk,
        )
        if audit is not None:
            record_audit(action="order.cancel", target=order, context=audit)
    return order


def cancel_all(
    *,
    user: User,
    market: Market | None = None,
    actor: User | None = None,
    context: ActorContext | None = None,
) -> int:
    """Ask the engine to cancel all the user's open orders, in one market or everywhere.

    One CancelAll command per market that has open orders of the user, written in one
    transaction. With `market` given a halted market raises MarketNotTrading; without it,
    halted markets are skipped. Returns how many open orders the commands cover. `context`
    and `actor` are audited as in cancel_order.
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
    audit = _audited(user=user, actor=actor, context=context)
    with transaction.atomic(durable=True):
        for target in markets:
            write_outbox(
                market=target, command=CancelAll(account_id=user.pk), flush_account_id=user.pk
            )
        if audit is not None:
            record_audit(
                action="order.cancel_all",
                target=user,
                context=audit,
                details={"markets": [m.symbol for m in markets]},
            )
    return sum(counts[m.pk] for m in markets)


def reduce_order(
    *,
    user: User,
    remaining_quantity: object,
    order_id: int | str | None = None,
    client_order_id: str | None = None,
    context: ActorContext | None = None,
) -> Order:
    """Ask the engine to lower an open order's remaining quantity, keeping its priority.

    `remaining_quantity` is what is left to fill afterwards (not the new total): the engine
    knows the true remaining quantity, so a fill racing this request cannot make the
    reduction an increase; the engine refuses a value that is not below the remaining
    quantity it holds (its Rejected changes nothing), and settlement applies its Reduced
    (quantity lowered, the hold the removed part no longer needs released).

    Nothing changes here but an outbox row, as in cancel_order. Works in TRADING and
    CANCEL_ONLY markets (reducing only lowers exposure). Raises OrderNotFound for unknown
    ids and other users' orders alike, OrderNotOpen for a terminal order, MarketNotTrading
    (market_halted), InvalidAmount for a malformed amount (parse_amount's codes, with the
    base asset's places), and InvalidOrder with order_not_reducible (a market buy by quote
    amount has no quantity), quantity_off_lot or quantity_not_reduced (not below what the
    stored order has left). On any error nothing is written. `context` as in cancel_order.
    """
    order = _find_own_order(user=user, order_id=order_id, client_order_id=client_order_id)
    market = order.market
    _check_cancels_allowed(market)
    if not order.is_open:
        raise OrderNotOpen(f"The order is already {order.status}.", field="order_id")
    new_lots = _reduced_lots(order=order, market=market, remaining_quantity=remaining_quantity)
    audit = _audited(user=user, actor=None, context=context)
    with transaction.atomic(durable=True):
        write_outbox(
            market=market,
            command=ReduceOrder(order_id=order.pk, account_id=user.pk, new_qty_lots=new_lots),
            flush_account_id=user.pk,
        )
        if audit is not None:
            record_audit(
                action="order.reduce",
                target=order,
                context=audit,
                details={"remaining_quantity": f"{new_lots * market.lot_size:f}"},
            )
    return order


def _reduced_lots(*, order: Order, market: Market, remaining_quantity: object) -> int:
    """The engine's lots for a valid reduction of `order`; raises InvalidOrder otherwise."""
    remaining = order.remaining_quantity
    if remaining is None:
        raise InvalidOrder(
            "A market buy by quote amount has no quantity to reduce; cancel it instead.",
            field="order_id",
            code="order_not_reducible",
        )
    # The base asset's places, as place_order's quantity (amount_too_precise beyond them).
    amount = parse_amount(remaining_quantity, asset=market.base, field="remaining_quantity")
    with localcontext(prec=80):
        lots, rest = divmod(amount, market.lot_size)
    if rest:
        raise InvalidOrder(
            f"remaining_quantity must be a multiple of the lot size "
            f"{market.lot_size.normalize():f}.",
            field="remaining_quantity",
            code="quantity_off_lot",
        )
    if amount >= remaining:
        raise InvalidOrder(
            f"remaining_quantity must be below what the order has left "
            f"({remaining.normalize():f}); an increase is a new order.",
            field="remaining_quantity",
            code="quantity_not_reduced",
        )
    return int(lots)


def _check_cancels_allowed(market: Market) -> None:
    if market.status == MarketStatus.HALTED:
        raise MarketNotTrading(
            f"{market.symbol} is halted; orders cannot be cancelled until it resumes.",
            field="market",
            code="market_halted",
        )
