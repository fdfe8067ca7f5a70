"""Commands the matching engine accepts: plain frozen records with integer units.

Prices are in ticks and quantities in lots (Python ints); the engine never sees a float or a
Decimal. The dataclasses do not validate their fields: the engine does, and turns a bad value
into a ``Rejected`` event, so a malformed command can never raise out of the matching loop.
"""

from dataclasses import dataclass, fields
from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"
    LIMIT_MAKER = "limit_maker"
    STOP_LIMIT = "stop_limit"
    STOP_MARKET = "stop_market"


class TimeInForce(StrEnum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class StpMode(StrEnum):
    """Self-trade prevention; the taker's mode decides what happens on a self match."""

    NONE = "none"
    EXPIRE_TAKER = "expire_taker"
    EXPIRE_MAKER = "expire_maker"
    EXPIRE_BOTH = "expire_both"


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Place an order.

    ``quote_budget`` is only for MARKET / STOP_MARKET buys by quote amount, in units of
    tick x lot: a fill of q lots at p ticks consumes p*q. ``stop_ticks`` is only for stop
    orders. Two orders self-trade when they share the account, or share a non-zero
    ``stp_group``.
    """

    order_id: int
    account_id: int
    side: Side
    order_type: OrderType
    tif: TimeInForce
    price_ticks: int = 0
    qty_lots: int = 0
    quote_budget: int = 0
    stop_ticks: int = 0
    stp_mode: StpMode = StpMode.NONE
    stp_group: int = 0


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel one resting order or pending stop of ``account_id``."""

    order_id: int
    account_id: int


@dataclass(frozen=True, slots=True)
class CancelAll:
    """Cancel every resting order and pending stop of ``account_id``, in order id order."""

    account_id: int


@dataclass(frozen=True, slots=True)
class ReduceOrder:
    """Lower an order's open (remaining) quantity to ``new_qty_lots``, keeping its priority.

    Only a strict reduction is allowed; an increase or a price change is cancel + new.
    """

    order_id: int
    account_id: int
    new_qty_lots: int


Command = PlaceOrder | CancelOrder | CancelAll | ReduceOrder

_COMMAND_TYPES: dict[str, type[Command]] = {
    "place_order": PlaceOrder,
    "cancel_order": CancelOrder,
    "cancel_all": CancelAll,
    "reduce_order": ReduceOrder,
}
_TYPE_NAMES: dict[type[Command], str] = {cls: name for name, cls in _COMMAND_TYPES.items()}
_ENUM_FIELDS: dict[str, type[StrEnum]] = {
    "side": Side,
    "order_type": OrderType,
    "tif": TimeInForce,
    "stp_mode": StpMode,
}


# value -> member per enum field: a dict lookup is far cheaper than calling the enum class.
_MEMBERS: dict[str, dict[str, StrEnum]] = {
    key: {member.value: member for member in enum_cls} for key, enum_cls in _ENUM_FIELDS.items()
}
# Per command class, built once (``fields()`` walks the dataclass on every call, which made it
# most of ``command_from_dict``'s cost in the matching loop): the keys a dict may have, and
# (field name, value -> member) for its enum fields.
_ALLOWED_KEYS: dict[type[Command], frozenset[str]] = {
    cls: frozenset(field.name for field in fields(cls)) | {"type"}
    for cls in _COMMAND_TYPES.values()
}
_ENUM_KEYS: dict[type[Command], tuple[tuple[str, dict[str, StrEnum]], ...]] = {
    cls: tuple(
        (field.name, _MEMBERS[field.name]) for field in fields(cls) if field.name in _MEMBERS
    )
    for cls in _COMMAND_TYPES.values()
}


class BadCommand(ValueError):
    """A command dict that cannot be turned into a command at all.

    Raised only by ``command_from_dict`` for a dict with no known ``type``, a missing
    required key or an unknown key. ``Engine.apply_dict`` maps it to a ``Rejected`` event
    (reason ``bad_command``); callers using ``command_from_dict`` directly must do the same.
    Wrong *values* (bad enum strings, non-int or negative numbers) do not raise: they are
    passed through and the engine rejects the command with a precise reason code.
    """

    def __init__(self, reason: str, order_id: int = 0, account_id: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.order_id = order_id
        self.account_id = account_id


def command_to_dict(cmd: Command) -> dict[str, str | int]:
    """Return a JSON-safe dict (str and int values only) with a ``type`` key."""
    out: dict[str, str | int] = {"type": _TYPE_NAMES[type(cmd)]}
    for field in fields(cmd):
        value = getattr(cmd, field.name)
        out[field.name] = str(value) if isinstance(value, StrEnum) else value
    return out


def _int_or_zero(value: object) -> int:
    return value if type(value) is int else 0


def command_from_dict(data: object) -> Command:
    """Build a command from ``command_to_dict`` output.

    Raises ``BadCommand`` when the shape is wrong (see its docstring); never anything else.
    Valid enum strings become enum members; any other value is kept as given so the engine
    rejects it with the reason of the offending field.
    """
    if not isinstance(data, dict):
        raise BadCommand("bad_command")
    order_id = _int_or_zero(data.get("order_id"))
    account_id = _int_or_zero(data.get("account_id"))
    cls = _COMMAND_TYPES.get(data["type"]) if isinstance(data.get("type"), str) else None
    if cls is None:
        raise BadCommand("bad_command", order_id, account_id)
    if not data.keys() <= _ALLOWED_KEYS[cls]:
        raise BadCommand("bad_command", order_id, account_id)
    kwargs = dict(data)
    del kwargs["type"]
    for key, members in _ENUM_KEYS[cls]:
        value = kwargs.get(key)
        if isinstance(value, str):
            kwargs[key] = members.get(value, value)  # anything else stays raw: the engine names it
    try:
        return cls(**kwargs)  # type: ignore[arg-type]  # values are checked by the engine
    except TypeError as exc:  # a required field is missing
        raise BadCommand("bad_command", order_id, account_id) from exc
