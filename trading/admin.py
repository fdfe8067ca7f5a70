"""Staff pages for orders and trades: read-only, plus "cancel" through cancel_order."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from exchange.errors import DomainError
from trading.models import Order, OutboxEntry, Trade
from trading.services.orders import cancel_order


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by services: staff may look, never add, edit or delete."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "user",
        "market",
        "side",
        "order_type",
        "price",
        "quantity",
        "filled_quantity",
        "status",
        "created_at",
    )
    list_filter = ("status", "side", "order_type", "market")
    search_fields = ("=id", "client_order_id", "user__email")
    list_select_related = ("user", "market")
    raw_id_fields = ("user",)
    actions = ("cancel_selected",)

    @admin.action(description=_("Cancel selected open orders"), permissions=["view"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        actor = request.user
        assert isinstance(actor, User)  # noqa: S101 - the admin requires a logged-in staff user
        sent = 0
        for order in queryset.select_related("user").order_by("pk"):
            try:
                cancel_order(user=order.user, order_id=order.pk, actor=actor)
            except DomainError as exc:
                self.message_user(request, f"#{order.pk}: {exc.message}", level=messages.WARNING)
            else:
                sent += 1
        self.message_user(request, _("%(n)d cancel request(s) sent to the engine.") % {"n": sent})


@admin.register(Trade)
class TradeAdmin(ReadOnlyAdmin):
    list_display = ("id", "market", "seq", "price", "quantity", "taker_side", "created_at")
    list_filter = ("market",)
    search_fields = ("=seq", "=buy_order__id", "=sell_order__id")
    list_select_related = ("market",)


@admin.register(OutboxEntry)
class OutboxEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "market", "created_at", "published_at", "stream_id")
    list_filter = ("market", ("published_at", admin.EmptyFieldListFilter))
