"""Routes of the v1 API (mounted at `api/v1/` by exchange/urls.py).

One style throughout: plural nouns, no trailing slashes (`/api/v1/markets`, never
`/api/v1/markets/`). The dead-man's switch routes come from exchange.api.v1.deadman when
that module exists (its `urls` list).
"""

from __future__ import annotations

import importlib

from django.urls import URLPattern, path

from exchange.api.v1 import account, markets, orders

DEADMAN_MODULE = "exchange.api.v1.deadman"


def _deadman_urls() -> list[URLPattern]:
    try:
        module = importlib.import_module(DEADMAN_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != DEADMAN_MODULE:
            raise  # the module exists but is broken: say so, do not hide its routes
        return []
    return list(getattr(module, "urls", []))


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
    *_deadman_urls(),
]
