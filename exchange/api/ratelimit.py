"""Partner API rate limits (Binance's model): request weight and order counts in Redis.

To be built (issue 12): `charge(request, view)` before a compat or v1 view runs (raises the
429 / 418 answer when a limit is exceeded) and `headers(request)` for every response
(X-MBX-USED-WEIGHT-1M, X-MBX-ORDER-COUNT-10S, X-MBX-ORDER-COUNT-1D).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request


def published_limits() -> list[dict[str, object]]:
    """exchangeInfo.rateLimits: the defaults, in Binance's shape."""
    return [
        {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": "MINUTE",
            "intervalNum": 1,
            "limit": settings.API_WEIGHT_PER_MINUTE_IP,
        },
        {
            "rateLimitType": "ORDERS",
            "interval": "SECOND",
            "intervalNum": 10,
            "limit": settings.API_ORDERS_PER_10S,
        },
        {
            "rateLimitType": "ORDERS",
            "interval": "DAY",
            "intervalNum": 1,
            "limit": settings.API_ORDERS_PER_DAY,
        },
    ]


def charge(request: Request, view: Any) -> None:
    """Count this request against its limits. Not built yet: charges nothing."""


def headers(request: Request) -> dict[str, str]:
    """The X-MBX-* usage headers for this request's response. Not built yet: none."""
    return {}
