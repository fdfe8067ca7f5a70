"""The staff console: users, assets, limits, the books (read-only), deposits, withdrawals,
API keys and the audit log.

Staff decisions go through the same services as everything else (set_kyc_level,
set_frozen, credit_deposit, approve/complete/reject_withdrawal, staff_revoke_api_key), which
write their own audit rows. Plain edits (assets, limits, user flags) are audited by
AuditedAdminMixin. The money services run in durable transactions, and Django wraps the
change form in one, so those decisions are admin actions and custom views, never
`save_model`.

Entry: admin login goes through allauth (password, then the TOTP step), and the admin
refuses staff without a TOTP authenticator or whose session did not pass an MFA check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from allauth.account.authentication import get_authentication_records
from allauth.account.decorators import secure_admin_login
from allauth.mfa.admin import AuthenticatorAdmin as AllauthAuthenticatorAdmin
from allauth.mfa.models import Authenticator
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.forms import CreditDepositForm, RejectWithdrawalsForm, add_domain_error
from accounts.http import client_ip
from accounts.models import (
    ApiKey,
    Asset,
    AuditLog,
    Balance,
    Deposit,
    JournalEntry,
    KycLevel,
    Posting,
    User,
    Withdrawal,
    WithdrawalLimit,
)
from accounts.services.apikeys import staff_revoke_api_key
from accounts.services.audit import record_audit
from accounts.services.deposits import credit_deposit
from accounts.services.twofactor import has_totp
from accounts.services.users import set_frozen, set_kyc_level
from accounts.services.withdrawals import (
    approve_withdrawal,
    complete_withdrawal,
    reject_withdrawal,
)
from exchange.errors import DomainError

# --- the door: allauth login, then TOTP required


def staff_passed_mfa(request: HttpRequest) -> bool:
    """True when the user is active staff with a TOTP authenticator and this session was
    authenticated with it (at login, or re-authenticated since)."""
    user = request.user
    if not (isinstance(user, User) and user.is_active and user.is_staff):
        return False
    records = get_authentication_records(request, user)
    return has_totp(user=user) and any(record.get("method") == "mfa" for record in records)


def _require_staff_mfa(login_view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap the admin login: signed-in staff without 2FA are sent to set it up, and staff
    whose session skipped the TOTP step are asked for a code first."""

    def gate(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        user = request.user
        if isinstance(user, User) and not staff_passed_mfa(request):
            next_url = request.GET.get("next", "")
            if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
                next_url = reverse("admin:index")
            if not has_totp(user=user):
                messages.warning(
                    request,
                    _("Staff must set up two-factor authentication before using the admin."),
                )
                return HttpResponseRedirect(reverse("mfa_activate_totp"))
            query = urlencode({"next": next_url})
            return HttpResponseRedirect(f"{reverse('mfa_reauthenticate')}?{query}")
        return login_view(request, extra_context=extra_context)

    return gate


_default_has_permission = admin.site.has_permission


def _has_permission(request: HttpRequest) -> bool:
    return bool(_default_has_permission(request)) and staff_passed_mfa(request)


admin.site.has_permission = _has_permission  # type: ignore[method-assign]
admin.site.login = secure_admin_login(_require_staff_mfa(admin.site.login))  # type: ignore[method-assign]
admin.site.site_header = gettext_lazy("Exchange staff")
admin.site.site_title = gettext_lazy("Exchange staff")


# --- shared behaviour


class AuditedAdminMixin(admin.ModelAdmin):
    """Every add, change and delete made in the admin also goes to the audit log, with IP."""

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        self._audit(request, "admin.added", obj, message)
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        self._audit(request, "admin.changed", obj, message)
        return super().log_change(request, obj, message)

    def log_deletions(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        for obj in queryset:
            self._audit(request, "admin.deleted", obj, "")
        return super().log_deletions(request, queryset)

    def _audit(self, request: HttpRequest, action: str, obj: Any, message: Any) -> None:
        record_audit(
            action=action,
            actor=_staff(request),
            target=obj,
            ip_address=client_ip(request),
            details={"object": str(obj)[:200], "change": str(message)[:2000]},
        )


class ReadOnlyAdminMixin(admin.ModelAdmin):
    """The books are written by services only: the admin may look, never touch."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _report(request: HttpRequest, done: int, errors: list[str], success: str) -> None:
    if done:
        messages.success(request, success % {"count": done})
    for error in errors:
        messages.error(request, error)


def _staff(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User):  # unreachable: the admin only lets staff in
        raise PermissionDenied
    return user


# --- users


@admin.register(User)
class UserAdmin(AuditedAdminMixin):
    list_display = (
        "email",
        "kyc_level",
        "is_frozen",
        "has_2fa",
        "is_staff",
        "is_active",
        "date_joined",
    )
    list_filter = ("kyc_level", "is_frozen", "is_staff", "is_active")
    search_fields = ("email", "display_name")
    ordering = ("-pk",)
    fields = (
        "email",
        "display_name",
        "is_active",
        "is_staff",
        "is_superuser",
        "groups",
        "user_permissions",
        "kyc_level",
        "is_frozen",
        "date_joined",
        "last_login",
    )
    # KYC level and freeze change only through the audited actions below.
    readonly_fields = ("kyc_level", "is_frozen", "date_joined", "last_login")
    filter_horizontal = ("groups", "user_permissions")
    actions = ("set_kyc_email_verified", "set_kyc_identity", "set_kyc_full", "freeze", "unfreeze")

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        totp = Authenticator.objects.filter(user=OuterRef("pk"), type=Authenticator.Type.TOTP)
        return super().get_queryset(request).annotate(totp_enabled=Exists(totp))

    @admin.display(boolean=True, description=gettext_lazy("2FA"), ordering="totp_enabled")
    def has_2fa(self, obj: User) -> bool:
        return bool(getattr(obj, "totp_enabled", False))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # people sign up; staff accounts come from createsuperuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # ledger rows reference users; deactivate instead

    def _set_kyc(self, request: HttpRequest, queryset: QuerySet[User], level: int) -> None:
        done, errors = 0, []
        for user in queryset:
            try:
                set_kyc_level(staff=_staff(request), user=user, level=level)
                done += 1
            except DomainError as exc:
                errors.append(f"{user.email}: {exc.message}")
        _report(request, done, errors, _("KYC level set for %(count)d user(s)."))

    @admin.action(description=gettext_lazy("Set KYC level: email verified"))
    def set_kyc_email_verified(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._set_kyc(request, queryset, KycLevel.EMAIL_VERIFIED)

    @admin.action(description=gettext_lazy("Set KYC level: identity verified"))
    def set_kyc_identity(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._set_kyc(request, queryset, KycLevel.IDENTITY)

    @admin.action(description=gettext_lazy("Set KYC level: fully verified"))
    def set_kyc_full(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._set_kyc(request, queryset, KycLevel.FULL)

    def _set_frozen(self, request: HttpRequest, queryset: QuerySet[User], frozen: bool) -> None:
        done, errors = 0, []
        for user in queryset:
            try:
                set_frozen(staff=_staff(request), user=user, is_frozen=frozen)
                done += 1
            except DomainError as exc:
                errors.append(f"{user.email}: {exc.message}")
        success = _("%(count)d user(s) frozen.") if frozen else _("%(count)d user(s) unfrozen.")
        _report(request, done, errors, success)

    @admin.action(description=gettext_lazy("Freeze selected users"))
    def freeze(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._set_frozen(request, queryset, True)

    @admin.action(description=gettext_lazy("Unfreeze selected users"))
    def unfreeze(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._set_frozen(request, queryset, False)


# --- reference data


@admin.register(Asset)
class AssetAdmin(AuditedAdminMixin):
    list_display = ("code", "name", "decimals", "is_active", "min_withdrawal", "withdrawal_fee")
    list_filter = ("is_active",)
    search_fields = ("code", "name")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the ledger references assets; deactivate instead

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Decimals bound every stored amount: changing them after the fact would let old
        # balances carry more places than the asset allows.
        return ("code", "decimals") if obj is not None else ()


@admin.register(WithdrawalLimit)
class WithdrawalLimitAdmin(AuditedAdminMixin):
    list_display = ("asset", "kyc_level", "daily_amount")
    list_filter = ("asset", "kyc_level")


# --- the books, read-only


@admin.register(Balance)
class BalanceAdmin(ReadOnlyAdminMixin):
    list_display = ("owner", "asset", "kind", "available", "locked", "updated_at")
    list_filter = ("kind", "asset")
    search_fields = ("user__email",)
    list_select_related = ("user", "asset")

    @admin.display(description=gettext_lazy("Owner"))
    def owner(self, obj: Balance) -> str:
        return obj.user.email if obj.user else obj.get_kind_display()


class PostingInline(admin.TabularInline):
    model = Posting
    fields = ("balance", "asset", "bucket", "amount")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdminMixin):
    list_display = ("pk", "kind", "ref", "memo", "created_at")
    list_filter = ("kind",)
    search_fields = ("ref", "memo")
    date_hierarchy = "created_at"
    inlines = (PostingInline,)


@admin.register(Posting)
class PostingAdmin(ReadOnlyAdminMixin):
    list_display = ("pk", "entry", "balance", "asset", "bucket", "amount")
    list_filter = ("asset", "bucket")
    list_select_related = ("entry", "balance__user", "balance__asset", "asset")
    search_fields = ("entry__ref", "balance__user__email")


# --- deposits: read-only list plus a "credit a deposit" page that calls the service


@admin.register(Deposit)
class DepositAdmin(ReadOnlyAdminMixin):
    list_display = ("pk", "user", "asset", "amount", "external_ref", "credited_by", "created_at")
    list_filter = ("asset",)
    search_fields = ("user__email", "external_ref")
    list_select_related = ("user", "asset", "credited_by")
    change_list_template = "admin/accounts/deposit/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        credit = path(
            "credit/",
            self.admin_site.admin_view(self.credit_view),
            name="accounts_deposit_credit",
        )
        return [credit, *super().get_urls()]

    def has_credit_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.add_deposit")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {**(extra_context or {}), "can_credit": self.has_credit_permission(request)}
        return super().changelist_view(request, extra_context=context)

    def credit_view(self, request: HttpRequest) -> HttpResponse:
        """Credit a deposit through `credit_deposit`; errors show on the form."""
        if not self.has_credit_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        form = CreditDepositForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                deposit = credit_deposit(
                    user=form.cleaned_data["user"],
                    asset=form.cleaned_data["asset"],
                    amount=form.cleaned_data["amount"],
                    external_ref=form.cleaned_data["external_ref"],
                    staff=_staff(request),
                )
            except DomainError as exc:
                add_domain_error(form, exc)
            else:
                messages.success(
                    request,
                    _("Deposit #%(id)s: %(amount)s %(asset)s credited to %(email)s.")
                    % {
                        "id": deposit.pk,
                        "amount": deposit.amount,
                        "asset": deposit.asset.code,
                        "email": deposit.user.email,
                    },
                )
                return HttpResponseRedirect(reverse("admin:accounts_deposit_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Credit a deposit"),
            "form": form,
        }
        return TemplateResponse(request, "admin/accounts/deposit/credit.html", context)


# --- withdrawals: the review queue


@admin.register(Withdrawal)
class WithdrawalAdmin(ReadOnlyAdminMixin):
    list_display = (
        "pk",
        "user",
        "asset",
        "amount",
        "fee",
        "address",
        "status",
        "created_at",
        "decided_by",
    )
    list_filter = ("status", "asset")
    search_fields = ("user__email", "address", "external_txid")
    list_select_related = ("user", "asset", "decided_by")
    actions = ("approve_selected", "complete_selected", "reject_selected")

    def has_decide_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.change_withdrawal")

    @admin.action(description=gettext_lazy("Approve selected withdrawals"), permissions=["decide"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Withdrawal]) -> None:
        done, errors = 0, []
        for withdrawal in queryset.order_by("pk"):
            try:
                approve_withdrawal(staff=_staff(request), withdrawal_id=withdrawal.pk)
                done += 1
            except DomainError as exc:
                errors.append(f"#{withdrawal.pk}: {exc.message}")
        _report(request, done, errors, _("%(count)d withdrawal(s) approved."))

    @admin.action(
        description=gettext_lazy("Mark selected withdrawals as sent (completed)"),
        permissions=["decide"],
    )
    def complete_selected(
        self, request: HttpRequest, queryset: QuerySet[Withdrawal]
    ) -> HttpResponse | None:
        withdrawals = list(queryset.select_related("user", "asset").order_by("pk"))
        if "apply" not in request.POST:
            return self._intermediate(request, "complete", withdrawals, form=None)
        done, errors = 0, []
        for withdrawal in withdrawals:
            txid = request.POST.get(f"txid_{withdrawal.pk}", "").strip()
            if not txid:
                errors.append(_("#%(id)s: no transaction id given.") % {"id": withdrawal.pk})
                continue
            try:
                complete_withdrawal(
                    staff=_staff(request), withdrawal_id=withdrawal.pk, external_txid=txid
                )
                done += 1
            except DomainError as exc:
                errors.append(f"#{withdrawal.pk}: {exc.message}")
        _report(request, done, errors, _("%(count)d withdrawal(s) completed."))
        return None

    @admin.action(
        description=gettext_lazy("Reject selected withdrawals (release funds)"),
        permissions=["decide"],
    )
    def reject_selected(
        self, request: HttpRequest, queryset: QuerySet[Withdrawal]
    ) -> HttpResponse | None:
        withdrawals = list(queryset.select_related("user", "asset").order_by("pk"))
        form = RejectWithdrawalsForm(request.POST if "apply" in request.POST else None)
        if not form.is_bound or not form.is_valid():
            return self._intermediate(request, "reject", withdrawals, form=form)
        done, errors = 0, []
        for withdrawal in withdrawals:
            try:
                reject_withdrawal(
                    staff=_staff(request),
                    withdrawal_id=withdrawal.pk,
                    reason=form.cleaned_data["reason"],
                )
                done += 1
            except DomainError as exc:
                errors.append(f"#{withdrawal.pk}: {exc.message}")
        _report(request, done, errors, _("%(count)d withdrawal(s) rejected."))
        return None

    def _intermediate(
        self,
        request: HttpRequest,
        decision: str,
        withdrawals: list[Withdrawal],
        form: RejectWithdrawalsForm | None,
    ) -> TemplateResponse:
        titles = {"complete": _("Complete withdrawals"), "reject": _("Reject withdrawals")}
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": titles[decision],
            "decision": decision,
            "action": f"{decision}_selected",
            "withdrawals": withdrawals,
            "form": form,
        }
        return TemplateResponse(request, "admin/accounts/withdrawal/decide.html", context)


# --- API keys: look and revoke, never a secret


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdminMixin):
    list_display = (
        "label",
        "user",
        "key_prefix",
        "key_type",
        "scopes",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    list_filter = ("key_type", "can_trade", "can_withdraw")
    search_fields = ("label", "user__email", "=key")
    list_select_related = ("user",)
    # `key` and `secret_encrypted` are left out on purpose; the prefix identifies a key.
    fields = (
        "label",
        "user",
        "key_prefix",
        "key_type",
        "public_key",
        "can_read",
        "can_trade",
        "can_withdraw",
        "ip_allowlist",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    readonly_fields = fields
    actions = ("revoke_selected",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        return super().get_queryset(request).defer("secret_encrypted")

    @admin.display(description=gettext_lazy("Key"))
    def key_prefix(self, obj: ApiKey) -> str:
        return format_html("<code>{}…</code>", obj.key[:8])

    @admin.display(description=gettext_lazy("Scopes"))
    def scopes(self, obj: ApiKey) -> str:
        return ", ".join(s for s in ("read", "trade", "withdraw") if getattr(obj, f"can_{s}"))

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.change_apikey")

    @admin.action(description=gettext_lazy("Revoke selected API keys"), permissions=["revoke"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        done, errors = 0, []
        for api_key in queryset.order_by("pk"):
            try:
                staff_revoke_api_key(
                    staff=_staff(request), api_key_id=api_key.pk, ip_address=client_ip(request)
                )
                done += 1
            except DomainError as exc:
                errors.append(f"{api_key.label}: {exc.message}")
        _report(request, done, errors, _("%(count)d API key(s) revoked."))


# --- the audit log, read-only


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin):
    list_display = ("created_at", "action", "actor", "target_type", "target_id", "ip_address")
    list_filter = ("action", "target_type")
    search_fields = ("action", "actor__email", "target_id", "ip_address")
    list_select_related = ("actor",)
    date_hierarchy = "created_at"


# --- allauth's authenticators: its admin shows `data`, which holds the TOTP secret


admin.site.unregister(Authenticator)


@admin.register(Authenticator)
class AuthenticatorAdmin(AuditedAdminMixin, AllauthAuthenticatorAdmin):
    """List and delete (a user who lost their device); never show the stored secret."""

    fields = ("user", "type", "created_at", "last_used_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
