"""Routes of the trading web pages: the orders and trades history, its exports, cancel."""

from django.urls import path

from trading import history_views

urlpatterns = [
    path("orders/", history_views.orders, name="orders"),
    path("orders/orders.csv", history_views.orders_csv, name="orders_csv"),
    path("orders/trades.csv", history_views.trades_csv, name="trades_csv"),
    path("orders/<int:pk>/cancel/", history_views.order_cancel, name="order_cancel"),
]
