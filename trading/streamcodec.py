"""JSON encoding of the market streams' payloads: commands in, events out.

The loops encode and decode thousands of these a second, so they use orjson, with one
exactness rule: orjson handles integers of at most 64 bits (it refuses larger ones when
encoding and turns them into floats when decoding), while a command or event may in
principle carry a larger one. So:

* events: if orjson cannot encode a batch, the stdlib encodes it and the entry says so
  (``EVENTS_CODEC_FIELD``); the reader decodes such an entry with the stdlib too;
* commands are written by services with the stdlib; one whose orjson decoding produced a
  float (commands never carry floats) is decoded again with the stdlib, so the engine sees
  the exact integer and rejects it like any other bad value.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

EVENTS_CODEC_FIELD = b"j"  # present (value b"std") only when the stdlib encoded the events
_STD = b"std"


def encode_events(events: list[list[Any]]) -> tuple[bytes, bool]:
    """(payload, exact_with_orjson): False means the reader must use the stdlib decoder."""
    try:
        return orjson.dumps(events), True
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits
        return json.dumps(events, separators=(",", ":")).encode(), False


def decode_events(fields: dict[bytes, bytes]) -> Any:
    """The event list of an output-stream entry's fields."""
    payload = fields[b"e"]
    if fields.get(EVENTS_CODEC_FIELD) == _STD:
        return json.loads(payload)
    return orjson.loads(payload)


def events_codec_fields(exact: bool) -> dict[str, str]:
    """Extra output-entry fields for ``encode_events``' second result."""
    return {} if exact else {EVENTS_CODEC_FIELD.decode(): _STD.decode()}


def decode_command(payload: bytes) -> Any:
    """A command payload; raises ValueError when it is not JSON."""
    data = orjson.loads(payload)  # orjson.JSONDecodeError is a ValueError
    if isinstance(data, dict) and any(type(v) is float for v in data.values()):
        return json.loads(payload)  # an integer orjson could not hold exactly
    return data
