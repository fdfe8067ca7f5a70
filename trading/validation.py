"""Order input: parsing raw values into an OrderSpec and checking it against a market.

Pure functions, no database access: they read only the attributes of the `Market` passed in
(its `base` and `quote` must be loaded), so they run before any lock is taken and are
testable without fixtures. Checks run in a fixed order, so an order with several faults
always gets the same error code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext

from accounts.amounts import (
    LEDGER_DECIMALS,
    MAX_AMOUNT_CHARS,
    decimal_places,
    parse_amount,
)
from accounts.errors import InvalidAmount
from markets.models import Market, MarketStatus
from trading.errors import InvalidOrder, MarketNotTrading
from trading.models import CLIENT_ORDER_ID_PATTERN, OrderSide, OrderType, StpMode, TimeInForce

ZERO = Decimal("0")
ONE = Decimal("1")
HUNDRED = Decimal("100")
# DecimalField(36, 18) holds 18 integer digits; anything larger is refused before arithmetic.
MAX_INTEGER_DIGITS = 18
# Wide enough for price x quantity x (1 + fee) of two 36-digit numbers without rounding.
_PRECISION = 80
_ENUM_MAX_CHARS = 16
_CLIENT_ORDER_ID = re.compile(CLIENT_ORDER_ID_PATTERN)
_PRICED = frozenset({OrderType.LIMIT, OrderType.LIMIT_MAKER, OrderType.STOP_LIMIT})
_MARKET_TYPES = frozenset({OrderType.MARKET, OrderType.STOP_MARKET})
_STOPS = frozenset({OrderType.STOP_LIMIT, OrderType.STOP_MARKET})
# Choices.values builds a new list on every access; these are read once per order.
_SIDES = tuple(OrderSide.values)
_ORDER_TYPES = tuple(OrderType.values)
_TIFS = tuple(TimeInForce.values)
_STP_MODES = tuple(StpMode.values)
# OrderSpec's amounts in parse_order_spec's order, so several faults give one fixed error.
_AMOUNT_FIELDS = ("price", "quantity", "quote_amount", "stop_price")


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """What a client asked for, with every amount already a Decimal.

    `time_in_force` None means the type's default (GTC for priced orders, IOC for market
    orders). `quantity` is in base; `quote_amount` only for market buys by quote amount.
    `client_order_id` None means the service generates one.
    """

    side: str
    order_type: str = OrderType.LIMIT
    time_in_force: str | None = None
    price: Decimal | None = None
    quantity: Decimal | None = None
    quote_amount: Decimal | None = None
    stop_price: Decimal | None = None
    client_order_id: str | None = None
    stp_mode: str = StpMode.NONE

    @property
    def resolved_time_in_force(self) -> str:
        if self.time_in_force is not None:
            return self.time_in_force
        return TimeInForce.IOC if self.order_type in _MARKET_TYPES else TimeInForce.GTC


@dataclass(frozen=True, slots=True)
class OrderPlan:
    """What accepting a valid spec means: the hold and the engine's integer fields.

    `hold_asset` is "base" or "quote". A market buy by base quantity is sent to the engine
    as an IOC limit at `protect_price` (the band's upper bound), so it can never cost more
    than its hold; `engine_order_type` says what the engine gets.
    """

    hold_asset: str
    hold_amount: Decimal
    engine_order_type: str
    engine_time_in_force: str
    price_ticks: int
    qty_lots: int
    quote_budget: int
    stop_ticks: int
    protect_price: Decimal | None
    # What the hold is before fees and which fee it adds ("none", "taker" or "max" of the
    # two): accept recomputes the hold with the order's own rates (fee_hold).
    hold_base: Decimal = ZERO
    hold_fee: str = "none"


def fee_hold(plan: OrderPlan, *, maker: Decimal, taker: Decimal, places: int) -> Decimal:
    """The hold of `plan` when the order pays (maker, taker): base x (1 + its fee), rounded
    up to the hold asset's `places`. With the market's rates this is `plan.hold_amount`."""
    if plan.hold_fee == "none":
        return plan.hold_base
    rate = taker if plan.hold_fee == "taker" else max(maker, taker)
    with localcontext(prec=_PRECISION):
        return round_up(plan.hold_base * (ONE + rate), places)


def parse_order_spec(data: Mapping[str, object]) -> OrderSpec:
    """Turn raw request values (strings, ints, Decimals) into an OrderSpec.

    Amounts follow accounts.amounts.parse_amount (plain positive decimals, no exponent,
    sign, NaN or Infinity, at most 40 characters); market-specific precision is checked
    later by `check_order_spec`. Empty strings and None mean "not given". Raises
    InvalidAmount or InvalidOrder with `field` set.
    """
    side = _parse_choice(data.get("side"), OrderSide.values, field="side")
    if side is None:
        raise InvalidOrder("side is required.", field="side", code="side_invalid")
    order_type = _parse_choice(
        data.get("order_type", data.get("type")), OrderType.values, field="order_type"
    )
    tif = _parse_choice(data.get("time_in_force"), TimeInForce.values, field="time_in_force")
    stp_mode = _parse_choice(data.get("stp_mode"), StpMode.values, field="stp_mode")
    coid = data.get("client_order_id")
    if coid in (None, ""):
        client_order_id = None
    elif isinstance(coid, str) and _CLIENT_ORDER_ID.fullmatch(coid):
        client_order_id = coid
    else:
        raise InvalidOrder(
            "client_order_id must be 1-36 characters of A-Z a-z 0-9 . : / _ -",
            field="client_order_id",
            code="client_order_id_invalid",
        )
    return OrderSpec(
        side=side,
        order_type=order_type or OrderType.LIMIT,
        time_in_force=tif,
        price=_parse_optional_amount(data.get("price"), field="price"),
        quantity=_parse_optional_amount(data.get("quantity"), field="quantity"),
        quote_amount=_parse_optional_amount(data.get("quote_amount"), field="quote_amount"),
        stop_price=_parse_optional_amount(data.get("stop_price"), field="stop_price"),
        client_order_id=client_order_id,
        stp_mode=stp_mode or StpMode.NONE,
    )


def _parse_choice(raw: object, choices: list[str], *, field: str) -> str | None:
    if raw is None or raw == "":
        return None
    value = raw.lower() if isinstance(raw, str) and len(raw) <= _ENUM_MAX_CHARS else None
    if value not in choices:
        raise InvalidOrder(
            f"{field} must be one of {', '.join(choices)}.", field=field, code=f"{field}_invalid"
        )
    return value


def _parse_optional_amount(raw: object, *, field: str) -> Decimal | None:
    if raw is None or raw == "":
        return None
    return parse_amount(raw, decimals=LEDGER_DECIMALS, field=field)


def check_spec_amounts(spec: OrderSpec) -> None:
    """Refuse a spec holding an amount parse_order_spec could not have produced. Pure.

    The services' own gate for specs built by hand (scripts, admin actions, other
    services): each amount must be a Decimal that parse_order_spec returns unchanged for
    its plain spelling. Raises InvalidAmount with the code and field parse_order_spec gives
    for that value: amount_invalid for NaN, sNaN, Infinity and exponent forms with no
    plain spelling (Decimal("1E+3")), amount_not_positive, amount_too_long. Without it a
    non-finite amount reached the idempotent-repeat comparison, where sNaN raises
    decimal.InvalidOperation and NaN never equals the stored value.
    """
    for field in _AMOUNT_FIELDS:
        value = getattr(spec, field)
        if value is None or _is_plain_amount(value):
            continue
        parsed = parse_amount(value, decimals=LEDGER_DECIMALS, field=field)
        # parse_amount rewrites only a positive exponent ("1E+3" -> "1000"); the string
        # "1E+3" is refused by parse_order_spec, so the Decimal is refused here.
        if not isinstance(value, Decimal) or parsed.as_tuple() != value.as_tuple():
            raise InvalidAmount(
                "Amount must be a plain decimal such as 12.5 (no sign, exponent or spaces).",
                field=field,
            )


def _is_plain_amount(value: object) -> bool:
    # The hot path's shortcut (parse_amount costs several microseconds per amount): true
    # only for values parse_amount accepts and returns unchanged, i.e. positive, finite, at
    # most 40 digits and 18 places, below 10^18, no positive exponent. Anything else takes
    # the full parse for its exact error.
    if type(value) is not Decimal:
        return False
    sign, digits, exponent = value.as_tuple()
    return (
        isinstance(exponent, int)
        and -LEDGER_DECIMALS <= exponent <= 0
        and sign == 0
        and len(digits) <= MAX_AMOUNT_CHARS
        and any(digits)
        and value.adjusted() < MAX_INTEGER_DIGITS
    )


def check_order_spec(*, market: Market, spec: OrderSpec) -> OrderPlan:
    """Check a spec against the market's rules and return what accepting it means.

    Order of checks: enum values and client id, market status, fields the type needs,
    price and stop price (positive, precision, tick, band), quantity or quote amount
    (positive, precision, lot, min/max), min notional, reference price for market buys.
    Raises MarketNotTrading or InvalidOrder; returns the plan otherwise.
    """
    _check_enums(spec)
    if market.status != MarketStatus.TRADING:
        code = (
            "market_cancel_only" if market.status == MarketStatus.CANCEL_ONLY else "market_halted"
        )
        raise MarketNotTrading(
            f"{market.symbol} is not accepting new orders ({market.status}).",
            field="market",
            code=code,
        )
    order_type, is_buy = spec.order_type, spec.side == OrderSide.BUY
    _check_presence(spec, is_buy=is_buy)
    quote_places = market.quote.decimals
    if spec.price is not None:
        _check_price(market, spec.price, field="price", places=quote_places, banded=True)
    if spec.stop_price is not None:
        _check_price(market, spec.stop_price, field="stop_price", places=quote_places, banded=False)
    if spec.quantity is not None:
        _check_quantity(market, spec.quantity)
    if spec.quote_amount is not None:
        _check_quote_amount(market, spec.quote_amount)

    reference = spec.price if order_type in _PRICED else (spec.stop_price or market.last_price)
    if spec.quantity is not None and reference is not None:
        with localcontext(prec=_PRECISION):
            notional = reference * spec.quantity
        if notional < market.min_notional:
            raise InvalidOrder(
                f"Order value {notional.normalize():f} is below the minimum "
                f"{market.min_notional.normalize():f}.",
                field="quantity",
                code="notional_below_minimum",
            )
    return _plan(market, spec, is_buy=is_buy)


def _check_enums(spec: OrderSpec) -> None:
    for field, value, choices in (
        ("side", spec.side, _SIDES),
        ("order_type", spec.order_type, _ORDER_TYPES),
        ("time_in_force", spec.resolved_time_in_force, _TIFS),
        ("stp_mode", spec.stp_mode, _STP_MODES),
    ):
        if value not in choices:
            raise InvalidOrder(
                f"{field} must be one of {', '.join(choices)}.",
                field=field,
                code=f"{field}_invalid",
            )
    tif = spec.resolved_time_in_force
    bad_tif = (
        (spec.order_type == OrderType.LIMIT_MAKER and tif != TimeInForce.GTC)
        or (spec.order_type in _MARKET_TYPES and tif == TimeInForce.GTC)
        or (spec.quote_amount is not None and tif == TimeInForce.FOK)
    )
    if bad_tif:
        raise InvalidOrder(
            f"time_in_force {tif} is not allowed for this order.",
            field="time_in_force",
            code="time_in_force_invalid",
        )
    coid = spec.client_order_id
    if coid is not None and not _CLIENT_ORDER_ID.fullmatch(coid):
        raise InvalidOrder(
            "client_order_id must be 1-36 characters of A-Z a-z 0-9 . : / _ -",
            field="client_order_id",
            code="client_order_id_invalid",
        )


def _check_presence(spec: OrderSpec, *, is_buy: bool) -> None:
    order_type = spec.order_type
    if order_type in _PRICED and spec.price is None:
        raise InvalidOrder("price is required.", field="price", code="price_required")
    if order_type not in _PRICED and spec.price is not None:
        raise InvalidOrder(
            "price is not allowed for market orders.", field="price", code="price_not_allowed"
        )
    if order_type in _STOPS and spec.stop_price is None:
        raise InvalidOrder(
            "stop_price is required.", field="stop_price", code="stop_price_required"
        )
    if order_type not in _STOPS and spec.stop_price is not None:
        raise InvalidOrder(
            "stop_price is only for stop orders.", field="stop_price", code="stop_price_not_allowed"
        )
    if spec.quote_amount is not None:
        if order_type not in _MARKET_TYPES or not is_buy:
            raise InvalidOrder(
                "quote_amount is only for market buys.",
                field="quote_amount",
                code="quote_amount_not_allowed",
            )
        if spec.quantity is not None:
            raise InvalidOrder(
                "Give quantity or quote_amount, not both.",
                field="quantity",
                code="quantity_not_allowed",
            )
    elif spec.quantity is None:
        raise InvalidOrder("quantity is required.", field="quantity", code="quantity_required")


def _positive_bounded(value: Decimal, *, field: str) -> None:
    if not value.is_finite() or value <= 0 or value.adjusted() >= MAX_INTEGER_DIGITS:
        raise InvalidOrder(
            f"{field} must be a positive number below 10^{MAX_INTEGER_DIGITS}.",
            field=field,
            code=f"{field}_invalid",
        )


def _check_places(value: Decimal, *, field: str, places: int) -> None:
    if decimal_places(value) > places:
        raise InvalidOrder(
            f"{field} has more than {places} decimal places.",
            field=field,
            code=f"{field}_too_precise",
        )


def _is_multiple(value: Decimal, step: Decimal) -> bool:
    with localcontext(prec=_PRECISION):
        return value % step == 0


def _check_price(market: Market, price: Decimal, *, field: str, places: int, banded: bool) -> None:
    _positive_bounded(price, field=field)
    _check_places(price, field=field, places=places)
    if not _is_multiple(price, market.tick_size):
        raise InvalidOrder(
            f"{field} must be a multiple of the tick size {market.tick_size.normalize():f}.",
            field=field,
            code=f"{field}_off_tick",
        )
    band = band_limits(market)
    if banded and band is not None and not band[0] <= price <= band[1]:
        raise InvalidOrder(
            f"{field} must lie between {band[0].normalize():f} and {band[1].normalize():f} "
            f"(±{market.price_band_pct.normalize():f}% of the last price).",
            field=field,
            code=f"{field}_out_of_band",
        )


def _check_quantity(market: Market, quantity: Decimal) -> None:
    _positive_bounded(quantity, field="quantity")
    _check_places(quantity, field="quantity", places=market.base.decimals)
    if not _is_multiple(quantity, market.lot_size):
        raise InvalidOrder(
            f"quantity must be a multiple of the lot size {market.lot_size.normalize():f}.",
            field="quantity",
            code="quantity_off_lot",
        )
    if quantity < market.min_quantity:
        raise InvalidOrder(
            f"quantity is below the minimum {market.min_quantity.normalize():f}.",
            field="quantity",
            code="quantity_below_minimum",
        )
    if quantity > market.max_quantity:
        raise InvalidOrder(
            f"quantity is above the maximum {market.max_quantity.normalize():f}.",
            field="quantity",
            code="quantity_above_maximum",
        )


def _check_quote_amount(market: Market, amount: Decimal) -> None:
    _positive_bounded(amount, field="quote_amount")
    _check_places(amount, field="quote_amount", places=market.quote.decimals)
    if amount < market.min_notional or quote_budget_units(market, amount) < 1:
        raise InvalidOrder(
            f"quote_amount is below the minimum order value {market.min_notional.normalize():f}.",
            field="quote_amount",
            code="quote_amount_too_small",
        )


def band_limits(market: Market) -> tuple[Decimal, Decimal] | None:
    """The (lowest, highest) limit price the band allows, or None when there is no band."""
    if market.last_price is None or market.price_band_pct <= 0:
        return None
    with localcontext(prec=_PRECISION):
        width = market.last_price * market.price_band_pct / HUNDRED
        return market.last_price - width, market.last_price + width


def quote_budget_units(market: Market, quote_amount: Decimal) -> int:
    """The engine's budget for a buy by quote amount: whole units of tick x lot, floored."""
    with localcontext(prec=_PRECISION):
        return int(
            (quote_amount / (market.tick_size * market.lot_size)).to_integral_value(
                rounding=ROUND_FLOOR
            )
        )


