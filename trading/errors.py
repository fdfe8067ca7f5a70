"""Business-rule errors of trading, each with a stable machine `code`.

Clients switch on `code`; `field` names the input at fault. Rename a class freely, never a
code. Codes raised with `InvalidOrder` (status 400):

- side_invalid, order_type_invalid, time_in_force_invalid, stp_mode_invalid,
  client_order_id_invalid
- price_required, price_not_allowed, price_invalid, price_too_precise, price_off_tick,
  price_out_of_band (and the same six with the `stop_price_` prefix)
- quantity_required, quantity_not_allowed, quantity_invalid, quantity_too_precise,
  quantity_off_lot, quantity_below_minimum, quantity_above_maximum
- quote_amount_not_allowed, quote_amount_invalid, quote_amount_too_precise,
  quote_amount_too_small
- notional_below_minimum, market_no_reference_price

Amount parsing errors keep the accounts codes (amount_invalid, amount_not_positive,
amount_too_precise, amount_too_long, amount_too_large) with `field` set to the input.
"""

from __future__ import annotations

from exchange.errors import DomainError, NotFound


class InvalidOrder(DomainError):
    """The order breaks a market rule or is malformed; `code` says which rule."""

    code = "order_invalid"


class MarketNotTrading(DomainError):
    """The market's status refuses this request: market_halted or market_cancel_only."""

    code = "market_halted"
    status = 409


class DuplicateClientOrderId(DomainError):
    """The client_order_id was already used by this user for a different order."""

    code = "duplicate_client_order_id"
    status = 409


class OrderNotFound(NotFound):
    """No such order for this user (another user's order looks exactly the same)."""

    code = "order_not_found"


class OrderNotOpen(DomainError):
    """The order is already in a terminal state (filled, canceled, rejected, expired)."""

    code = "order_not_open"
    status = 409
