"""Websocket URL routes. Consumers only authenticate, subscribe to groups and forward."""

from __future__ import annotations

from typing import Any

websocket_urlpatterns: list[Any] = []  # Any: channels' URLRouter accepts URLPattern/URLResolver