def round_up(value: Decimal, places: int) -> Decimal:
    """`value` rounded up (towards +infinity) to `places` decimals: holds never fall short."""
    with localcontext(prec=_PRECISION):
        return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_CEILING)


def _ticks(value: Decimal, step: Decimal) -> int:
    with localcontext(prec=_PRECISION):
        return int(value / step)


def _protect_price(market: Market, spec: OrderSpec) -> Decimal:
    """The worst price a market buy by base quantity may pay: the band's top, on a tick."""
    reference = market.last_price
    if spec.stop_price is not None:
        reference = max(spec.stop_price, reference or ZERO)
    if reference is None or market.price_band_pct <= 0:
        raise InvalidOrder(
            "Market buys by quantity need a last price and a price band; "
            "give quote_amount or a limit price.",
            field="quantity",
            code="market_no_reference_price",
        )
    with localcontext(prec=_PRECISION):
        top = reference * (HUNDRED + market.price_band_pct) / HUNDRED
        ticks = int((top / market.tick_size).to_integral_value(rounding=ROUND_FLOOR))
        return ticks * market.tick_size


def _given(value: Decimal | None) -> Decimal:
    # check_order_spec has established presence by type; this only narrows the type.
    if value is None:
        raise InvalidOrder("A required amount is missing.", code="order_invalid")
    return value


