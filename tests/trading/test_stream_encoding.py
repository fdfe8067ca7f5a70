"""The loops' payload encoding: array literals for set-based SQL and the stream JSON codec.

Both exist for speed (see exchange/pgarray.py and trading/streams.py); these tests pin
that they are exact: every value survives the trip unchanged, whatever it holds.
"""

from __future__ import annotations

import json
from decimal import Decimal

import orjson
import pytest
from django.db import connection

from exchange.pgarray import decimal_array, int_array, text_array
from trading import streams
from trading.streams import decode_command, decode_events_entry, encode_events_entry

AWKWARD_TEXT = [
    "",
    "NULL",
    "null",
    'say "hi"',
    "back\\slash",
    "trailing\\",
    "a,b",
    "{braces}",
    "  spaced  ",
    "it's",
    "تومان",
    "line\nbreak",
    None,
]


@pytest.mark.django_db
def test_text_array_round_trips_every_awkward_value() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT x FROM unnest(%s::text[]) WITH ORDINALITY AS t(x, n) ORDER BY n",
            [text_array(AWKWARD_TEXT)],
        )
        assert [row[0] for row in cursor.fetchall()] == AWKWARD_TEXT


@pytest.mark.django_db
def test_int_and_decimal_arrays_round_trip_exactly() -> None:
    ints = [0, -1, 2**63 - 1, -(2**63), None, 10**30, 7]
    decimals = [Decimal("0.000000000000000001"), Decimal("-12.5"), None, Decimal("1E+3")]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT x FROM unnest(%s::numeric[]) WITH ORDINALITY AS t(x, n) ORDER BY n",
            [int_array(ints)],
        )
        assert [None if r[0] is None else int(r[0]) for r in cursor.fetchall()] == ints
        cursor.execute(
            "SELECT x FROM unnest(%s::numeric[]) WITH ORDINALITY AS t(x, n) ORDER BY n",
            [decimal_array(decimals)],
        )
        assert [r[0] for r in cursor.fetchall()] == decimals


def test_int_array_refuses_what_is_not_an_integer() -> None:
    with pytest.raises(ValueError, match="invalid literal"):
        int_array(["1); DROP TABLE x; --"])  # type: ignore[list-item]
    assert int_array([True, 2]) == "{1,2}"
    assert int_array([]) == "{}"


def test_events_use_orjson_until_an_integer_exceeds_64_bits() -> None:
    small = [["trade", 7, 1, 2, 3, 4, 1000, 5, "buy", True, False]]
    fields = _as_read(encode_events_entry(small, token=3))
    assert set(fields) == {b"e", b"t", b"a", b"z"}  # no stdlib marker
    assert fields[b"e"] == orjson.dumps(small)
    assert decode_events_entry(fields) == (3, 7, 7, small)

    big = [["trade", 8, 1, 2, 3, 4, 2**70, 5, "sell", False, True]]
    fields = _as_read(encode_events_entry(big, token=3))
    assert fields[b"j"] == b"std"
    # exact, not the float orjson would make of it
    assert decode_events_entry(fields) == (3, 8, 8, big)


def _as_read(fields: dict[str, str | bytes]) -> dict[bytes, bytes]:
    """Fields as redis-py reads them back: bytes names and values."""
    return {k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in fields.items()}


def test_commands_keep_big_integers_exact_and_refuse_non_json() -> None:
    command = {"type": "place_order", "order_id": 5, "qty_lots": 2**80, "price_ticks": 10}
    assert decode_command(json.dumps(command).encode()) == command
    plain = {"type": "cancel_order", "order_id": 9, "account_id": 3}
    assert decode_command(orjson.dumps(plain)) == plain
    with pytest.raises(orjson.JSONDecodeError):
        decode_command(b"{not json")


def test_every_key_of_a_market_is_named_after_its_symbol():
    """trading.streams is the one place that spells a market's Redis keys."""
    assert streams.input_stream("BTC-USDT") == "market:BTC-USDT:in"
    assert streams.output_stream("BTC-USDT") == "market:BTC-USDT:out"
