"""Staff pages for markets: list, halt / cancel-only / resume, edit the trading rules; the
fee schedule (tiers) and who is on which tier.

Every change goes through markets.services (audited); the order services re-read the row
per request, so nothing needs a restart.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.http import actor_context
from exchange.admin import AssetAmountsAdmin, ReadOnlyAdmin, apply_to_each, staff_user
from exchange.errors import DomainError
from markets.errors import InvalidFeeTier
from markets.models import FeeTier, Market, MarketStatus, UserFeeTier
from markets.services import (
    EDITABLE_RULES,
    FEE_TIER_FIELDS,
    clean_fee_tier_value,
    delete_fee_tier,
    save_fee_tier,
    set_market_status,
    update_market_rules,
)

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


class FeeTierForm(forms.ModelForm):
    """The service's own checks, run as form validation so a refusal is a field error."""

    class Meta:
        model = FeeTier
        fields = FEE_TIER_FIELDS

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in FEE_TIER_FIELDS:
            if name in cleaned:
                try:
                    cleaned[name] = clean_fee_tier_value(name, cleaned[name])
                except InvalidFeeTier as exc:
                    self.add_error(name, exc.message)
        return cleaned


@admin.register(FeeTier)
class FeeTierAdmin(admin.ModelAdmin):
    """The fee schedule. An order pays per side the lower of its market's fee and its user's
    tier's; rates are fixed on the order when it is accepted. Users are assigned nightly from
    their 30-day volume (`manage.py assign_fee_tiers` does it at once)."""

    form = FeeTierForm
    list_display = ("name", "min_volume_30d", "maker_fee", "taker_fee", "updated_at")
    ordering = ("min_volume_30d",)

    def save_model(self, request: HttpRequest, obj: FeeTier, form: ModelForm, change: bool) -> None:
        names = form.changed_data if change else FEE_TIER_FIELDS
        values = {name: form.cleaned_data[name] for name in names if name in FEE_TIER_FIELDS}
        if change and not values:
            return
        try:
            saved = save_fee_tier(
                tier=FeeTier.objects.get(pk=obj.pk) if change else None,
                values=values,
                actor=staff_user(request),
                context=actor_context(request),
            )
        except DomainError as exc:  # a race the form could not see (another save between)
            self.message_user(request, exc.message, level=messages.ERROR)
            if not change:
                raise PermissionDenied(exc.message) from exc
            return
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: FeeTier) -> None:
        delete_fee_tier(tier=obj, actor=staff_user(request), context=actor_context(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[FeeTier]) -> None:
        actor, context = staff_user(request), actor_context(request)
        for tier in queryset.order_by("pk"):
            delete_fee_tier(tier=tier, actor=actor, context=context)


@admin.register(UserFeeTier)
class UserFeeTierAdmin(ReadOnlyAdmin):
    """Who is on which tier, from which 30-day volume (written by the nightly assignment)."""

    list_display = ("user", "tier", "volume_30d", "assigned_at")
    list_filter = ("tier",)
    search_fields = ("user__email",)
    list_select_related = ("user", "tier")
