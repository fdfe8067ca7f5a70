"""Staff changes to markets: status (halt, cancel-only, resume), trading rules, fee tiers.

Every change is one short transaction with its audit row. Order services re-read the market
row on every request, so a change applies to the next order without a restart; the matching
loop reads the status per batch.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, connection, transaction

from accounts.models import User
from accounts.services.audit import ActorContext, record_audit
from markets.errors import InvalidFeeTier, InvalidMarketRules
from markets.models import FeeTier, Market, MarketStatus
from markets.sql import last_price_update

# Rules staff may edit on a live market. tick_size and lot_size are not among them: resting
# orders are integers of ticks and lots inside the engine, so changing either would reprice
# the book; that needs an empty book and a migration, not a form.
EDITABLE_RULES = (
    "min_quantity",
    "max_quantity",
    "min_notional",
    "maker_fee",
    "taker_fee",
    "price_band_pct",
)


def set_market_status(
    *,
    market: Market,
    status: str,
    actor: User,
    reason: str = "",
    context: ActorContext | None = None,
) -> Market:
    """Set TRADING, CANCEL_ONLY or HALTED and audit it; returns the updated market.

    Idempotent: setting the current status writes nothing. The audit row takes its IP
    address from `context`; the actor is `actor`.
    """
    if status not in MarketStatus.values:
        raise InvalidMarketRules(f"Unknown status {status!r}.", field="status")
    with transaction.atomic():
        locked = Market.objects.select_for_update(no_key=True).get(pk=market.pk)
        if locked.status == status:
            return locked
        previous = locked.status
        locked.status = status
        locked.save(update_fields=["status", "updated_at"])
        record_audit(
            action="market.status",
            actor=actor,
            target=locked,
            details={"from": previous, "to": status, "reason": reason[:200]},
            context=context,
        )
    return locked


def halt_market(
    *, market: Market, actor: User, reason: str = "", context: ActorContext | None = None
) -> Market:
    """Stop new orders and cancels (HALTED)."""
    return set_market_status(
        market=market, status=MarketStatus.HALTED, actor=actor, reason=reason, context=context
    )


def resume_market(
    *, market: Market, actor: User, reason: str = "", context: ActorContext | None = None
) -> Market:
    """Accept orders and cancels again (TRADING)."""
    return set_market_status(
        market=market, status=MarketStatus.TRADING, actor=actor, reason=reason, context=context
    )


def set_last_price(*, market_id: int, price: Decimal | None) -> None:
    """Set the market's last trade price (None: leave it). Settlement embeds the same
    UPDATE (markets.sql.last_price_update) in its batch statement instead of calling this.

    Precondition: inside the transaction that wrote the trade.
    """
    with connection.cursor() as cursor:
        cursor.execute(last_price_update(), {"market_id": market_id, "last_price": price})


def update_market_rules(
    *,
    market: Market,
    actor: User,
    changes: dict[str, Decimal],
    context: ActorContext | None = None,
) -> Market:
    """Change editable rules (EDITABLE_RULES) of a market and audit old and new values.

    Raises InvalidMarketRules for an unknown or non-editable field or an inconsistent
    result (negative values, min above max, fees not in [0, 1), band not in [0, 100)).
    """
    unknown = set(changes) - set(EDITABLE_RULES)
    if unknown:
        raise InvalidMarketRules(
            f"Not editable: {', '.join(sorted(unknown))}.", field=sorted(unknown)[0]
        )
    with transaction.atomic():
        locked = Market.objects.select_for_update(no_key=True).get(pk=market.pk)
        before = {name: str(getattr(locked, name)) for name in changes}
        for name, value in changes.items():
            setattr(locked, name, value)
        _check_rules(locked)
        locked.save(update_fields=[*changes, "updated_at"])
        record_audit(
            action="market.rules",
            actor=actor,
            target=locked,
            details={"before": before, "after": {k: str(v) for k, v in changes.items()}},
            context=context,
        )
    return locked


def _check_rules(market: Market) -> None:
    checks = (
        ("min_quantity", market.min_quantity >= 0),
        ("max_quantity", market.max_quantity >= market.min_quantity),
        ("min_notional", market.min_notional >= 0),
        ("maker_fee", 0 <= market.maker_fee < 1),
        ("taker_fee", 0 <= market.taker_fee < 1),
        ("price_band_pct", 0 <= market.price_band_pct < 100),
    )
    for field, ok in checks:
        if not ok:
            raise InvalidMarketRules(f"{field} is out of range.", field=field)


# --- the fee schedule (markets.FeeTier)

FEE_TIER_FIELDS = ("name", "min_volume_30d", "maker_fee", "taker_fee")
_RATE_PLACES = 6  # markets.models.RATE: decimal_places
_MONEY_PLACES = 18


def save_fee_tier(
    *,
    tier: FeeTier | None,
    values: dict[str, object],
    actor: User,
    context: ActorContext | None = None,
) -> FeeTier:
    """Create a fee tier (`tier` None) or change one, audited with before and after.

    What a change does: new rates apply to the next order of every user on the tier (the
    accept transaction reads them per batch); orders already accepted keep the rates stored
    on them, so their holds stay right. A new threshold applies at the next assignment
    (nightly, or `manage.py assign_fee_tiers`). Raises InvalidFeeTier (field, reason) for an
    empty or long name, a negative threshold, a rate outside [0, 1), too many decimals, or a
    name or threshold another tier has; nothing is written then.
    """
    unknown = set(values) - set(FEE_TIER_FIELDS)
    if unknown:
        field = sorted(unknown)[0]
        raise InvalidFeeTier(f"Not a fee tier field: {field}.", field=field)
    with transaction.atomic():
        if tier is None:
            locked = FeeTier()
            missing = [name for name in FEE_TIER_FIELDS if name not in values]
            if missing:
                raise InvalidFeeTier(f"{missing[0]} is required.", field=missing[0])
            before: dict[str, str] = {}
        else:
            locked = FeeTier.objects.select_for_update().get(pk=tier.pk)
            before = {name: str(getattr(locked, name)) for name in values}
        for name, value in values.items():
            setattr(locked, name, clean_fee_tier_value(name, value))
        try:
            with transaction.atomic():
                locked.save()
        except IntegrityError as exc:
            field = "name" if "name" in str(exc) else "min_volume_30d"
            raise InvalidFeeTier(f"Another tier has this {field}.", field=field) from exc
        record_audit(
            action="fee_tier.created" if tier is None else "fee_tier.changed",
            actor=actor,
            target=locked,
            details={
                "before": before,
                "after": {name: str(getattr(locked, name)) for name in values},
            },
            context=context,
        )
    return locked


def delete_fee_tier(*, tier: FeeTier, actor: User, context: ActorContext | None = None) -> None:
    """Delete a tier, audited. Its users pay their markets' fees from their next order until
    the next assignment gives them another tier; accepted orders keep their stored rates."""
    with transaction.atomic():
        locked = FeeTier.objects.select_for_update().filter(pk=tier.pk).first()
        if locked is None:
            return
        details = {"before": {name: str(getattr(locked, name)) for name in FEE_TIER_FIELDS}}
        record_audit(
            action="fee_tier.deleted", actor=actor, target=locked, details=details, context=context
        )
        locked.delete()


def clean_fee_tier_value(name: str, value: object) -> object:
    """One field of a fee tier, checked (the admin form runs it too); raises InvalidFeeTier."""
    if name == "name":
        text = str(value).strip() if value is not None else ""
        if not text or len(text) > 64:
            raise InvalidFeeTier("The name must be 1 to 64 characters.", field=name)
        return text
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidFeeTier(f"{name} must be a decimal number.", field=name)
    places = _MONEY_PLACES if name == "min_volume_30d" else _RATE_PLACES
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise InvalidFeeTier(f"{name} has more than {places} decimals.", field=name)
    if name == "min_volume_30d":
        if value < 0:
            raise InvalidFeeTier("The threshold must be 0 or more.", field=name)
        if value >= Decimal(10) ** 18:
            raise InvalidFeeTier("The threshold is too large.", field=name)
    elif not 0 <= value < 1:
        raise InvalidFeeTier(f"{name} must be at least 0 and below 1.", field=name)
    return value
