"""Internal transfers between two users of the exchange."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from accounts.amounts import parse_amount
from accounts.errors import AccountFrozen, AssetUnavailable, InvalidInput
from accounts.models import Asset, Bucket, EntryKind, JournalEntry, User
from accounts.services._checks import check_reference, fresh_asset
from accounts.services.ledger import Move, apply_moves


def transfer(
    *, sender: User, recipient: User, asset: Asset, amount: Decimal, ref: str
) -> JournalEntry:
    """Move `amount` from the sender's available balance to the recipient's.

    Refuses a transfer to oneself or to an inactive user, a frozen sender and an inactive
    asset. Both balance rows are locked in id order, so opposing transfers (A->B, B->A)
    wait rather than deadlock. `ref` (1-64 printable ASCII) is journaled as the entry ref.
    One short durable transaction; on any error nothing is written.
    """
    asset = fresh_asset(asset)
    amount = parse_amount(amount, asset=asset)
    debit = amount.copy_negate()  # exact; unary minus would round to 28 digits
    ref = check_reference(ref, field="ref", max_length=64)
    if not asset.is_active:
        raise AssetUnavailable(f"{asset.code} is not available.", field="asset")
    if sender.pk == recipient.pk:
        raise InvalidInput(
            "Cannot transfer to yourself.", field="recipient", code="recipient_invalid"
        )
    with transaction.atomic(durable=True):
        states = {
            pk: (is_active, is_frozen)
            for pk, is_active, is_frozen in User.objects.filter(
                pk__in=[sender.pk, recipient.pk]
            ).values_list("pk", "is_active", "is_frozen")
        }
        if not states.get(recipient.pk, (False, False))[0]:
            raise InvalidInput("Unknown recipient.", field="recipient", code="recipient_invalid")
        sender_active, sender_frozen = states.get(sender.pk, (False, True))
        if sender_frozen or not sender_active:
            raise AccountFrozen("This account is frozen; transfers are disabled.", field=None)
        return apply_moves(
            kind=EntryKind.TRANSFER,
            ref=ref,
            moves=[
                Move(user_id=sender.pk, asset_id=asset.pk, bucket=Bucket.AVAILABLE, delta=debit),
                Move(
                    user_id=recipient.pk, asset_id=asset.pk, bucket=Bucket.AVAILABLE, delta=amount
                ),
            ],
            memo=f"transfer {sender.pk} -> {recipient.pk}",
        )
