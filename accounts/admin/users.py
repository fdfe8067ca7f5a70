"""Staff pages for people and their access: users (KYC level, freeze), authenticators and
API keys. Every decision goes through a service; nothing here shows a secret."""

from __future__ import annotations

from typing import Any

from allauth.mfa.admin import AuthenticatorAdmin as AllauthAuthenticatorAdmin
from allauth.mfa.models import Authenticator
from django import forms
from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.http import actor_context
from accounts.models import ApiKey, KycLevel, User
from accounts.services.apikeys import staff_revoke_api_key
from accounts.services.users import set_frozen, set_kyc_level
from exchange.admin import AuditedAdmin, ReadOnlyAdmin, apply_to_each, staff_user
from exchange.api.ratelimit import (
    LIMIT_FIELDS,
    InvalidRateLimit,
    check_api_key_limits,
    clean_limit,
    set_api_key_limits,
)
from exchange.errors import DomainError


def _email(user: User) -> str:
    return user.email


@admin.register(User)
class UserAdmin(AuditedAdmin):
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
        staff, context = staff_user(request), actor_context(request)
        apply_to_each(
            request,
            queryset.order_by("pk"),
            lambda user: set_kyc_level(staff=staff, user=user, level=level, context=context),
            label=_email,
            success=_("KYC level set for %(count)d user(s)."),
        )

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
        staff, context = staff_user(request), actor_context(request)
        apply_to_each(
            request,
            queryset.order_by("pk"),
            lambda user: set_frozen(staff=staff, user=user, is_frozen=frozen, context=context),
            label=_email,
            success=_("%(count)d user(s) frozen.") if frozen else _("%(count)d user(s) unfrozen."),
        )

    @admin.action(description=gettext_lazy("Freeze selected users"))
    def freeze(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._set_frozen(request, queryset, True)

    @admin.action(description=gettext_lazy("Unfreeze selected users"))
    def unfreeze(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._set_frozen(request, queryset, False)


# --- allauth's authenticators: its admin shows `data`, which holds the TOTP secret

admin.site.unregister(Authenticator)


@admin.register(Authenticator)
class AuthenticatorAdmin(AuditedAdmin, AllauthAuthenticatorAdmin):
    """List and delete (a user who lost their device); never show the stored secret."""

    fields = ("user", "type", "created_at", "last_used_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- API keys: look, revoke and raise rate limits; never a secret


# `key` and `secret_encrypted` are left out on purpose; the prefix identifies a key.
_API_KEY_SHOWN = (
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


class ApiKeyLimitsForm(forms.ModelForm):
    """The only editable part of a key: its rate-limit overrides (empty: the default).

    The service's own checks run as form validation, so a bad value is a field error and
    nothing is saved.
    """

    class Meta:
        model = ApiKey
        fields = LIMIT_FIELDS

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in LIMIT_FIELDS:
            if name in cleaned:
                try:
                    cleaned[name] = clean_limit(name, cleaned[name])
                except InvalidRateLimit as exc:
                    self.add_error(name, exc.message)
        if not self.errors:
            values = {name: cleaned.get(name) for name in self.changed_data if name in LIMIT_FIELDS}
            try:
                check_api_key_limits(api_key=self.instance, values=values)
            except InvalidRateLimit as exc:
                self.add_error(exc.field, exc.message)
        return cleaned


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    """Keys are created and revoked by their owners (and revoked by staff, audited); staff
    may raise a key's rate limits here, through exchange.api.ratelimit.set_api_key_limits
    (audited with before and after). Everything else on the page is read-only."""

    form = ApiKeyLimitsForm
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
    readonly_fields = _API_KEY_SHOWN
    fieldsets = (
        (None, {"fields": _API_KEY_SHOWN}),
        (
            gettext_lazy("Rate limits (empty: the default from settings)"),
            {"fields": LIMIT_FIELDS},
        ),
    )
    actions = ("revoke_selected",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("accounts.change_apikey")

    def save_model(self, request: HttpRequest, obj: ApiKey, form: ModelForm, change: bool) -> None:
        values = {
            name: form.cleaned_data[name] for name in form.changed_data if name in LIMIT_FIELDS
        }
        if not change or not values:
            return
        try:
            set_api_key_limits(
                api_key_id=obj.pk,
                values=values,
                actor=staff_user(request),
                context=actor_context(request),
            )
        except DomainError as exc:  # refused after the form's checks (a race): say so
            self.message_user(request, exc.message, level=messages.ERROR)

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
        staff, context = staff_user(request), actor_context(request)
        apply_to_each(
            request,
            queryset.order_by("pk"),
            lambda key: staff_revoke_api_key(staff=staff, api_key_id=key.pk, context=context),
            label=lambda key: key.label,
            success=_("%(count)d API key(s) revoked."),
        )
