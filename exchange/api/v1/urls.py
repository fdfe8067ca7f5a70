"""Routes of the v1 API (mounted at `api/v1/` by exchange/urls.py).

One style throughout: plural nouns, no trailing slashes (`/api/v1/markets`, never
`/api/v1/markets/`). Any other path under /api/v1/ (an unknown one, or a path parameter
the converters refuse: a newline, an encoded '/') ends at the catch-all: a JSON 404.
"""

from __future__ import annotations

from django.urls import URLPattern, path, re_path

from exchange.api.v1 import account, deadman, markets, orders, webhooks
from exchange.api.v1.base import NotFoundApi

urlpatterns: list[URLPattern] = [
    path("markets", markets.MarketListApi.as_view(), name="v1-markets"),
    path("markets/<str:symbol>", markets.MarketDetailApi.as_view(), name="v1-market"),
    path("orders", orders.OrderListApi.as_view(), name="v1-orders"),
    path("orders/batch", orders.PlaceOrderBatchApi.as_view(), name="v1-orders-batch"),
    path("orders/cancel", orders.CancelOrderBatchApi.as_view(), name="v1-orders-cancel"),
    path(
        "orders/by-client-id/<path:client_order_id>",
        orders.ClientOrderDetailApi.as_view(),
        name="v1-order-by-client-id",
    ),
    path("orders/<str:order_id>", orders.OrderDetailApi.as_view(), name="v1-order"),
    path("orders/<str:order_id>/reduce", orders.ReduceOrderApi.as_view(), name="v1-order-reduce"),
    path("trades", account.TradeListApi.as_view(), name="v1-trades"),
    path("balances", account.BalancesApi.as_view(), name="v1-balances"),
    path("deposits", account.DepositListApi.as_view(), name="v1-deposits"),
    path("withdrawals", account.WithdrawalListApi.as_view(), name="v1-withdrawals"),
    path("fees", account.FeesApi.as_view(), name="v1-fees"),
    path("reports/volume", account.VolumeReportApi.as_view(), name="v1-volume"),
    path("api-key", account.ApiKeySelfApi.as_view(), name="v1-api-key"),
    *deadman.urls,
    *webhooks.urls,
    re_path(r"^[\s\S]*$", NotFoundApi.as_view(), name="v1-not-found"),  # newlines too
]