def _plan(market: Market, spec: OrderSpec, *, is_buy: bool) -> OrderPlan:
    order_type, tif = spec.order_type, spec.resolved_time_in_force
    engine_type = order_type
    protect: Decimal | None = None
    price = spec.price
    budget = 0
    fee_rate = max(market.maker_fee, market.taker_fee)
    if is_buy and order_type in _MARKET_TYPES and spec.quantity is not None:
        protect = price = _protect_price(market, spec)
        engine_type = OrderType.LIMIT if order_type == OrderType.MARKET else OrderType.STOP_LIMIT
    with localcontext(prec=_PRECISION):
        if not is_buy:
            hold_asset, hold = "base", _given(spec.quantity)
            base, fee = hold, "none"
        elif spec.quote_amount is not None:
            hold_asset = "quote"
            hold = round_up(spec.quote_amount * (ONE + market.taker_fee), market.quote.decimals)
            budget = quote_budget_units(market, spec.quote_amount)
            base, fee = spec.quote_amount, "taker"
        else:
            hold_asset = "quote"
            notional = _given(price) * _given(spec.quantity)
            hold = round_up(notional * (ONE + fee_rate), market.quote.decimals)
            base, fee = notional, "max"
    return OrderPlan(
        hold_asset=hold_asset,
        hold_amount=hold,
        engine_order_type=engine_type,
        engine_time_in_force=tif,
        price_ticks=_ticks(price, market.tick_size) if price is not None else 0,
        qty_lots=_ticks(spec.quantity, market.lot_size) if spec.quantity is not None else 0,
        quote_budget=budget,
        stop_ticks=_ticks(spec.stop_price, market.tick_size) if spec.stop_price else 0,
        protect_price=protect,
        hold_base=base,
        hold_fee=fee,
    )
