"""Routes of the market pages (mounted at the site root by exchange/urls.py)."""

from django.urls import path

from markets import views

urlpatterns = [
    path("markets/", views.market_list, name="markets"),
    path("trade/<str:symbol>/", views.trade, name="trade"),
]
