"""Where a matching loop starts from: a stored snapshot, or PostgreSQL after Redis lost it all.

A loop's state is the engine plus two things the engine does not know: the input-stream
offset it has consumed up to, and the window of applied command ids ("cid", the outbox id)
that makes the sweeper's re-sends harmless. A snapshot stores all three, so a restored loop
replays the input stream after the offset and regenerates exactly the events (and
sequence numbers) its predecessor produced.

When Redis was flushed (the readiness marker is gone) the streams, and with them any
command not yet settled, are lost. PostgreSQL is the source of truth: the book is rebuilt
from open orders in the sequence order they entered the book (acceptance, or the trigger
for a stop that triggered), the engine sequence continues from the settlement cursor (so
output sequence numbers stay gapless), and the outbox rows of every command whose effect
is not settled are applied again, in acceptance (outbox) order, before anything the input
stream holds (trading.matching.restore_state).

The loop's third piece of state is its status gate: the rejection code it gives placements
while the market is CANCEL_ONLY or HALTED (trading.matching). It is in the snapshot too,
because replay must decide each placement as the original run did, whatever the market's
status has become since.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from array import array
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce

from markets.models import Market
from trading.engine.commands import (
    OrderType,
    PlaceOrder,
    Side,
    StpMode,
    TimeInForce,
)
from trading.engine.matching import Engine
from trading.engine.snapshot import SnapshotError
from trading.models import (
    OPEN_STATUSES,
    EngineSnapshot,
    Order,
    OrderStatus,
    OutboxEntry,
    SettlementCursor,
)

logger = logging.getLogger(__name__)

_MAGIC_UNGATED = b"LOOP1"  # written before the status gate existed: replayed ungated
_MAGIC = b"LOOP2"
_HEADER = struct.Struct("<QIB")  # engine bytes, cids, gate bytes
_HEADER_UNGATED = struct.Struct("<QI")
# How many applied cids a loop remembers. The sweeper re-sends a command within seconds of
# its first send, so this covers minutes of traffic at benchmark rates.
CID_WINDOW = 200_000
# Snapshots kept per market: the newest plus fallbacks if it turns out damaged.
SNAPSHOTS_KEPT = 3
STREAM_START = "0-0"


@dataclass
class LoopState:
    """Everything a matching loop needs to continue where its predecessor stopped."""

    engine: Engine
    input_offset: str = STREAM_START
    applied: dict[int, None] = field(default_factory=dict)  # insertion-ordered set of cids
    resend: list[OutboxEntry] = field(default_factory=list)  # after a rebuild only
    gate: str = ""  # the rejection code for placements; "" while the market trades

    def remember(self, cid: int) -> None:
        self.applied[cid] = None
        if len(self.applied) > CID_WINDOW:
            # Drop the oldest tenth at once, so the trim cost is amortised.
            for old in list(self.applied)[: CID_WINDOW // 10]:
                del self.applied[old]


def encode_state(state: LoopState) -> bytes:
    """Engine snapshot bytes, the gate and the cid window, in one blob."""
    engine_bytes = state.engine.snapshot()
    gate = state.gate.encode("ascii")
    cids = array("q", state.applied)
    header = _HEADER.pack(len(engine_bytes), len(cids), len(gate))
    return _MAGIC + header + gate + engine_bytes + cids.tobytes()


def decode_state(data: bytes, *, input_offset: str) -> LoopState:
    """Inverse of encode_state (also reads the ungated LOOP1 blobs); raises SnapshotError on
    any damage."""
    magic = data[: len(_MAGIC)]
    if magic == _MAGIC:
        start = len(_MAGIC) + _HEADER.size
        engine_len, n_cids, gate_len = _HEADER.unpack(data[len(_MAGIC) : start])
        gate = data[start : start + gate_len].decode("ascii")
        start += gate_len
    elif magic == _MAGIC_UNGATED:
        start = len(_MAGIC) + _HEADER_UNGATED.size
        engine_len, n_cids = _HEADER_UNGATED.unpack(data[len(_MAGIC) : start])
        gate = ""
    else:
        raise SnapshotError("not a loop snapshot")
    engine = Engine.restore(data[start : start + engine_len])
    cids = array("q")
    cids.frombytes(data[start + engine_len :])
    if len(cids) != n_cids:
        raise SnapshotError("cid window truncated")
    return LoopState(
        engine=engine, input_offset=input_offset, applied=dict.fromkeys(cids), gate=gate
    )


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class FrozenState:
    """A LoopState serialised at one instant, ready to be stored by another thread."""

    data: bytes
    seq: int
    input_offset: str


def freeze_state(state: LoopState) -> FrozenState:
    return FrozenState(encode_state(state), state.engine.seq, state.input_offset)


# Newest first: by the writer's fence token, then by insertion. A deposed loop that has not
# yet noticed it lost its lease can store a snapshot after its successor's; its lower token
# ranks it behind every snapshot of the successor (tokens only grow), so restore, pruning
# and stream trimming all prefer the live owner's state.
_NEWEST_FIRST = ("-fence_token", "-pk")


def save_snapshot(*, market_id: int, frozen: FrozenState, fence_token: int) -> EngineSnapshot:
    """Store a frozen loop state; keep the newest SNAPSHOTS_KEPT per market."""
    data = frozen.data
    snapshot = EngineSnapshot.objects.create(
        market_id=market_id,
        seq=frozen.seq,
        input_offset=frozen.input_offset,
        fence_token=fence_token,
        data=data,
        checksum=checksum(data),
    )
    stale = EngineSnapshot.objects.filter(market_id=market_id).order_by(*_NEWEST_FIRST)[
        SNAPSHOTS_KEPT:
    ]
    EngineSnapshot.objects.filter(pk__in=list(stale.values_list("pk", flat=True))).delete()
    return snapshot


def oldest_kept_offset(*, market_id: int) -> str | None:
    """The input offset no kept snapshot replays from before: the stream may trim up to it."""
    offsets = list(
        EngineSnapshot.objects.filter(market_id=market_id)
        .order_by(*_NEWEST_FIRST)
        .values_list("input_offset", flat=True)[:SNAPSHOTS_KEPT]
    )
    return offsets[-1] if len(offsets) == SNAPSHOTS_KEPT else None


def load_latest_state(*, market_id: int, min_token: int = 0) -> LoopState | None:
    """The newest intact snapshot (by token, then insertion; not seq: a rebuild restarts
    lower).

    Snapshots with a token below ``min_token`` (the token of the owner that last rebuilt
    the market from PostgreSQL) describe streams that no longer exist and are ignored,
    even if a deposed owner's writer stored one after the rebuild.
    """
    snapshots = EngineSnapshot.objects.filter(market_id=market_id, fence_token__gte=min_token)
    for snapshot in snapshots.order_by(*_NEWEST_FIRST)[:10]:
        data = bytes(snapshot.data)
        if checksum(data) != snapshot.checksum:
            logger.error("snapshot %s of market %s: checksum mismatch", snapshot.pk, market_id)
            continue
        try:
            state = decode_state(data, input_offset=snapshot.input_offset)
        except (SnapshotError, struct.error, ValueError) as exc:
            logger.error("snapshot %s of market %s unreadable: %s", snapshot.pk, market_id, exc)
            continue
        if state.engine.seq != snapshot.seq:
            logger.error("snapshot %s of market %s: wrong seq", snapshot.pk, market_id)
            continue
        return state
    return None


def _lots(value: Decimal, unit: Decimal) -> int:
    return int(value / unit)


def _rebuild_command(order: Order, market: Market) -> PlaceOrder:
    """The engine command that puts an open order back with its remaining quantity.

    The settled book is never crossed, so re-placing resting orders as plain GTC limits
    generates no trades. Stops still waiting go back as stops; a stop whose trigger is
    settled (``triggered_seq``) is a resting limit by now and goes back as one, so it can
    never trigger twice.
    """
    quantity = order.quantity or order.filled_quantity  # resting orders always have one
    remaining = _lots(quantity - order.filled_quantity, market.lot_size)
    is_stop = (
        order.order_type in (OrderType.STOP_LIMIT, OrderType.STOP_MARKET)
        and order.triggered_seq is None
    )
    return PlaceOrder(
        order_id=order.pk,
        account_id=order.user_id,
        side=Side(order.side),
        order_type=OrderType(order.order_type) if is_stop else OrderType.LIMIT,
        tif=TimeInForce.GTC,
        price_ticks=_lots(order.price, market.tick_size) if order.price is not None else 0,
        qty_lots=remaining,
        stop_ticks=_lots(order.stop_price, market.tick_size) if is_stop and order.stop_price else 0,
        stp_mode=StpMode(order.stp_mode) if is_stop else StpMode.NONE,
    )


def rebuild_from_database(*, market: Market, token: int, input_offset: str) -> LoopState:
    """A fresh engine holding every settled open order, positioned at the settled seq.

    Runs in one transaction holding the cursor lock, so no settlement batch lands between
    reading the cursor and reading the orders; raising the cursor's fence to ``token``
    makes settlement refuse anything the previous generation of loops still delivers (their
    seqs are about to be reused by this engine). ``input_offset`` is the input stream's tail
    read before: commands after it are read normally, unsettled ones before it are re-sent.
    """
    with transaction.atomic():
        SettlementCursor.objects.get_or_create(market=market)
        cursor = SettlementCursor.objects.select_for_update().get(market=market)
        if cursor.fence_token < token:
            cursor.fence_token = token
            cursor.save(update_fields=["fence_token", "updated_at"])
        if cursor.last_seq == 0:
            # Nothing settled yet: nothing in the stream is settled either, so the loop may
            # read it all; the unsettled rows applied first (trading.matching) are skipped
            # there by cid, and only commands without an outbox row are left to apply.
            input_offset = STREAM_START
        engine = Engine()
        # In the order they entered the book: a triggered stop joined its price level when it
        # triggered, behind the orders accepted between its acceptance and its trigger.
        resting = Order.objects.filter(
            market=market, status__in=OPEN_STATUSES, accepted_seq__isnull=False
        ).order_by(Coalesce("triggered_seq", "accepted_seq"))
        for order in resting.iterator(chunk_size=2000):
            events = engine.apply_raw(_rebuild_command(order, market))
            if events and events[0][0].__name__ == "Rejected":
                logger.error("rebuild of %s: order %s rejected: %s", market, order.pk, events[0])
        # The rebuilt engine continues the settled sequence (gapless output) and knows the
        # last price (stops).
        engine.restore_position(
            seq=cursor.last_seq,
            last_price_ticks=_lots(market.last_price, market.tick_size)
            if market.last_price
            else None,
        )
        state = LoopState(engine=engine, input_offset=input_offset)
        state.resend = unsettled_commands(market=market)
    return state


def unsettled_commands(*, market: Market) -> list[OutboxEntry]:
    """Outbox rows whose effect PostgreSQL does not show, in acceptance (outbox) order.

    A placement is unsettled while its order is NEW without an accepted seq; a cancel or
    reduce while its order is still open; a cancel-all while the account still has an open
    order placed before it.
    """
    open_orders = Order.objects.filter(market=market, status__in=OPEN_STATUSES)
    unaccepted = set(
        open_orders.filter(accepted_seq__isnull=True, status=OrderStatus.NEW).values_list(
            "pk", flat=True
        )
    )
    still_open = dict(open_orders.values_list("pk", "user_id"))
    first_open_by_user: dict[int, int] = {}
    for pk, user_id in sorted(still_open.items()):
        first_open_by_user.setdefault(user_id, pk)
    candidates = OutboxEntry.objects.filter(market=market).filter(
        Q(payload__order_id__in=list(still_open)) | Q(payload__type="cancel_all")
    )
    chosen: list[OutboxEntry] = []
    for entry in candidates.order_by("pk").iterator(chunk_size=2000):
        kind = entry.payload.get("type")
        order_id = entry.payload.get("order_id")
        if kind == "place_order":
            keep = order_id in unaccepted
        elif kind in ("cancel_order", "reduce_order"):
            keep = order_id in still_open
        elif kind == "cancel_all":
            first = first_open_by_user.get(entry.payload.get("account_id", 0))
            keep = (
                first is not None
                and Order.objects.filter(pk=first, created_at__lt=entry.created_at).exists()
            )
        else:
            keep = False
        if keep:
            chosen.append(entry)
    return chosen
