"""The user data stream's balance events from deposits and withdrawals (exchange.ws).

After the transaction commits, the user's group gets the asset's balance (the websocket
hub sends it as `outboundAccountPosition`) and, for a credited deposit or a completed
withdrawal, the change (`balanceUpdate`). Delivery is at most once, as for settlement's
events: a client that needs certainty reads GET /api/v3/account.
"""

from __future__ import annotations

import time
from decimal import Decimal

from django.db import transaction

from accounts.models import Asset, Balance
from exchange.publish import Message, publish_now, user_group


def publish_balance_on_commit(*, user_id: int, asset: Asset, delta: Decimal | None) -> None:
    """Schedule the events for after the current transaction commits (never before)."""
    code = asset.code

    def send() -> None:
        row = (
            Balance.objects.filter(user_id=user_id, asset_id=asset.pk)
            .values_list("available", "locked")
            .first()
        )
        stamp = time.time_ns() // 1_000_000
        group = user_group(user_id)
        messages: list[Message] = []
        if delta is not None:
            change = {
                "type": "balance.change",
                "asset": code,
                "delta": format(delta, "f"),
                "time": stamp,
            }
            messages.append((group, change))
        if row is not None:
            available, locked = row
            balances = [{"asset": code, "available": str(available), "locked": str(locked)}]
            messages.append(
                (group, {"type": "balance.update", "seq": 0, "time": stamp, "balances": balances})
            )
        publish_now(messages)

    transaction.on_commit(send)
