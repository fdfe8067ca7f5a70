"""URL routes of the web UI, the admin and the APIs."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from exchange.api import schema as _api_schema  # noqa: F401  (registers the auth scheme)
from exchange.api.binance import public as binance_public
from reporting import account_views

FAVICON_MAX_AGE = 7 * 24 * 3600  # a week: the icon changes with a release, if ever


@cache
def _favicon() -> bytes:
    return (settings.BASE_DIR / "static" / "favicon.ico").read_bytes()


@require_safe
@cache_control(public=True, max_age=FAVICON_MAX_AGE)
def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers ask for on every page (the admin's included)."""
    return HttpResponse(_favicon(), content_type="image/x-icon")


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("reports/", include("reporting.urls")),
    path("api/v3/", include("exchange.api.binance.urls")),
    path("api/v1/", include("exchange.api.v1.urls")),
    path("", include(binance_public.root_urls)),  # /sapi/v1/... stubs, /unsupported/...
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("account/", account_views.account, name="account"),
    path("account/fees/", account_views.fees, name="fees"),
    path("", include("markets.urls")),
    path("", include("trading.urls")),
    path("", include("accounts.urls")),
]
