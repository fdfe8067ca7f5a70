"""Routes of the account pages (the web UI); allauth's own routes live under /accounts/."""

from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.home, name="home"),
    path("wallet/", views.wallet, name="wallet"),
    path("api-keys/", views.api_keys, name="api_keys"),
    path("api-keys/<int:pk>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("security/", views.security, name="security"),
    path("webhooks/", views.webhooks, name="webhooks"),
    path("webhooks/<int:pk>/", views.webhook_deliveries, name="webhook_deliveries"),
    path("webhooks/<int:pk>/delete/", views.webhook_delete, name="webhook_delete"),
    path(
        "webhooks/<int:pk>/deliveries/<int:delivery_pk>/replay/",
        views.webhook_replay,
        name="webhook_replay",
    ),
]
