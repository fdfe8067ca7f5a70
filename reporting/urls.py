"""Routes of the staff reports (/reports/): pages and streamed CSV exports."""

from __future__ import annotations

from django.urls import path

from reporting import forecast_views, views

app_name = "reporting"

urlpatterns = [
    path("", views.index, name="index"),
    path("volume/", views.volume, name="volume"),
    path("traders/", views.traders, name="traders"),
    path("funds/", views.funds, name="funds"),
    path("export/trades.csv", views.export_trades, name="export_trades"),
    path("export/ledger.csv", views.export_ledger, name="export_ledger"),
    path("export/volume.csv", views.export_volume, name="export_volume"),
    path("forecast/<str:symbol>/", forecast_views.forecast_page, name="forecast"),
]
