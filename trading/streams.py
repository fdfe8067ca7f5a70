"""The one owner of the market streams' format: every Redis key of a market, both codecs.

Keys of a market ``<s>`` (and of its two loops' leases, role "matching" or "settlement"):

* ``market:<s>:in`` the input stream (commands, written by the outbox) and
  ``market:<s>:out`` the output stream (events, written by the matching loop, read by the
  settlement consumer group ``SETTLEMENT_GROUP``);
* ``market:<s>:consumed`` the input-stream id the matching owner applied up to;
* ``market:<s>:ready`` set once the streams are initialised (its absence: Redis lost them);
* ``market:<s>:snapshot-requested`` the beat's request for a snapshot;
* ``lease:<role>:<s>`` and its ``:token``, ``:owner`` and ``:starting`` companions
  (trading.lease, trading.tasks).

Input entry: ``{"c": json}``, the command dict plus its "cid" (the outbox row id);
``encode_command`` is the only encoder (outbox, and the rebuild's re-sent rows) and
``decode_command_entry`` the only decoder.

Output entry: "e" = JSON list of events, "t" = the writer's lease token, "a"/"z" = first
and last seq in the entry, "j" = "std" only when the stdlib encoded the events (below).
Each event is a list ``[kind, seq, *fields]``, its fields in the order of its dataclass in
trading.engine.events; a rejection carries the command type as one more element
("command"). ``encode_events_entry`` is the only encoder, ``decode_events_entry`` the only
decoder, ``entry_last_seq`` / ``entry_token`` read an entry's header without decoding it.
Readers of an event's fields use the positions in ``EVENT_INDEX`` (``TRADE.qty_lots``...),
which are derived from those dataclasses, so a field added to an event cannot silently
shift what settlement reads; positions, not objects, because settlement reads thousands of
events a batch and indexing a list costs a fraction of building a named tuple.

JSON exactness: the loops encode and decode with orjson, which handles integers of at most
64 bits (it refuses larger ones when encoding and turns them into floats when decoding),
while a command or event may in principle carry a larger one. So an event batch orjson
cannot encode is encoded by the stdlib and marked "j"; a command whose orjson decoding
produced a float (commands never carry floats) is decoded again with the stdlib, so the
engine sees the exact integer and rejects it like any other bad value.
"""

from __future__ import annotations

import json
from dataclasses import fields as dataclass_fields
from typing import Any, NamedTuple

import orjson

from trading.engine.events import EVENT_TYPES, RawEvent, Rejected

# ---------------------------------------------------------------------------------- keys

SETTLEMENT_GROUP = "settlement"
LEASE_ROLES = ("matching", "settlement")


def input_stream(symbol: str) -> str:
    return f"market:{symbol}:in"


def output_stream(symbol: str) -> str:
    return f"market:{symbol}:out"


def consumed_key(symbol: str) -> str:
    """The input-stream id the owner has applied up to (progress, for operators and tests)."""
    return f"market:{symbol}:consumed"


def ready_key(symbol: str) -> str:
    """Set once a market's streams are initialised; its absence means Redis lost them."""
    return f"market:{symbol}:ready"


def snapshot_request_key(symbol: str) -> str:
    return f"market:{symbol}:snapshot-requested"


def lease_key(role: str, symbol: str) -> str:
    return f"lease:{role}:{symbol}"


def lease_token_key(role: str, symbol: str) -> str:
    """The highest token Redis has granted for the lease."""
    return f"{lease_key(role, symbol)}:token"


def lease_owner_key(role: str, symbol: str) -> str:
    """host:pid:thread of the holder, for operators."""
    return f"{lease_key(role, symbol)}:owner"


def lease_starting_key(role: str, symbol: str) -> str:
    """Set while a loop task dispatched by the watchdog is on its way to the lease."""
    return f"{lease_key(role, symbol)}:starting"


# --------------------------------------------------------------------------- commands in

COMMAND_FIELD = "c"
_COMMAND_FIELD = COMMAND_FIELD.encode()


def encode_command(cid: int, payload: dict[str, Any]) -> dict[str, str]:
    """The input-stream entry of a command (``command_to_dict``) with its outbox id."""
    return {COMMAND_FIELD: json.dumps({**payload, "cid": cid}, separators=(",", ":"))}


def decode_command(payload: bytes) -> Any:
    """A command payload; raises ValueError when it is not JSON."""
    data = orjson.loads(payload)  # orjson.JSONDecodeError is a ValueError
    if isinstance(data, dict) and any(type(v) is float for v in data.values()):
        return json.loads(payload)  # an integer orjson could not hold exactly
    return data


def decode_command_entry(fields: dict[bytes, bytes]) -> tuple[int | None, Any]:
    """(cid, command dict) of an input entry; cid None when the entry carries none.

    Raises KeyError (no command field) or ValueError (not JSON) for a damaged entry.
    """
    data = decode_command(fields[_COMMAND_FIELD])
    cid = data.pop("cid", None) if isinstance(data, dict) else None
    if cid is None and b"cid" in fields:
        cid = int(fields[b"cid"])
    return cid, data


