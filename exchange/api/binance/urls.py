"""Routes of the compat API. Exact camelCase paths, no trailing slashes (PARTNER_API §1.4).

Mounted by exchange/urls.py at `api/v3/`. Each module keeps its own route list; the last
route catches every path the others do not serve.
"""

from __future__ import annotations

from django.urls import URLPattern, re_path

from exchange.api.binance import account, deadman, public, userstream

urlpatterns: list[URLPattern] = [
    *public.urls,
    *account.urls,
    *deadman.urls,
    *userstream.urls,
    # Any other /api/v3/ path (one with a newline too): 404 with -1020 in Binance's shape,
    # never an HTML page.
    re_path(r"^[\s\S]*$", public.UnsupportedApi.as_view(), name="compat-not-found"),
]
