"""Business-rule errors of the accounts app, each with a stable machine `code`.

Clients switch on `code`; `field` names the input at fault. The codes are part of the API
contract: rename a class freely, never a code.
"""

from __future__ import annotations

from decimal import Decimal

from exchange.errors import DomainError, NotFound, PermissionDeniedError

__all__ = [
    "AccountFrozen",
    "AssetUnavailable",
    "DepositConflict",
    "InsufficientFunds",
    "InvalidAddress",
    "InvalidAmount",
    "InvalidInput",
    "NotFound",
    "PermissionDeniedError",
    "TwoFactorRequired",
    "UnknownAsset",
    "WithdrawalLimitExceeded",
    "WithdrawalStateConflict",
]


class InvalidAmount(DomainError):
    """An amount that is not a plain positive decimal within the asset's precision.

    Codes: amount_invalid, amount_not_positive, amount_too_precise, amount_too_long,
    amount_too_large, amount_below_minimum.
    """

    code = "amount_invalid"


class InvalidInput(DomainError):
    """A non-amount input that is malformed (a reference, a reason, a level)."""

    code = "invalid"


class InvalidAddress(DomainError):
    """A withdrawal address that is empty, too long or not printable ASCII."""

    code = "address_invalid"


class UnknownAsset(NotFound):
    """No asset with that code or id."""

    code = "asset_unknown"


class AssetUnavailable(DomainError):
    """The asset exists but is disabled."""

    code = "asset_inactive"


class InsufficientFunds(DomainError):
    """A debit would take a bucket of a balance below zero."""

    code = "insufficient_funds"
    status = 409

    def __init__(
        self,
        message: str = "Insufficient funds.",
        *,
        asset: str = "",
        requested: Decimal | None = None,
        field: str | None = "amount",
    ) -> None:
        super().__init__(message, field=field)
        self.asset = asset
        self.requested = requested


class DepositConflict(DomainError):
    """The external reference was already credited with a different user or amount."""

    code = "deposit_conflict"
    status = 409


class AccountFrozen(DomainError):
    """The user is frozen by staff: no withdrawals, transfers or trading."""

    code = "account_frozen"
    status = 403


class TwoFactorRequired(DomainError):
    """The action needs a TOTP authenticator set up on the account."""

    code = "two_factor_required"
    status = 403


class WithdrawalLimitExceeded(DomainError):
    """Today's withdrawals plus this one exceed the daily limit of the user's KYC level."""

    code = "withdrawal_limit_exceeded"


class WithdrawalStateConflict(DomainError):
    """The withdrawal is not in a state that allows this decision (already decided)."""

    code = "withdrawal_invalid_state"
    status = 409
