"""Crediting deposits: money that arrived from outside, exactly once per external reference."""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction

from accounts.amounts import parse_amount
from accounts.errors import DepositConflict
from accounts.models import Asset, BalanceKind, Bucket, Deposit, EntryKind, User
from accounts.services._checks import check_reference, check_staff, fresh_asset
from accounts.services.audit import ActorContext, record_audit
from accounts.services.balance_stream import publish_balance_on_commit
from accounts.services.ledger import Move, apply_moves
from accounts.webhooks.record import record_deposit_event


@transaction.atomic(durable=True)
def credit_deposit(
    *,
    user: User,
    asset: Asset,
    amount: Decimal,
    external_ref: str,
    staff: User | None = None,
    context: ActorContext | None = None,
) -> Deposit:
    """Credit `amount` to the user's available balance, once per (asset, external_ref).

    Idempotent: a repeat with the same user and amount returns the stored deposit and
    moves nothing; a repeat naming another user or amount raises DepositConflict. Posts
    external(available) -amount / user(available) +amount. When `staff` credits, an audit
    row `deposit.credited` is written in the same transaction, with `context`'s IP address.
    The user's `deposit` webhooks are recorded in the same transaction too.
    Durable: never nested.
    """
    asset = fresh_asset(asset)
    amount = parse_amount(amount, asset=asset)
    debit = amount.copy_negate()  # exact; unary minus would round to 28 digits
    external_ref = check_reference(external_ref, field="external_ref", max_length=128)
    if staff is not None:
        check_staff(staff)

    stored = Deposit.objects.filter(asset=asset, external_ref=external_ref).first()
    if stored is not None:
        return _same_or_conflict(stored, user=user, amount=amount)
    try:
        # Savepoint: a concurrent credit of the same reference wins the unique index; undo
        # our entry and balance moves with the deposit row and return the stored one.
        with transaction.atomic():
            entry = apply_moves(
                kind=EntryKind.DEPOSIT,
                ref=f"deposit:{asset.code}:{external_ref}"[:64],
                moves=[
                    Move(system=BalanceKind.EXTERNAL, asset_id=asset.pk, delta=debit),
                    Move(user_id=user.pk, asset_id=asset.pk, bucket=Bucket.AVAILABLE, delta=amount),
                ],
            )
            deposit = Deposit.objects.create(
                user=user,
                asset=asset,
                amount=amount,
                external_ref=external_ref,
                entry=entry,
                credited_by=staff,
            )
    except IntegrityError:
        stored = Deposit.objects.get(asset=asset, external_ref=external_ref)
        return _same_or_conflict(stored, user=user, amount=amount)
    # The outbox row of the `deposit` webhook commits with the credit, or not at all.
    record_deposit_event(deposit)
    publish_balance_on_commit(user_id=user.pk, asset=asset, delta=amount)  # user data stream
    if staff is not None:
        record_audit(
            action="deposit.credited",
            actor=staff,
            target=deposit,
            details={
                "user_id": user.pk,
                "asset": asset.code,
                "amount": str(amount),
                "external_ref": external_ref,
            },
            context=context,
        )
    return deposit


def _same_or_conflict(stored: Deposit, *, user: User, amount: Decimal) -> Deposit:
    if stored.user_id != user.pk or stored.amount != amount:
        raise DepositConflict(
            "This external reference was already credited with a different user or amount.",
            field="external_ref",
        )
    return stored
