"""Events the matching engine emits, one market sequence number each.

Inside the hot path an event is a *raw tuple* ``(EventClass, seq, *fields)`` whose fields are
in the dataclass's field order: building a tuple costs a fraction of building a frozen
dataclass. ``Engine.apply`` decodes them with ``decode_event``; the benchmark entry points
return the raw tuples. Both carry exactly the same information.
"""

from dataclasses import dataclass, fields
from typing import Any

from trading.engine.commands import OrderType, Side, StpMode, TimeInForce


@dataclass(frozen=True, slots=True)
class Accepted:
    """The order passed validation; it matches, rests, or waits as a stop from here on."""

    seq: int
    order_id: int
    account_id: int
    side: Side
    order_type: OrderType
    tif: TimeInForce
    price_ticks: int
    qty_lots: int
    quote_budget: int
    stop_ticks: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """The command changed nothing; ``reason`` is a stable machine code."""

    seq: int
    order_id: int
    account_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill, always at the maker's price."""

    seq: int
    maker_order_id: int
    taker_order_id: int
    maker_account_id: int
    taker_account_id: int
    price_ticks: int
    qty_lots: int
    taker_side: Side
    maker_filled: bool
    taker_filled: bool


@dataclass(frozen=True, slots=True)
class Cancelled:
    """A resting order or pending stop was cancelled with ``remaining_lots`` still open.

    ``remaining_quote`` is the budget of a cancelled stop market buy by quote amount (else 0).
    """

    seq: int
    order_id: int
    account_id: int
    remaining_lots: int
    remaining_quote: int


@dataclass(frozen=True, slots=True)
class Expired:
    """The order ended unfilled in part: IOC/FOK/market leftover or self-trade prevention.

    ``remaining_quote`` is the unspent budget of a market buy by quote amount (else 0).
    """

    seq: int
    order_id: int
    account_id: int
    remaining_lots: int
    remaining_quote: int
    reason: str


@dataclass(frozen=True, slots=True)
class StopTriggered:
    """A stop order triggered and now executes.

    ``trigger_price_ticks`` is the trade price that crossed the stop: the highest price of the
    triggering execution for a buy stop, the lowest for a sell stop (or the last trade price
    when the stop was already crossed on arrival).
    """

    seq: int
    order_id: int
    account_id: int
    stop_ticks: int
    trigger_price_ticks: int


@dataclass(frozen=True, slots=True)
class Reduced:
    """An order's open quantity went down by ``reduced_lots`` to ``remaining_lots``."""

    seq: int
    order_id: int
    account_id: int
    remaining_lots: int
    reduced_lots: int


@dataclass(frozen=True, slots=True)
class LevelChanged:
    """The total open lots at one price level; ``total_lots == 0`` means the level is gone."""

    seq: int
    side: Side
    price_ticks: int
    total_lots: int


Event = Accepted | Rejected | Trade | Cancelled | Expired | StopTriggered | Reduced | LevelChanged
# A raw event: (EventClass, seq, *fields); typed loosely because its shape depends on the class.
RawEvent = tuple[Any, ...]

EVENT_TYPES: dict[str, type[Event]] = {
    "accepted": Accepted,
    "rejected": Rejected,
    "trade": Trade,
    "cancelled": Cancelled,
    "expired": Expired,
    "stop_triggered": StopTriggered,
    "reduced": Reduced,
    "level_changed": LevelChanged,
}
_TYPE_NAMES: dict[type[Event], str] = {cls: name for name, cls in EVENT_TYPES.items()}
_ENUM_FIELDS: dict[str, Any] = {
    "side": Side,
    "taker_side": Side,
    "order_type": OrderType,
    "tif": TimeInForce,
    "stp_mode": StpMode,
}


def decode_event(raw: RawEvent) -> Event:
    """Turn a raw event tuple into its dataclass."""
    event: Event = raw[0](*raw[1:])
    return event


def event_to_dict(event: Event) -> dict[str, Any]:
    """Return a JSON-safe dict (str, int and bool values) with a ``type`` key."""
    out: dict[str, Any] = {"type": _TYPE_NAMES[type(event)]}
    for field in fields(event):
        value = getattr(event, field.name)
        out[field.name] = str(value) if field.name in _ENUM_FIELDS else value
    return out


def event_from_dict(data: dict[str, Any]) -> Event:
    """Inverse of ``event_to_dict``; raises ``KeyError``/``ValueError``/``TypeError`` on junk."""
    cls = EVENT_TYPES[data["type"]]
    kwargs = {}
    for field in fields(cls):
        value = data[field.name]
        enum_cls = _ENUM_FIELDS.get(field.name)
        kwargs[field.name] = enum_cls(value) if enum_cls is not None else value
    event: Event = cls(**kwargs)
    return event
