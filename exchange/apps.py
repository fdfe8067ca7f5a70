"""The admin app, configured the Django way: this config names the project's AdminSite.

`INSTALLED_APPS` lists `exchange.apps.ExchangeAdminConfig` instead of
`django.contrib.admin`, so `admin.site` (and every `@admin.register`) is an
`exchange.admin.ExchangeAdminSite`. The site is named by a dotted path because this module
is imported while the app registry fills, before any model may be imported.
"""

from django.contrib.admin.apps import AdminConfig


class ExchangeAdminConfig(AdminConfig):
    default_site = "exchange.admin.ExchangeAdminSite"
