"""Web pages of the accounts app: home, wallet, API keys, webhooks, security.

Thin: a form parses, a service acts, a DomainError becomes a form error. Nothing here
writes a row itself.
"""

from __future__ import annotations

from decimal import Decimal

from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.amounts import money_context
from accounts.errors import UnknownAsset
from accounts.forms import (
    ApiKeyCreateForm,
    WebhookCreateForm,
    WithdrawalForm,
    add_domain_error,
    deposit_reference,
)
from accounts.http import actor_context
from accounts.models import Asset, AuditLog, Balance, User
from accounts.selectors import (
    estimate_value,
    get_asset,
    list_assets,
    list_balances,
    list_deposits,
    list_ledger,
    list_withdrawals,
)
from accounts.services.apikeys import create_api_key, list_api_keys, revoke_api_key
from accounts.services.twofactor import has_totp, verify_totp_code
from accounts.services.webhooks import (
    create_webhook_endpoint,
    delete_webhook_endpoint,
    get_webhook_endpoint,
    list_webhook_deliveries,
    list_webhook_endpoints,
    replay_webhook_delivery,
)
from accounts.services.withdrawals import request_withdrawal
from exchange.errors import DomainError, NotFound
from markets.selectors import last_prices

HISTORY_ROWS = 50  # a page of history; older rows belong to an export, not to this page
SECURITY_EVENTS_SHOWN = 15
SECURITY_ACTIONS = (
    "auth.login",
    "auth.login_failed",
    "auth.logout",
    "auth.mfa_failed",
    "auth.totp_failed",
    "mfa.enabled",
    "mfa.disabled",
    "mfa.recovery_codes_regenerated",
    "api_key.created",
    "api_key.revoked",
    "webhook.created",
    "webhook.deleted",
)
DELIVERIES_SHOWN = 50  # the page shows recent deliveries; the API pages through all
VALUE_ASSET = "USDT"  # the wallet's estimated values: the quote asset of the demo markets


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The landing page: what the exchange offers and the listed assets."""
    return render(request, "home.html", {"assets": list_assets()})


@login_required
@require_http_methods(["GET", "POST"])
def wallet(request: HttpRequest) -> HttpResponse:
    """Balances, deposit instructions, the withdrawal form and the account's history.

    A withdrawal needs a valid TOTP code, checked here before the service is called; any
    refusal re-renders the form with the error and changes nothing.
    """
    user = _user(request)
    form = WithdrawalForm(request.POST or None, prefix="withdraw")
    if request.method == "POST" and form.is_valid():
        try:
            verify_totp_code(
                user=user, code=form.cleaned_data["totp_code"], context=actor_context(request)
            )
            withdrawal = request_withdrawal(
                user=user,
                asset=form.cleaned_data["asset"],
                amount=form.cleaned_data["amount"],
                address=form.cleaned_data["address"],
            )
        except DomainError as exc:
            add_domain_error(form, exc)
        else:
            messages.success(
                request,
                _("Withdrawal of %(amount)s %(asset)s requested; it is pending review.")
                % {"amount": withdrawal.amount, "asset": withdrawal.asset.code},
            )
            return redirect("wallet")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/wallet.html", _wallet_context(user, form), status=status)


@login_required
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    """List the user's API keys and create new ones; an HMAC secret is shown exactly once.

    The secret is rendered into the response to the creating POST only: it is never put in
    the session, a message or a redirect, and the response is marked no-store.
    """
    user = _user(request)
    form = ApiKeyCreateForm(request.POST or None, prefix="key")
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = create_api_key(
                user=user, context=actor_context(request), **form.service_kwargs()
            )
        except DomainError as exc:
            add_domain_error(form, exc, fields=ApiKeyCreateForm.SERVICE_FIELDS)
        else:
            form = ApiKeyCreateForm(prefix="key")
    context = {
        "form": form,
        "created": created,
        "keys": list_api_keys(user=user),
        "has_totp": has_totp(user=user),
    }
    status = 400 if request.method == "POST" and created is None else 200
    response = render(request, "accounts/api_keys.html", context, status=status)
    add_never_cache_headers(response)
    return response


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke one of the user's keys. Someone else's key id is a 404, like a missing one."""
    try:
        api_key = revoke_api_key(user=_user(request), api_key_id=pk, context=actor_context(request))
    except NotFound as exc:
        raise Http404(exc.message) from exc
    messages.success(request, _("API key “%(label)s” revoked.") % {"label": api_key.label})
    return HttpResponseRedirect(reverse("api_keys"))


@login_required
@require_http_methods(["GET", "POST"])
def webhooks(request: HttpRequest) -> HttpResponse:
    """List the user's webhook endpoints and register new ones; the signing secret is shown
    exactly once, in the answer to the creating POST (never stored in the session)."""
    user = _user(request)
    form = WebhookCreateForm(request.POST or None, prefix="hook")
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = create_webhook_endpoint(
                user=user,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                context=actor_context(request),
            )
        except DomainError as exc:
            add_domain_error(form, exc)
        else:
            form = WebhookCreateForm(prefix="hook")
    context = {"form": form, "created": created, "endpoints": list_webhook_endpoints(user=user)}
    status = 400 if request.method == "POST" and created is None else 200
    response = render(request, "accounts/webhooks.html", context, status=status)
    add_never_cache_headers(response)
    return response


