"""Staff pages for markets: list, halt / cancel-only / resume, edit the trading rules.

Every change goes through markets.services (audited); the order services re-read the row
per request, so nothing needs a restart.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.http import actor_context
from exchange.admin import AssetAmountsAdmin, apply_to_each, staff_user
from exchange.errors import DomainError
from markets.models import Market, MarketStatus
from markets.services import EDITABLE_RULES, set_market_status, update_market_rules

# Fixed at creation: the engine's resting orders are integers of these units.
_FIXED_AFTER_CREATE = ("symbol", "base", "quote", "tick_size", "lot_size")


@admin.register(Market)
class MarketAdmin(AssetAmountsAdmin):
    list_display = (
        "symbol",
        "status",
        "last_price",
        "tick_size",
        "lot_size",
        "min_notional",
        "maker_fee",
        "taker_fee",
        "price_band_pct",
        "updated_at",
    )
    list_filter = ("status",)
    search_fields = ("symbol",)
    list_select_related = ("base", "quote")
    actions = ("halt", "cancel_only", "resume")
    # List columns only: the change form keeps its inputs.
    asset_amounts = (
        ("last_price", "quote"),
        ("tick_size", "quote"),
        ("lot_size", "base"),
        ("min_notional", "quote"),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Market | None = None) -> Any:
        fixed = ("last_price", "created_at", "updated_at")
        return (*_FIXED_AFTER_CREATE, *fixed) if obj is not None else fixed

    def has_delete_permission(self, request: HttpRequest, obj: Market | None = None) -> bool:
        return False  # markets are referenced by orders and trades forever

    def save_model(self, request: HttpRequest, obj: Market, form: ModelForm, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        actor, context = staff_user(request), actor_context(request)
        changes = {
            name: form.cleaned_data[name] for name in form.changed_data if name in EDITABLE_RULES
        }
        try:
            if changes:
                update_market_rules(market=obj, actor=actor, changes=changes, context=context)
            if "status" in form.changed_data:
                set_market_status(market=obj, status=obj.status, actor=actor, context=context)
        except DomainError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Market], status: str) -> None:
        actor, context = staff_user(request), actor_context(request)
        apply_to_each(
            request,
            queryset.order_by("pk"),
            lambda market: set_market_status(
                market=market, status=status, actor=actor, context=context
            ),
            label=lambda market: market.symbol,
            success=_("%(count)d market(s) set to %(status)s."),
            success_values={"status": status},
        )

    @admin.action(
        description=gettext_lazy("Halt (refuse orders and cancels)"), permissions=["change"]
    )
    def halt(self, request: HttpRequest, queryset: QuerySet[Market]) -> None:
        self._set_status(request, queryset, MarketStatus.HALTED)

    @admin.action(description=gettext_lazy("Cancel only"), permissions=["change"])
    def cancel_only(self, request: HttpRequest, queryset: QuerySet[Market]) -> None:
        self._set_status(request, queryset, MarketStatus.CANCEL_ONLY)

    @admin.action(description=gettext_lazy("Resume trading"), permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Market]) -> None:
        self._set_status(request, queryset, MarketStatus.TRADING)
