"""Websocket URL routes. Consumers only authenticate, subscribe to groups and forward."""

from __future__ import annotations

from typing import Any

from django.urls import re_path

from trading.consumers import MarketStreamConsumer

# Any: channels' URLRouter accepts URLPattern/URLResolver
websocket_urlpatterns: list[Any] = [
    re_path(r"^ws/markets/(?P<symbol>[A-Za-z0-9-]{3,25})/$", MarketStreamConsumer.as_asgi()),
]
