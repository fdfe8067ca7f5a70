"""Staff pages for money crossing the exchange's edge: deposits (a read-only list plus a
"credit a deposit" page) and the withdrawal review queue (approve, complete, reject)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.amounts import format_amount
from accounts.errors import InvalidInput
from accounts.forms import CreditDepositForm, RejectWithdrawalsForm, add_domain_error
from accounts.http import actor_context
from accounts.models import Deposit, Withdrawal
from accounts.services.deposits import credit_deposit
from accounts.services.withdrawals import (
    approve_withdrawal,
    complete_withdrawal,
    reject_withdrawal,
)
from exchange.admin import AssetAmountsAdmin, ReadOnlyAdmin, apply_to_each, staff_user
from exchange.errors import DomainError


def _number(withdrawal: Withdrawal) -> str:
    return f"#{withdrawal.pk}"


@admin.register(Deposit)
class DepositAdmin(AssetAmountsAdmin, ReadOnlyAdmin):
    list_display = ("pk", "user", "asset", "amount", "external_ref", "credited_by", "created_at")
    list_filter = ("asset",)
    search_fields = ("user__email", "external_ref")
    list_select_related = ("user", "asset", "credited_by")
    change_list_template = "admin/accounts/deposit/change_list.html"
    asset_amounts = (("amount", "asset"),)

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
                    staff=staff_user(request),
                    context=actor_context(request),
                )
            except DomainError as exc:
                add_domain_error(form, exc)
            else:
                messages.success(
                    request,
                    _("Deposit #%(id)s: %(amount)s %(asset)s credited to %(email)s.")
                    % {
                        "id": deposit.pk,
                        "amount": format_amount(deposit.amount, deposit.asset.decimals),
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


@admin.register(Withdrawal)
class WithdrawalAdmin(AssetAmountsAdmin, ReadOnlyAdmin):
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
    asset_amounts = (("amount", "asset"), ("fee", "asset"))

    def has_decide_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.change_withdrawal")

    @admin.action(description=gettext_lazy("Approve selected withdrawals"), permissions=["decide"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Withdrawal]) -> None:
        staff, context = staff_user(request), actor_context(request)
        apply_to_each(
            request,
            queryset.order_by("pk"),
            lambda w: approve_withdrawal(staff=staff, withdrawal_id=w.pk, context=context),
            label=_number,
            success=_("%(count)d withdrawal(s) approved."),
        )

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
        staff, context = staff_user(request), actor_context(request)

        def complete(withdrawal: Withdrawal) -> None:
            txid = request.POST.get(f"txid_{withdrawal.pk}", "").strip()
            if not txid:
                raise InvalidInput(
                    _("no transaction id given."), field="external_txid", code="txid_required"
                )
            complete_withdrawal(
                staff=staff, withdrawal_id=withdrawal.pk, external_txid=txid, context=context
            )

        apply_to_each(
            request,
            withdrawals,
            complete,
            label=_number,
            success=_("%(count)d withdrawal(s) completed."),
        )
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
        staff, context = staff_user(request), actor_context(request)
        reason = form.cleaned_data["reason"]
        apply_to_each(
            request,
            withdrawals,
            lambda w: reject_withdrawal(
                staff=staff, withdrawal_id=w.pk, reason=reason, context=context
            ),
            label=_number,
            success=_("%(count)d withdrawal(s) rejected."),
        )
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
