"""The staff console's site, and the pieces every app's admin is built from.

`ExchangeAdminSite` is `admin.site` (see exchange/apps.py). Its door: sign-in goes through
allauth (password, then the TOTP step), and the site refuses staff without a TOTP
authenticator or whose session did not pass an MFA check. Staff who have none yet are sent
to set one up.

The building blocks: `ReadOnlyAdmin` for rows only services write, `AuditedAdmin` for plain
edits (each goes to the audit log with the IP), `AssetAmountsAdmin` to show money with its
asset's decimals, and `apply_to_each`, the one way an admin action calls a service per
selected row and reports what it refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from operator import attrgetter
from typing import Any, TypeVar

from allauth.account import app_settings as account_settings
from allauth.account.authentication import get_authentication_records
from allauth.account.decorators import secure_admin_login
from allauth.account.internal.flows.login import record_authentication
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.forms.utils import pretty_name
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache

from accounts.amounts import format_amount
from accounts.http import client_ip
from accounts.models import User
from accounts.services.audit import record_audit
from accounts.services.twofactor import has_totp
from exchange.errors import DomainError

Row = TypeVar("Row", bound=Model)

# --- the door


def staff_passed_mfa(request: HttpRequest) -> bool:
    """True when the user is active staff with a TOTP authenticator and this session was
    authenticated with it (at login, or re-authenticated since)."""
    user = request.user
    if not (isinstance(user, User) and user.is_active and user.is_staff):
        return False
    records = get_authentication_records(request, user)
    return has_totp(user=user) and any(record.get("method") == "mfa" for record in records)


def count_sign_in_as_reauthentication(request: HttpRequest, user: User) -> None:
    """Let the password sign-in that just happened stand as allauth's reauthentication.

    allauth (65.21) lets a user add an authenticator only after a *re*authentication newer
    than ACCOUNT_REAUTHENTICATION_TIMEOUT, and the sign-in's own password step does not
    count as one. Staff without TOTP are sent to the set-up straight from that sign-in, so
    they were asked for the password twice in a row. A password typed within the timeout
    proves what a reauthentication proves, so it is recorded as one, dated when it was
    typed: the timeout still runs from the sign-in. Any other last step (an older sign-in,
    a password reset, a code) leaves allauth's check as it is.
    """
    records = get_authentication_records(request, user)
    last = records[-1] if records else {}
    if last.get("method") != "password" or last.get("reauthenticated"):
        return
    signed_in_at = float(last.get("at", 0))
    if time.time() - signed_in_at >= account_settings.REAUTHENTICATION_TIMEOUT:
        return
    # `at` overrides the record's timestamp (allauth copies extra data over its defaults).
    record_authentication(request, user, method="password", reauthenticated=True, at=signed_in_at)


class ExchangeAdminSite(admin.AdminSite):
    """The admin, open only to active staff whose session passed the TOTP step."""

    site_header = gettext_lazy("Exchange staff")
    site_title = gettext_lazy("Exchange staff")

    def has_permission(self, request: HttpRequest) -> bool:
        return bool(super().has_permission(request)) and staff_passed_mfa(request)

    @method_decorator(never_cache)
    @method_decorator(secure_admin_login)  # anonymous -> allauth's login; non-staff -> 403
    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        user = request.user
        if isinstance(user, User) and not staff_passed_mfa(request):
            return self._second_factor(request, user)
        return super().login(request, extra_context=extra_context)

    def _second_factor(self, request: HttpRequest, user: User) -> HttpResponse:
        """Staff without 2FA go to set it up; staff whose session skipped it give a code."""
        if not has_totp(user=user):
            messages.warning(
                request, _("Staff must set up two-factor authentication before using the admin.")
            )
            count_sign_in_as_reauthentication(request, user)
            return HttpResponseRedirect(reverse("mfa_activate_totp"))
        next_url = request.GET.get("next", "")
        if not url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            next_url = reverse("admin:index", current_app=self.name)
        query = urlencode({"next": next_url})
        return HttpResponseRedirect(f"{reverse('mfa_reauthenticate')}?{query}")


# --- building blocks


def staff_user(request: HttpRequest) -> User:
    """The signed-in staff member (the site lets nobody else in)."""
    user = request.user
    if not isinstance(user, User):  # unreachable behind the site's has_permission
        raise PermissionDenied
    return user


def apply_to_each(
    request: HttpRequest,
    rows: Iterable[Row],
    call: Callable[[Row], object],
    *,
    label: Callable[[Row], str],
    success: str,
    success_values: Mapping[str, object] | None = None,
) -> int:
    """Call the service for each row; report how many it took and each refusal.

    `call` raises DomainError to refuse a row: the message, prefixed with `label(row)`,
    is shown and the other rows still go ahead (each service call is its own
    transaction). `success` has a `%(count)d` placeholder (and any in `success_values`).
    Returns how many rows the service took.
    """
    done, errors = 0, []
    for row in rows:
        try:
            call(row)
        except DomainError as exc:
            errors.append(f"{label(row)}: {exc.message}")
        else:
            done += 1
    if done:
        messages.success(request, success % {**(success_values or {}), "count": done})
    for error in errors:
        messages.error(request, error)
    return done


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by services: staff may look, never add, edit or delete."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AuditedAdmin(admin.ModelAdmin):
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
            actor=staff_user(request),
            target=obj,
            ip_address=client_ip(request),
            details={"object": str(obj)[:200], "change": str(message)[:2000]},
        )


# --- money with its asset's decimals


def _amount_display(name: str, asset_path: str) -> Callable[[Any, Any], str | None]:
    get_asset: Callable[[Any], Any] = attrgetter(asset_path) if asset_path else lambda obj: obj

    @admin.display(description=pretty_name(name), ordering=name)
    def show(model_admin: Any, obj: Any) -> str | None:
        value = getattr(obj, name)
        return None if value is None else format_amount(value, get_asset(obj).decimals)

    show.__name__ = f"{name}_amount"
    return show


class _AssetAmounts:
    """Shared by AssetAmountsAdmin and AssetAmountsInline (see there)."""

    # (field name, dotted path from the row to the Asset it is counted in; "": the row)
    asset_amounts: tuple[tuple[str, str], ...] = ()
    _amount_names: frozenset[str] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, asset_path in cls.asset_amounts:
            setattr(cls, f"{name}_amount", _amount_display(name, asset_path))
        cls._amount_names = frozenset(name for name, _path in cls.asset_amounts)

    def _as_amounts(self, names: Iterable[Any]) -> list[Any]:
        """`names` (a fields option, rows as tuples) with each money field's display."""
        return [
            tuple(self._as_amounts(n))
            if isinstance(n, (list, tuple))
            else f"{n}_amount"
            if n in self._amount_names
            else n
            for n in names
        ]


class AssetAmountsAdmin(_AssetAmounts, admin.ModelAdmin):
    """Money columns show the asset's own decimals (BTC 0.50000000, USDT 60000.000000),
    never the column's 18; a value finer than its asset shows every digit it has.

    List columns always do; detail pages do where the row cannot be edited (an editable
    field keeps its input). Select the assets in `list_select_related`.
    """

    def get_list_display(self, request: HttpRequest) -> Any:
        return self._as_amounts(super().get_list_display(request))

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        # View-only: Django shows every field read-only and builds the form without them.
        return [
            (title, {**options, "fields": self._as_amounts(options["fields"])})
            for title, options in fieldsets
        ]


class AssetAmountsInline(_AssetAmounts, admin.TabularInline):
    """A read-only inline whose money columns show the asset's decimals."""

    can_delete = False
    extra = 0

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self._as_amounts(super().get_fields(request, obj))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.get_fields(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
