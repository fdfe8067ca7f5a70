"""Withdrawals: request (hold), then staff approve, complete or reject.

Lifecycle: pending -> approved -> completed, or pending/approved -> rejected. The amount
plus the fee stays locked from the request until the decision. Each decision is claimed
with a conditional UPDATE on `status`, so a double click or two staff members cannot apply
a decision twice.
Each state change records the user's `withdrawal` webhooks in its own transaction
(accounts.webhooks.record): the event commits with the change, or not at all.
"""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal

from allauth.mfa.models import Authenticator
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.amounts import money_context, parse_amount
from accounts.errors import (
    AccountFrozen,
    AssetUnavailable,
    InsufficientFunds,
    InvalidAddress,
    InvalidAmount,
    InvalidInput,
    NotFound,
    TwoFactorRequired,
    WithdrawalLimitExceeded,
    WithdrawalStateConflict,
)
from accounts.locks import lock_balances
from accounts.models import (
    ZERO,
    Asset,
    BalanceKind,
    Bucket,
    EntryKind,
    User,
    Withdrawal,
    WithdrawalLimit,
    WithdrawalStatus,
)
from accounts.services._checks import check_reference, check_staff, check_text, fresh_asset
from accounts.services.audit import ActorContext, record_audit
from accounts.services.balance_stream import publish_balance_on_commit
from accounts.services.ledger import Move, apply_moves
from accounts.webhooks.record import record_withdrawal_event


def request_withdrawal(*, user: User, asset: Asset, amount: Decimal, address: str) -> Withdrawal:
    """Accept a withdrawal request and lock its amount plus the asset's fee.

    Checks, in order: amount (asset decimals, >= min_withdrawal), asset active, address,
    TOTP set up (`two_factor_required`; the view verifies the code itself), user not
    frozen, the daily limit of the user's KYC level (no limit row = not allowed), funds.
    Concurrency: the user's balance row is locked before the limit and funds checks, so
    concurrent requests are serialized per (user, asset): of N requests for the whole
    balance exactly one is accepted. One short durable transaction; on any error nothing
    is written.
    """
    asset = fresh_asset(asset)
    amount = parse_amount(amount, asset=asset)
    if amount < asset.min_withdrawal:
        raise InvalidAmount(
            f"The minimum withdrawal is {asset.min_withdrawal} {asset.code}.",
            field="amount",
            code="amount_below_minimum",
        )
    if not asset.is_active:
        raise AssetUnavailable(f"{asset.code} is not available.", field="asset")
    try:
        address = check_reference(address, field="address", max_length=200)
    except InvalidInput as exc:
        raise InvalidAddress(exc.message, field="address") from exc
    if not Authenticator.objects.filter(user_id=user.pk, type=Authenticator.Type.TOTP).exists():
        raise TwoFactorRequired("Set up two-factor authentication to withdraw.", field=None)
    with transaction.atomic(durable=True), money_context():
        return _hold_withdrawal(user=user, asset=asset, amount=amount, address=address)


def _hold_withdrawal(*, user: User, asset: Asset, amount: Decimal, address: str) -> Withdrawal:
    # The row lock serializes this user's requests for this asset: the limit sum and the
    # funds check below cannot both pass for two concurrent requests.
    balance = lock_balances(user_ids=[user.pk], asset_id=asset.pk).get(user.pk)
    fresh = User.objects.filter(pk=user.pk).values("is_frozen", "is_active", "kyc_level").get()
    if fresh["is_frozen"] or not fresh["is_active"]:
        raise AccountFrozen("This account is frozen; withdrawals are disabled.", field=None)
    _check_daily_limit(user_id=user.pk, asset=asset, kyc_level=fresh["kyc_level"], amount=amount)
    fee = asset.withdrawal_fee
    held = amount + fee
    if balance is None or balance.available < held:
        raise InsufficientFunds(
            f"Insufficient {asset.code}: {held} needed including the fee.",
            asset=asset.code,
            requested=held,
        )
    withdrawal = Withdrawal.objects.create(
        user=user, asset=asset, amount=amount, fee=fee, address=address
    )
    apply_moves(
        kind=EntryKind.WITHDRAWAL_HOLD,
        ref=f"withdrawal:{withdrawal.pk}",
        moves=[
            Move(balance_id=balance.pk, bucket=Bucket.AVAILABLE, delta=held.copy_negate()),
            Move(balance_id=balance.pk, bucket=Bucket.LOCKED, delta=held),
        ],
    )
    record_withdrawal_event(withdrawal)
    publish_balance_on_commit(user_id=user.pk, asset=asset, delta=None)
    return withdrawal


def _check_daily_limit(*, user_id: int, asset: Asset, kyc_level: int, amount: Decimal) -> None:
    limit = (
        WithdrawalLimit.objects.filter(asset=asset, kyc_level=kyc_level)
        .values_list("daily_amount", flat=True)
        .first()
    )
    day_start = timezone.make_aware(datetime.combine(timezone.now().date(), time.min))
    used = (
        (
            Withdrawal.objects.filter(user_id=user_id, asset=asset, created_at__gte=day_start)
            .exclude(status=WithdrawalStatus.REJECTED)
            .aggregate(total=Sum("amount"))["total"]
        )
        or ZERO
    )
    if limit is None or used + amount > limit:
        allowed = ZERO if limit is None else max(limit - used, ZERO)
        raise WithdrawalLimitExceeded(
            f"Daily withdrawal limit reached: {allowed} {asset.code} left today.",
            field="amount",
        )


