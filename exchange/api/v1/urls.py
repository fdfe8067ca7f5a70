"""Routes of the v1 API (mounted at `api/v1/` by exchange/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
