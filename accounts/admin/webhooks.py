"""Staff pages for partner webhooks: endpoints and deliveries, read-only, and a "replay"
action on deliveries (accounts.services.webhooks.staff_replay_webhook_delivery, audited
as webhook.replayed with the staff member's IP). Secrets are never shown."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.http import actor_context
from accounts.models import WebhookDelivery, WebhookEndpoint
from accounts.services.webhooks import staff_replay_webhook_delivery
from exchange.admin import ReadOnlyAdmin, apply_to_each, staff_user


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = (
        "pk",
        "user",
        "url",
        "events",
        "is_active",
        "consecutive_failures",
        "open_until",
        "created_at",
    )
    list_filter = ("is_active",)
    search_fields = ("user__email", "url")
    list_select_related = ("user",)
    exclude = ("secret_encrypted",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "pk",
        "event_id",
        "event_type",
        "endpoint",
        "owner",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status", "event_type")
    search_fields = ("event_id", "endpoint__user__email", "endpoint__url")
    list_select_related = ("endpoint__user",)
    actions = ("replay_selected",)

    @admin.display(description=gettext_lazy("User"))
    def owner(self, delivery: WebhookDelivery) -> str:
        return delivery.endpoint.user.email

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.change_webhookdelivery")

    @admin.action(description=gettext_lazy("Replay selected deliveries"), permissions=["replay"])
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        staff, context = staff_user(request), actor_context(request)
        apply_to_each(
            request,
            queryset.order_by("pk"),
            lambda d: staff_replay_webhook_delivery(staff=staff, delivery_id=d.pk, context=context),
            label=lambda d: d.event_id,
            success=_("%(count)d delivery(ies) will be sent again."),
        )
