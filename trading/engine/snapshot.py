"""Snapshot encoding: ``MAGIC | version | payload | sha256(everything before)``.

The payload is a flat run of signed 64-bit little-endian integers in a canonical order
(resting orders in priority order, stops in acceptance order), so two engines in the same
logical state produce the same bytes whatever their history: lazily cancelled records,
heap layout and dict order never reach it. ``state_digest`` hashes the same payload.
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from heapq import heapify
from typing import TypeVar

from trading.engine.book import BUY, SELL, Book, Level, Record, StopRecord, new_level
from trading.engine.commands import OrderType, StpMode, TimeInForce

MAGIC = b"MENG"
VERSION = 1
_HEADER = len(MAGIC) + 1
_DIGEST = 32
_ORDER_INTS = 6
_STOP_INTS = 12
_ORDER_TYPES = tuple(OrderType)
_TIFS = tuple(TimeInForce)
_STP_MODES = tuple(StpMode)

B = TypeVar("B", bound=Book)


class SnapshotError(ValueError):
    """The bytes are not an intact snapshot of a version this code reads."""


def _payload(book: Book) -> bytes:
    ints = array("q", [book._seq, book._last_price, len(book._orders)])
    for record in book.resting_records():
        key = record["key"]
        price, is_buy = (key, 1) if key > 0 else (-key, 0)
        ints.extend(
            (record["id"], record["account"], record.get("group", 0), price, is_buy, record["rem"])
        )
    stops = sorted(book._stops.values(), key=lambda stop: stop[11])
    ints.append(len(stops))
    for stop in stops:
        ints.extend(
            (
                stop[0],
                stop[1],
                int(stop[2]),
                _ORDER_TYPES.index(stop[3]),
                _TIFS.index(stop[4]),
                stop[5],
                stop[6],
                stop[7],
                stop[8],
                _STP_MODES.index(stop[9]),
                stop[10],
                stop[11],
            )
        )
    if sys.byteorder == "big":  # the format is little-endian everywhere
        ints.byteswap()
    return ints.tobytes()


def dump_book(book: Book) -> bytes:
    """Serialise ``book`` (see module docstring)."""
    body = MAGIC + bytes((VERSION,)) + _payload(book)
    return body + hashlib.sha256(body).digest()


def state_digest(book: Book) -> str:
    """Hex SHA-256 of the canonical payload."""
    return hashlib.sha256(_payload(book)).hexdigest()


def load_book(cls: type[B], data: bytes) -> B:
    """Rebuild a book of class ``cls``; raises ``SnapshotError`` on any damage."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SnapshotError("snapshot must be bytes")
    data = bytes(data)
    if len(data) < _HEADER + _DIGEST:
        raise SnapshotError(f"snapshot truncated: {len(data)} bytes")
    if data[: len(MAGIC)] != MAGIC:
        raise SnapshotError("not an engine snapshot (bad magic)")
    if data[len(MAGIC)] != VERSION:
        raise SnapshotError(f"unsupported snapshot version {data[len(MAGIC)]}")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise SnapshotError("snapshot checksum mismatch: corrupted or truncated")
    payload = body[_HEADER:]
    if len(payload) % 8:
        raise SnapshotError("snapshot payload is not a whole number of integers")
    ints = array("q")
    ints.frombytes(payload)
    if sys.byteorder == "big":
        ints.byteswap()
    try:
        return _rebuild(cls, ints)
    except (IndexError, ValueError, KeyError) as exc:
        raise SnapshotError(f"snapshot payload is inconsistent: {exc}") from exc


def _rebuild(cls: type[B], ints: array[int]) -> B:
    book = cls()
    book._seq, book._last_price, n_orders = ints[0], ints[1], ints[2]
    pos = 3
    end = pos + n_orders * _ORDER_INTS
    if n_orders < 0 or end + 1 > len(ints):
        raise ValueError("order count out of range")
    orders, levels = book._orders, book._levels
    for i in range(pos, end, _ORDER_INTS):
        order_id, account_id, group, price, is_buy, rem = ints[i : i + _ORDER_INTS]
        if order_id in orders or rem <= 0 or price <= 0:
            raise ValueError(f"bad order record {order_id}")
        key = price if is_buy else -price
        record: Record = {"rem": rem, "id": order_id, "account": account_id, "key": key}
        if group:
            record["group"] = group
        orders[order_id] = record
        level: Level | None = levels.get(key)
        if level is None:
            keys = book._bid_keys if is_buy else book._ask_keys  # in place: closures hold them
            new_level(levels, keys, key, record, BUY if is_buy else SELL)
        else:
            level[1].append(record)
            level[0] += rem
    n_stops = ints[end]
    pos = end + 1
    if n_stops < 0 or pos + n_stops * _STOP_INTS != len(ints):
        raise ValueError("stop count does not match the payload length")
    for i in range(pos, len(ints), _STOP_INTS):
        values = ints[i : i + _STOP_INTS]
        stop: StopRecord = list(values)
        stop[2] = bool(values[2])
        stop[3], stop[4], stop[9] = _ORDER_TYPES[values[3]], _TIFS[values[4]], _STP_MODES[values[9]]
        if stop[0] in orders or stop[0] in book._stops:
            raise ValueError(f"duplicate stop {stop[0]}")
        book._stops[stop[0]] = stop
        if stop[2]:
            book._buy_stops.append((stop[8], stop[11], stop[0]))
        else:
            book._sell_stops.append((-stop[8], stop[11], stop[0]))
    heapify(book._buy_stops)
    heapify(book._sell_stops)
    return book
