"""Staff decisions about a user: KYC level and freeze. Every change is audited."""

from __future__ import annotations

from django.db import transaction

from accounts.errors import InvalidInput
from accounts.models import KycLevel, User
from accounts.services._checks import check_staff
from accounts.services.audit import ActorContext, record_audit


@transaction.atomic(durable=True)
def set_kyc_level(
    *, staff: User, user: User, level: int, context: ActorContext | None = None
) -> User:
    """Set the user's KYC level (which selects their withdrawal limits).

    Writes `user.kyc_level_changed` with the old and new level, even when unchanged, so
    every staff decision is on record. Raises `kyc_level_invalid` for an unknown level.
    `context` supplies the audit row's IP address (the actor is always `staff`).
    """
    check_staff(staff)
    if isinstance(level, bool) or level not in KycLevel.values:
        raise InvalidInput("Unknown KYC level.", field="level", code="kyc_level_invalid")
    previous = User.objects.filter(pk=user.pk).values_list("kyc_level", flat=True).get()
    User.objects.filter(pk=user.pk).update(kyc_level=level)
    user.kyc_level = level
    record_audit(
        action="user.kyc_level_changed",
        actor=staff,
        target=user,
        details={"from": previous, "to": level},
        context=context,
    )
    return user


@transaction.atomic(durable=True)
def set_frozen(
    *, staff: User, user: User, is_frozen: bool, context: ActorContext | None = None
) -> User:
    """Freeze or unfreeze a user: frozen users cannot trade, withdraw or transfer.

    Writes `user.frozen` or `user.unfrozen`. Staff cannot freeze themselves.
    """
    check_staff(staff)
    if not isinstance(is_frozen, bool):
        raise InvalidInput("is_frozen must be true or false.", field="is_frozen")
    if is_frozen and staff.pk == user.pk:
        raise InvalidInput("Staff cannot freeze themselves.", field="user", code="user_invalid")
    User.objects.filter(pk=user.pk).update(is_frozen=is_frozen)
    user.is_frozen = is_frozen
    record_audit(
        action="user.frozen" if is_frozen else "user.unfrozen",
        actor=staff,
        target=user,
        context=context,
    )
    return user
