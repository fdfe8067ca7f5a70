"""Web forms: they parse what a browser sent; services decide and act.

A DomainError raised by a service comes back to its form through `add_domain_error`, so it
shows next to the field at fault, like any other validation error.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, ClassVar

from django import forms
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from accounts.amounts import parse_amount
from accounts.models import ApiKeyType, Asset, User, WebhookEventType
from accounts.selectors import list_assets
from exchange.errors import DomainError

DEPOSIT_REFERENCE_PREFIX = "EX"
_DEPOSIT_REFERENCE = re.compile(r"EX-?0*([1-9][0-9]{0,17})", re.IGNORECASE)
# Services speak English; these are the messages a person sees in the other languages.
_LOCALIZED_MESSAGES = {
    "account_frozen": _("Your account is frozen; this action is disabled."),
    "address_invalid": _("Enter a valid address (printable characters, at most 200)."),
    "amount_below_minimum": _("The amount is below the minimum withdrawal for this asset."),
    "amount_invalid": _("Enter a plain decimal amount such as 12.5."),
    "amount_not_positive": _("The amount must be greater than zero."),
    "amount_too_large": _("The amount is too large."),
    "amount_too_long": _("The amount is too long."),
    "amount_too_precise": _("The amount has more decimal places than this asset allows."),
    "asset_inactive": _("This asset is currently unavailable."),
    "asset_unknown": _("Unknown asset."),
    "insufficient_funds": _("Insufficient funds for this amount plus the fee."),
    "two_factor_required": _("Set up two-factor authentication first."),
    "withdrawal_limit_exceeded": _("This exceeds your daily withdrawal limit."),
    "url_required": _("Enter the URL of your receiver."),
    "url_invalid": _("Enter a valid URL (ASCII, no spaces, no #fragment)."),
    "url_too_long": _("The URL is too long."),
    "url_scheme_invalid": _("Only http and https URLs are allowed."),
    "url_https_required": _("The URL must use https."),
    "url_credentials": _("The URL must not contain a user name or password."),
    "url_host_unresolvable": _("The URL's host name does not resolve."),
    "url_forbidden": _("Webhooks cannot be sent to private or internal addresses."),
    "events_required": _("Choose at least one event type."),
    "event_type_unknown": _("Unknown event type."),
    "too_many_endpoints": _("You have too many webhook endpoints; delete one first."),
}


def deposit_reference(user: User) -> str:
    """The reference a user quotes with a bank transfer or deposit memo: EX-<user id>."""
    return f"{DEPOSIT_REFERENCE_PREFIX}-{user.pk:06d}"


def user_id_from_deposit_reference(reference: str) -> int | None:
    """The user id inside a deposit reference, or None when it is not one."""
    match = _DEPOSIT_REFERENCE.fullmatch(reference.strip())
    return int(match.group(1)) if match else None


def add_domain_error(
    form: forms.Form, error: DomainError, *, fields: dict[str, str] | None = None
) -> None:
    """Attach a service's DomainError to the form field it names (or to the form).

    `fields` maps a service's field name to the form's where they differ.
    """
    name = (fields or {}).get(error.field or "", error.field)
    message: Any = error.message  # Any: str or a lazy translation
    if not (get_language() or "en").startswith("en") and error.code in _LOCALIZED_MESSAGES:
        message = _LOCALIZED_MESSAGES[error.code]
    form.add_error(name if name in form.fields else None, message)


class AssetChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Asset) -> str:  # type: ignore[override]
        return f"{obj.code} · {obj.name}"


class WithdrawalForm(forms.Form):
    """Asset, amount, destination and the TOTP code that authorises the withdrawal."""

    asset = AssetChoiceField(queryset=Asset.objects.none(), label=_("Asset"), empty_label=None)
    amount = forms.CharField(
        label=_("Amount"),
        max_length=40,
        widget=forms.TextInput(
            attrs={"inputmode": "decimal", "autocomplete": "off", "class": "ltr"}
        ),
    )
    address = forms.CharField(
        label=_("Destination address"),
        max_length=200,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "class": "ltr"}
        ),
    )
    totp_code = forms.CharField(
        label=_("Authenticator code"),
        max_length=16,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "class": "code-input"}
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["asset"].queryset = list_assets()  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        asset = cleaned.get("asset")
        if asset is not None and "amount" in cleaned:
            try:
                cleaned["amount"] = parse_amount(cleaned["amount"], asset=asset)
            except DomainError as exc:
                add_domain_error(self, exc)
        return cleaned


EXPIRY_CHOICES = [
    ("", _("Never")),
    ("7", _("In 7 days")),
    ("30", _("In 30 days")),
    ("90", _("In 90 days")),
    ("365", _("In a year")),
]


class ApiKeyCreateForm(forms.Form):
    """A new API key: label, type, permissions, allowlist, expiry; TOTP for withdraw."""

    label = forms.CharField(label=_("Label"), max_length=64)
    key_type = forms.ChoiceField(
        label=_("Key type"),
        choices=ApiKeyType.choices,
        initial=ApiKeyType.HMAC,
        widget=forms.RadioSelect,
    )
    public_key = forms.CharField(
        label=_("Ed25519 public key (PEM)"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(
            attrs={
                "rows": 4,
                "spellcheck": "false",
                "class": "ltr",
                "placeholder": "-----BEGIN PUBLIC KEY-----",
            }
        ),
        help_text=_("Only for Ed25519 keys. Keep the private key on your side."),
    )
    can_read = forms.BooleanField(label=_("Read"), required=False, initial=True)
    can_trade = forms.BooleanField(label=_("Trade"), required=False)
    can_withdraw = forms.BooleanField(
        label=_("Withdraw"),
        required=False,
        help_text=_("Needs two-factor authentication and a code below."),
    )
    ip_allowlist = forms.CharField(
        label=_("IP allowlist"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(
            attrs={
                "rows": 3,
                "spellcheck": "false",
                "class": "ltr",
                "placeholder": "203.0.113.7\n10.0.0.0/8",
            }
        ),
        help_text=_("One IP address or CIDR network per line. Empty: any address."),
    )
    expires_in_days = forms.ChoiceField(label=_("Expires"), choices=EXPIRY_CHOICES, required=False)
    totp_code = forms.CharField(
        label=_("Authenticator code"),
        required=False,
        max_length=16,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "class": "code-input"}
        ),
        help_text=_("Required only for the withdraw permission."),
    )

    # The service's field names, where the form's differ.
    SERVICE_FIELDS: ClassVar[dict[str, str]] = {"expires_at": "expires_in_days"}

    def service_kwargs(self) -> dict[str, Any]:
        """The cleaned values as `create_api_key` keyword arguments."""
        data = self.cleaned_data
        days = data.get("expires_in_days")
        return {
            "label": data["label"],
            "key_type": data["key_type"],
            "public_key_pem": data.get("public_key", ""),
            "can_read": data["can_read"],
            "can_trade": data["can_trade"],
            "can_withdraw": data["can_withdraw"],
            "ip_allowlist": re.split(r"[\s,]+", data.get("ip_allowlist", "").strip())
            if data.get("ip_allowlist", "").strip()
            else [],
            "expires_at": timezone.now() + timedelta(days=int(days)) if days else None,
            "totp_code": data.get("totp_code", ""),
        }


class CreditDepositForm(forms.Form):
    """Staff: credit a deposit that arrived from outside (admin page)."""

    user = forms.CharField(
        label=_("User"),
        max_length=254,
        help_text=_("The user's email address or deposit reference (EX-000123)."),
    )
    asset = AssetChoiceField(queryset=Asset.objects.none(), label=_("Asset"))
    amount = forms.CharField(label=_("Amount"), max_length=40)
    external_ref = forms.CharField(
        label=_("External reference"),
        max_length=128,
        help_text=_(
            "Transaction id or bank reference. Crediting the same reference twice "
            "is harmless: the second time changes nothing."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["asset"].queryset = list_assets(active_only=False)  # type: ignore[attr-defined]

    def clean_user(self) -> User:
        raw = self.cleaned_data["user"].strip()
        user_id = user_id_from_deposit_reference(raw)
        found = (
            User.objects.filter(pk=user_id).first()
            if user_id is not None
            else User.objects.filter(email__iexact=raw).first()
        )
        if found is None:
            raise forms.ValidationError(_("No user with that email address or reference."))
        return found


class RejectWithdrawalsForm(forms.Form):
    """Staff: why the selected withdrawals are rejected (shown to the user)."""

    reason = forms.CharField(label=_("Reason"), max_length=200)


class WebhookCreateForm(forms.Form):
    """A new webhook endpoint: the receiver's URL and the event types it wants. The URL's
    rules (https, public address, length) are the service's: accounts.webhooks.targets."""

    url = forms.CharField(
        label=_("Receiver URL"),
        max_length=2100,
        widget=forms.URLInput(
            attrs={"class": "ltr", "spellcheck": "false", "placeholder": "https://"}
        ),
        help_text=_("An https address on the public internet."),
    )
    events = forms.MultipleChoiceField(
        label=_("Events"),
        choices=WebhookEventType.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one event type.")},
    )