@login_required
@require_GET
def webhook_deliveries(request: HttpRequest, pk: int) -> HttpResponse:
    """One endpoint's recent deliveries, with a replay button on each."""
    try:
        endpoint = get_webhook_endpoint(user=_user(request), endpoint_id=pk)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    deliveries = list_webhook_deliveries(endpoint=endpoint)[:DELIVERIES_SHOWN]
    context = {"endpoint": endpoint, "deliveries": deliveries}
    return render(request, "accounts/webhook_deliveries.html", context)


@login_required
@require_POST
def webhook_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete one of the user's endpoints. Someone else's id is a 404, like a missing one."""
    try:
        delete_webhook_endpoint(user=_user(request), endpoint_id=pk, context=actor_context(request))
    except NotFound as exc:
        raise Http404(exc.message) from exc
    messages.success(request, _("Webhook endpoint deleted."))
    return HttpResponseRedirect(reverse("webhooks"))


@login_required
@require_POST
def webhook_replay(request: HttpRequest, pk: int, delivery_pk: int) -> HttpResponse:
    """Make one delivery due again (delivered and dead ones too)."""
    try:
        delivery = replay_webhook_delivery(
            user=_user(request), endpoint_id=pk, delivery_id=delivery_pk
        )
    except NotFound as exc:
        raise Http404(exc.message) from exc
    messages.success(
        request, _("Event %(event)s will be sent again.") % {"event": delivery.event_id}
    )
    return HttpResponseRedirect(reverse("webhook_deliveries", args=[pk]))


@login_required
@require_GET
def security(request: HttpRequest) -> HttpResponse:
    """2FA status with links to allauth's MFA pages, and recent security events."""
    user = _user(request)
    authenticators = {a.type: a for a in Authenticator.objects.filter(user=user)}
    recovery = authenticators.get(Authenticator.Type.RECOVERY_CODES)
    # The audit log has no per-user selector yet; this read is the page's only query of it.
    # Failed sign-ins have no actor (nobody signed in) but name the account as the target.
    events = AuditLog.objects.filter(
        Q(actor=user) | Q(target_type="accounts.user", target_id=str(user.pk)),
        action__in=SECURITY_ACTIONS,
    ).order_by("-pk")[:SECURITY_EVENTS_SHOWN]
    context = {
        "totp": authenticators.get(Authenticator.Type.TOTP),
        "recovery_codes": recovery,
        "unused_recovery_codes": len(recovery.wrap().get_unused_codes()) if recovery else 0,
        "events": events,
    }
    return render(request, "accounts/security.html", context)


def _wallet_context(user: User, form: WithdrawalForm) -> dict[str, object]:
    balances = {b.asset_id: b for b in list_balances(user=user)}
    rows: list[dict[str, object]] = [
        {"asset": asset, "balance": balances.pop(asset.pk, None)} for asset in list_assets()
    ]
    # A delisted asset the user still holds stays visible: they must be able to see it.
    rows += [{"asset": balance.asset, "balance": balance} for balance in balances.values()]
    valuation = _valuation(rows)
    return {
        "rows": rows,
        **valuation,
        "form": form,
        "reference": deposit_reference(user),
        "has_totp": has_totp(user=user),
        "deposits": list_deposits(user=user)[:HISTORY_ROWS],
        "withdrawals": list_withdrawals(user=user)[:HISTORY_ROWS],
        "ledger": list_ledger(user=user)[:HISTORY_ROWS],
    }


def _valuation(rows: list[dict[str, object]]) -> dict[str, object]:
    """Give each wallet row its estimated value in VALUE_ASSET (None: no market prices it)
    and sum the priced ones; the unpriced holdings are named so the page can say so."""
    try:
        quote = get_asset(code=VALUE_ASSET)
    except UnknownAsset:
        quote = None
    prices = last_prices(quote_code=VALUE_ASSET) if quote is not None else {}
    total = Decimal(0)
    unpriced = []
    for row in rows:
        asset, balance = row["asset"], row["balance"]
        if not isinstance(asset, Asset):  # unreachable: rows are built above
            raise TypeError("wallet row without an asset")
        held = balance.total if isinstance(balance, Balance) else Decimal(0)
        value = None
        if quote is not None:
            value = estimate_value(
                asset_code=asset.code, amount=held, quote_code=quote.code, prices=prices
            )
        row["value"] = value
        if value is None:
            if held:
                unpriced.append(asset.code)
        else:
            with money_context():
                total += value
    return {"value_asset": quote, "value_total": total, "unpriced": unpriced}


def _user(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User):  # unreachable: login_required ran first
        raise PermissionDenied
    return user
