"""The matching engine: pure Python, standard library only, deterministic, no I/O.

Commands in (``commands``), events out (``events``); ``Engine`` in ``matching``.
"""

from trading.engine.commands import (
    BadCommand,
    CancelAll,
    CancelOrder,
    Command,
    OrderType,
    PlaceOrder,
    ReduceOrder,
    Side,
    StpMode,
    TimeInForce,
    command_from_dict,
    command_to_dict,
)
from trading.engine.events import (
    Accepted,
    Cancelled,
    Event,
    Expired,
    LevelChanged,
    RawEvent,
    Reduced,
    Rejected,
    StopTriggered,
    Trade,
    decode_event,
    event_from_dict,
    event_to_dict,
)
from trading.engine.matching import Engine
from trading.engine.snapshot import SnapshotError

__all__ = [
    "Accepted",
    "BadCommand",
    "CancelAll",
    "CancelOrder",
    "Cancelled",
    "Command",
    "Engine",
    "Event",
    "Expired",
    "LevelChanged",
    "OrderType",
    "PlaceOrder",
    "RawEvent",
    "ReduceOrder",
    "Reduced",
    "Rejected",
    "Side",
    "SnapshotError",
    "StopTriggered",
    "StpMode",
    "TimeInForce",
    "Trade",
    "command_from_dict",
    "command_to_dict",
    "decode_event",
    "event_from_dict",
    "event_to_dict",
]