@transaction.atomic(durable=True)
def approve_withdrawal(
    *, staff: User, withdrawal_id: int, context: ActorContext | None = None
) -> Withdrawal:
    """Staff approval: pending -> approved. Audited as `withdrawal.approved`.

    Every staff decision here audits with `context`'s IP address; the actor is `staff`.
    """
    check_staff(staff)
    now = timezone.now()
    withdrawal = _claim(
        withdrawal_id,
        from_statuses=(WithdrawalStatus.PENDING,),
        status=WithdrawalStatus.APPROVED,
        decided_by=staff,
        decided_at=now,
    )
    record_audit(action="withdrawal.approved", actor=staff, target=withdrawal, context=context)
    record_withdrawal_event(withdrawal)
    return withdrawal


@transaction.atomic(durable=True)
def complete_withdrawal(
    *, staff: User, withdrawal_id: int, external_txid: str, context: ActorContext | None = None
) -> Withdrawal:
    """Record that an approved withdrawal was sent: approved -> completed.

    Moves the locked amount to the external account and the locked fee to the fee
    account. Audited as `withdrawal.completed`.
    """
    check_staff(staff)
    external_txid = check_reference(external_txid, field="external_txid", max_length=128)
    withdrawal = _claim(
        withdrawal_id,
        from_statuses=(WithdrawalStatus.APPROVED,),
        status=WithdrawalStatus.COMPLETED,
        external_txid=external_txid,
        completed_at=timezone.now(),
    )
    user_id, asset_id = withdrawal.user_id, withdrawal.asset_id
    moves = [
        Move(
            user_id=user_id,
            asset_id=asset_id,
            bucket=Bucket.LOCKED,
            delta=withdrawal.amount.copy_negate(),
        ),
        Move(system=BalanceKind.EXTERNAL, asset_id=withdrawal.asset_id, delta=withdrawal.amount),
    ]
    if withdrawal.fee:
        moves += [
            Move(
                user_id=user_id,
                asset_id=asset_id,
                bucket=Bucket.LOCKED,
                delta=withdrawal.fee.copy_negate(),
            ),
            Move(system=BalanceKind.FEES, asset_id=withdrawal.asset_id, delta=withdrawal.fee),
        ]
    apply_moves(kind=EntryKind.WITHDRAWAL_COMPLETE, ref=f"withdrawal:{withdrawal.pk}", moves=moves)
    record_audit(
        action="withdrawal.completed",
        actor=staff,
        target=withdrawal,
        details={"external_txid": external_txid},
        context=context,
    )
    record_withdrawal_event(withdrawal)
    publish_balance_on_commit(
        user_id=user_id,
        asset=withdrawal.asset,
        delta=(withdrawal.amount + withdrawal.fee).copy_negate(),
    )
    return withdrawal


@transaction.atomic(durable=True)
def reject_withdrawal(
    *, staff: User, withdrawal_id: int, reason: str, context: ActorContext | None = None
) -> Withdrawal:
    """Refuse a pending or approved withdrawal and release its hold (amount + fee).

    Audited as `withdrawal.rejected` with the reason.
    """
    check_staff(staff)
    reason = check_text(reason, field="reason", max_length=200)
    withdrawal = _claim(
        withdrawal_id,
        from_statuses=(WithdrawalStatus.PENDING, WithdrawalStatus.APPROVED),
        status=WithdrawalStatus.REJECTED,
        reject_reason=reason,
        decided_by=staff,
        decided_at=timezone.now(),
    )
    with money_context():
        held = withdrawal.amount + withdrawal.fee
    user_id, asset_id = withdrawal.user_id, withdrawal.asset_id
    apply_moves(
        kind=EntryKind.WITHDRAWAL_RELEASE,
        ref=f"withdrawal:{withdrawal.pk}",
        moves=[
            Move(
                user_id=user_id, asset_id=asset_id, bucket=Bucket.LOCKED, delta=held.copy_negate()
            ),
            Move(user_id=user_id, asset_id=asset_id, bucket=Bucket.AVAILABLE, delta=held),
        ],
    )
    record_audit(
        action="withdrawal.rejected",
        actor=staff,
        target=withdrawal,
        details={"reason": reason},
        context=context,
    )
    record_withdrawal_event(withdrawal)
    publish_balance_on_commit(user_id=user_id, asset=withdrawal.asset, delta=None)
    return withdrawal


def _claim(
    withdrawal_id: int, *, from_statuses: tuple[str, ...], status: str, **fields: object
) -> Withdrawal:
    """Move the withdrawal to `status` iff it is in `from_statuses`; return the fresh row.

    The conditional UPDATE is the claim: of two concurrent decisions one updates the row
    and the other, after waiting for the row lock, matches nothing.
    """
    if isinstance(withdrawal_id, bool) or not isinstance(withdrawal_id, int):
        raise NotFound("No such withdrawal.", field="withdrawal_id")
    claimed = Withdrawal.objects.filter(pk=withdrawal_id, status__in=from_statuses).update(
        status=status, **fields
    )
    withdrawal = Withdrawal.objects.filter(pk=withdrawal_id).first()
    if withdrawal is None:
        raise NotFound("No such withdrawal.", field="withdrawal_id")
    if claimed != 1:
        raise WithdrawalStateConflict(
            f"Withdrawal #{withdrawal_id} is {withdrawal.status}; it cannot become {status}.",
            field="withdrawal_id",
        )
    return withdrawal
