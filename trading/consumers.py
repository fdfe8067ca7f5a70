"""Websocket consumers: subscribe to a market's public groups (and the user's own), forward.

Consumers never write. A market stream carries "depth.diff" (with prev_seq/seq: a client
that sees prev_seq != the last seq it got resyncs from the REST depth snapshot), "trade",
and, for a logged-in user, only their own "order.update" / "balance.update".
"""

from __future__ import annotations

import re
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from markets.models import Market
from trading.publish import depth_group, trades_group, user_group

_SYMBOL = re.compile(r"^[A-Z0-9]{1,12}-[A-Z0-9]{1,12}$")


@database_sync_to_async
def _market_exists(symbol: str) -> bool:
    return Market.objects.filter(symbol=symbol).exists()


class MarketStreamConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """ws/markets/<symbol>/: depth diffs and trades; plus the user's updates when logged in."""

    groups: list[str]

    async def connect(self) -> None:
        symbol = str(self.scope["url_route"]["kwargs"].get("symbol", "")).upper()
        if not _SYMBOL.match(symbol) or not await _market_exists(symbol):
            await self.close(code=4404)
            return
        self.groups = [depth_group(symbol), trades_group(symbol)]
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            self.groups.append(user_group(user.pk))  # only the owner's own group, ever
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Clients only listen; anything they send is ignored."""

    async def _forward(self, message: dict[str, Any]) -> None:
        await self.send_json(message)

    depth_diff = _forward
    trade = _forward
    order_update = _forward
    balance_update = _forward
