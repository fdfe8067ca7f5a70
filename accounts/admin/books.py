"""Staff pages for the books: balances, journal entries with their postings, and the audit
log. Services write them; the admin only looks."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy

from accounts.models import AuditLog, Balance, JournalEntry, Posting
from exchange.admin import AssetAmountsAdmin, AssetAmountsInline, ReadOnlyAdmin


def _owner(balance: Balance) -> str:
    """Whose balance it is, and in what: "alice@example.com BTC", "fees USDT"."""
    owner = balance.user.email if balance.user else balance.get_kind_display()
    return f"{owner} {balance.asset.code}"


@admin.register(Balance)
class BalanceAdmin(AssetAmountsAdmin, ReadOnlyAdmin):
    list_display = ("owner", "asset", "kind", "available", "locked", "updated_at")
    list_filter = ("kind", "asset")
    search_fields = ("user__email",)
    list_select_related = ("user", "asset")
    asset_amounts = (("available", "asset"), ("locked", "asset"))

    @admin.display(description=gettext_lazy("Owner"))
    def owner(self, obj: Balance) -> str:
        return obj.user.email if obj.user else obj.get_kind_display()


class PostingInline(AssetAmountsInline):
    model = Posting
    fields = ("account", "asset", "bucket", "amount")
    asset_amounts = (("amount", "asset"),)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Posting]:
        return (
            super().get_queryset(request).select_related("asset", "balance__user", "balance__asset")
        )

    @admin.display(description=gettext_lazy("Balance"))
    def account(self, obj: Posting) -> str:
        return _owner(obj.balance)


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ("pk", "kind", "ref", "memo", "created_at")
    list_filter = ("kind",)
    search_fields = ("ref", "memo")
    date_hierarchy = "created_at"
    inlines = (PostingInline,)


@admin.register(Posting)
class PostingAdmin(AssetAmountsAdmin, ReadOnlyAdmin):
    list_display = ("pk", "entry", "account", "asset", "bucket", "amount")
    list_filter = ("asset", "bucket")
    list_select_related = ("entry", "balance__user", "balance__asset", "asset")
    search_fields = ("entry__ref", "balance__user__email")
    fields = ("entry", "account", "asset", "bucket", "amount")
    readonly_fields = ("account",)
    asset_amounts = (("amount", "asset"),)

    @admin.display(description=gettext_lazy("Balance"))
    def account(self, obj: Posting) -> str:
        return _owner(obj.balance)


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "actor", "target_type", "target_id", "ip_address")
    list_filter = ("action", "target_type")
    search_fields = ("action", "actor__email", "target_id", "ip_address")
    list_select_related = ("actor",)
    date_hierarchy = "created_at"
