"""Routes of the compat API. Exact camelCase paths, no trailing slashes (PARTNER_API §1.4).

Mounted by exchange/urls.py at `api/v3/`. Each module keeps its own route list.
"""

from __future__ import annotations

from django.urls import URLPattern

from exchange.api.binance import account, deadman, public

urlpatterns: list[URLPattern] = [*public.urls, *account.urls, *deadman.urls]
