"""Staff pages for reference data: assets and their withdrawal limits (plain, audited edits)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accounts.models import Asset, WithdrawalLimit
from exchange.admin import AssetAmountsAdmin, AuditedAdmin


@admin.register(Asset)
class AssetAdmin(AssetAmountsAdmin, AuditedAdmin):
    list_display = ("code", "name", "decimals", "is_active", "min_withdrawal", "withdrawal_fee")
    list_filter = ("is_active",)
    search_fields = ("code", "name")
    asset_amounts = (("min_withdrawal", ""), ("withdrawal_fee", ""))  # "": the row is the asset

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the ledger references assets; deactivate instead

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Decimals bound every stored amount: changing them after the fact would let old
        # balances carry more places than the asset allows.
        return ("code", "decimals") if obj is not None else ()


@admin.register(WithdrawalLimit)
class WithdrawalLimitAdmin(AssetAmountsAdmin, AuditedAdmin):
    list_display = ("asset", "kyc_level", "daily_amount")
    list_filter = ("asset", "kyc_level")
    list_select_related = ("asset",)
    asset_amounts = (("daily_amount", "asset"),)