# ---------------------------------------------------------------------------- events out


class EventIndex:
    """The position of each field in one event kind's wire list ``[kind, seq, *fields]``.

    ``TRADE.qty_lots`` is an int; an unknown name raises AttributeError (at import, where
    readers bind the positions they use).
    """

    __slots__ = ("_index", "kind", "names")

    def __init__(self, kind: str, names: tuple[str, ...]) -> None:
        self.kind = kind
        self.names = names
        self._index = {name: i for i, name in enumerate(names)}

    def __getattr__(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise AttributeError(f"{self.kind} events have no field {name!r}") from None

    def __len__(self) -> int:
        return len(self.names)

    def as_dict(self, event: list[Any]) -> dict[str, Any]:
        """The event by field name (logs, tests; the hot path reads positions)."""
        return dict(zip(self.names, event, strict=True))


def _index_of(kind: str, cls: type) -> EventIndex:
    names = ("kind", *(f.name for f in dataclass_fields(cls)))
    if cls is Rejected:
        names = (*names, "command")  # the rejected command's type, added by the loop
    return EventIndex(kind, names)


EVENT_INDEX: dict[str, EventIndex] = {
    kind: _index_of(kind, cls) for kind, cls in EVENT_TYPES.items()
}
ACCEPTED = EVENT_INDEX["accepted"]
REJECTED = EVENT_INDEX["rejected"]
TRADE = EVENT_INDEX["trade"]
CANCELLED = EVENT_INDEX["cancelled"]
EXPIRED = EVENT_INDEX["expired"]
STOP_TRIGGERED = EVENT_INDEX["stop_triggered"]
REDUCED = EVENT_INDEX["reduced"]
LEVEL_CHANGED = EVENT_INDEX["level_changed"]


def _common(name: str, kinds: list[EventIndex]) -> int:
    positions = {getattr(index, name) for index in kinds}
    if len(positions) != 1:
        raise RuntimeError(f"event field {name!r} is not at one position: {positions}")
    return positions.pop()


KIND = 0
SEQ = _common("seq", list(EVENT_INDEX.values()))
# Every event that names one order names it at the same position (all but trades, which
# name two, and level changes, which name none).
ORDER_ID = _common("order_id", [i for i in EVENT_INDEX.values() if "order_id" in i.names])
_NAMES = {cls: kind for kind, cls in EVENT_TYPES.items()}


def events_from_raw(raw_events: list[RawEvent], command_type: str) -> list[list[Any]]:
    """The wire events of one command's raw engine events (``command_type`` is the type of
    the command that caused them, carried by a rejection)."""
    names = _NAMES
    out = []
    for raw in raw_events:
        event = [names[raw[0]], *raw[1:]]
        if raw[0] is Rejected:
            event.append(command_type)
        out.append(event)
    return out


EVENTS_FIELD, TOKEN_FIELD, FIRST_FIELD, LAST_FIELD = b"e", b"t", b"a", b"z"
EVENTS_CODEC_FIELD = b"j"  # present (value b"std") only when the stdlib encoded the events
_STD = b"std"


class EventsEntry(NamedTuple):
    """A decoded output entry."""

    token: int
    first: int
    last: int
    events: list[list[Any]]


def encode_events_entry(events: list[list[Any]], *, token: int) -> dict[str, str | bytes]:
    """The output-stream fields of one batch's events (at least one)."""
    try:
        payload, exact = orjson.dumps(events), True
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits
        payload, exact = json.dumps(events, separators=(",", ":")).encode(), False
    fields: dict[str, str | bytes] = {
        "e": payload,
        "t": str(token),
        "a": str(events[0][SEQ]),
        "z": str(events[-1][SEQ]),
    }
    if not exact:
        fields[EVENTS_CODEC_FIELD.decode()] = _STD.decode()
    return fields


def decode_events_entry(fields: dict[bytes, bytes]) -> EventsEntry | None:
    """The token, seq span and events of an output entry; None for an entry without events."""
    payload = fields.get(EVENTS_FIELD)
    if payload is None:
        return None
    if fields.get(EVENTS_CODEC_FIELD) == _STD:
        events = json.loads(payload)
    else:
        events = orjson.loads(payload)
    return EventsEntry(
        int(fields[TOKEN_FIELD]), int(fields[FIRST_FIELD]), int(fields[LAST_FIELD]), events
    )


def entry_last_seq(fields: dict[bytes, bytes]) -> int | None:
    """The last seq an output entry holds (None when it holds no events), undecoded."""
    last = fields.get(LAST_FIELD)
    return None if last is None else int(last)


def entry_token(fields: dict[bytes, bytes]) -> int:
    """The writer's lease token of an output entry (0 when it carries none)."""
    return int(fields.get(TOKEN_FIELD, 0))


def stream_tail_seq(client: Any, symbol: str) -> int:
    """The last seq written to the market's output stream (0 when it is empty)."""
    tail = client.xrevrange(output_stream(symbol), count=1)
    return (entry_last_seq(tail[0][1]) or 0) if tail else 0
