"""Staff pages for orders and trades: read-only, plus "cancel" through cancel_order."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.http import actor_context
from exchange.admin import AssetAmountsAdmin, ReadOnlyAdmin, apply_to_each, staff_user
from trading.models import Order, OutboxEntry, Trade
from trading.services.orders import cancel_order

# Prices and fees are counted in the quote asset, quantities in the base asset.
_IN_QUOTE = "market.quote"
_IN_BASE = "market.base"


@admin.register(Order)
class OrderAdmin(AssetAmountsAdmin, ReadOnlyAdmin):
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
    list_select_related = ("user", "market__base", "market__quote")
    raw_id_fields = ("user",)
    actions = ("cancel_selected",)
    asset_amounts = (
        ("price", _IN_QUOTE),
        ("stop_price", _IN_QUOTE),
        ("quantity", _IN_BASE),
        ("quote_amount", _IN_QUOTE),
        ("filled_quantity", _IN_BASE),
        ("filled_quote", _IN_QUOTE),
        ("fee_paid", _IN_QUOTE),
        ("hold_amount", "hold_asset"),
        ("hold_remaining", "hold_asset"),
    )

    @admin.action(description=gettext_lazy("Cancel selected open orders"), permissions=["view"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        # `actor` audits even a staff member's own order; the context adds the IP.
        staff, context = staff_user(request), actor_context(request)
        apply_to_each(
            request,
            queryset.select_related("user").order_by("pk"),
            lambda order: cancel_order(
                user=order.user, order_id=order.pk, actor=staff, context=context
            ),
            label=lambda order: f"#{order.pk}",
            success=_("%(count)d cancel request(s) sent to the engine."),
        )


@admin.register(Trade)
class TradeAdmin(AssetAmountsAdmin, ReadOnlyAdmin):
    list_display = ("id", "market", "seq", "price", "quantity", "taker_side", "created_at")
    list_filter = ("market",)
    search_fields = ("=seq", "=buy_order__id", "=sell_order__id")
    list_select_related = ("market__base", "market__quote")
    asset_amounts = (
        ("price", _IN_QUOTE),
        ("quantity", _IN_BASE),
        ("quote_quantity", _IN_QUOTE),
        ("maker_fee", _IN_QUOTE),
        ("taker_fee", _IN_QUOTE),
    )


@admin.register(OutboxEntry)
class OutboxEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "market", "created_at", "published_at", "stream_id")
    list_filter = ("market", ("published_at", admin.EmptyFieldListFilter))
