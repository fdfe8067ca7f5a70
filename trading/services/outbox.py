"""The transactional outbox: engine commands written with the rows that caused them.

A command is an OutboxEntry row inserted in the same transaction as the order (or cancel)
it belongs to, so a crash can never leave an accepted order without its command. After
commit the row is XADDed to the market's input stream (the entry format is trading.streams')
and marked published; `sweep_outbox` re-sends rows that never made it. Delivery is at least
once: every payload on the stream carries "cid" (the outbox row id) and the matching loop drops a
cid it has already applied, which makes a re-send harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from exchange.db import PreparedStatement
from markets.models import Market
from trading.engine.commands import Command, command_to_dict
from trading.models import OutboxEntry
from trading.redis import get_redis
from trading.streams import encode_command, input_stream

logger = logging.getLogger(__name__)

# A row younger than this may still be on its way through its own on_commit publish.
SWEEP_MIN_AGE = timedelta(seconds=5)
# One sweep sends at most this many rows: one pipeline round trip, bounded memory.
SWEEP_BATCH = 500


def stream_message(entry: OutboxEntry) -> dict[str, str]:
    """The stream entry for an outbox row: the command dict plus its "cid"."""
    return encode_command(entry.pk, entry.payload)


def write_outbox(
    *, market: Market, command: Command, flush_account_id: int | None = None
) -> OutboxEntry:
    """Insert the command's outbox row and publish it once the transaction commits.

    Precondition: runs inside the caller's transaction (the row commits with it or not at
    all). With `flush_account_id`, earlier unpublished rows of that account in this market
    are published first, so a cancel never overtakes the order it cancels.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("write_outbox must run inside the caller's transaction.atomic()")
    entry = OutboxEntry.objects.create(market=market, payload=command_to_dict(command))
    entry.market = market
    if flush_account_id is None:
        publish_on_commit(entry=entry)
    else:
        transaction.on_commit(
            lambda: _publish_with_earlier(entry=entry, account_id=flush_account_id)
        )
    return entry


def publish_on_commit(*, entry: OutboxEntry) -> None:
    """Publish an outbox row inserted in the current transaction once that commits.

    For writers that insert the row themselves (place_order inserts it in the statement
    that inserts the order); `entry.market` must be loaded.
    """
    transaction.on_commit(lambda: publish_outbox(entries=[entry]))


def publish_outbox(*, entries: Sequence[OutboxEntry]) -> int:
    """XADD the rows to their markets' input streams, then mark them published.

    Call outside any transaction (it does network I/O); `entry.market` must be loaded.
    Returns how many rows were sent. A Redis failure is logged and leaves the rows
    unpublished for the sweeper: the order is already durable, so the caller is not
    failed for it.
    """
    if not entries:
        return 0
    try:
        if len(entries) == 1:  # the accept path: a plain XADD costs less than a pipeline
            [entry] = entries
            stream = input_stream(entry.market.symbol)
            sent = [get_redis().xadd(stream, stream_message(entry))]  # type: ignore[arg-type]
        else:
            pipe = get_redis().pipeline(transaction=False)
            for entry in entries:
                pipe.xadd(input_stream(entry.market.symbol), stream_message(entry))  # type: ignore[arg-type]
            sent = pipe.execute()
        stream_ids = [sid.decode() if isinstance(sid, bytes) else str(sid) for sid in sent]
    except RedisError:
        logger.warning(
            "outbox publish failed for %d row(s); the sweeper will re-send", len(entries)
        )
        return 0
    _mark_published([entry.pk for entry in entries], stream_ids)
    return len(entries)


# Prepared: it runs once per accepted order (exchange.db).
_MARK = PreparedStatement(
    "trading_mark_published",
    """
UPDATE trading_outboxentry AS o SET published_at = %(now)s, stream_id = v.stream_id
FROM unnest(%(ids)s::bigint[], %(stream_ids)s::text[]) AS v(id, stream_id)
WHERE o.id = v.id AND o.published_at IS NULL
""",
)


def _mark_published(ids: list[int], stream_ids: list[str]) -> None:
    # A failure here only means the sweeper sends the rows again (deduped by cid); it must
    # not surface as an error for a request whose order has already committed.
    try:
        with connection.cursor() as cursor:
            _MARK.execute(cursor, {"now": timezone.now(), "ids": ids, "stream_ids": stream_ids})
    except DatabaseError:
        logger.warning("could not mark %d outbox row(s) published", len(ids), exc_info=True)


def _publish_with_earlier(*, entry: OutboxEntry, account_id: int) -> int:
    earlier = list(
        OutboxEntry.objects.filter(
            market_id=entry.market_id,
            published_at__isnull=True,
            pk__lt=entry.pk,
            payload__account_id=account_id,
        ).order_by("pk")[:SWEEP_BATCH]
    )
    for row in earlier:
        row.market = entry.market
    return publish_outbox(entries=[*earlier, entry])


def sweep_outbox(*, min_age: timedelta = SWEEP_MIN_AGE, limit: int = SWEEP_BATCH) -> int:
    """Re-send outbox rows older than `min_age` that never reached their stream.

    Safe to run concurrently and repeatedly: a row is marked published once, and a row
    sent twice (by two sweepers, or a sweeper racing a slow on_commit publish) is dropped by
    the matching loop's cid dedupe. Rows go out in id order, so per market the stream keeps
    the order in which commands were accepted. Returns how many rows were sent.
    """
    cutoff = timezone.now() - min_age
    rows = list(
        OutboxEntry.objects.filter(published_at__isnull=True, created_at__lt=cutoff)
        .select_related("market")
        .order_by("pk")[:limit]
    )
    if rows:
        logger.info("outbox sweep re-sending %d row(s)", len(rows))
    return publish_outbox(entries=rows)
