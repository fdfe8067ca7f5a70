"""Group commit for order acceptance: many validated orders, one durable transaction.

`place_order` validates in the caller's thread and hands the request to this process's
`AcceptBatcher`: one thread with its own database connection that takes every request
queued so far (up to MAX_BATCH) and accepts them together, as if they had been applied one
after the other in arrival order:

1. BEGIN; the stored orders of the batch's client_order_ids (idempotency); the balance rows
   of every (user, hold asset) lock in primary-key order (accounts.locks).
2. In arrival order, in Python: a repeat of a stored or earlier-in-batch client_order_id
   gets that order back (DuplicateClientOrderId if the spec differs); an order whose hold
   does not fit what is left of its balance gets InsufficientFunds. Neither writes anything.
3. Set-based writes for the accepted ones: one guarded UPDATE of the balances (`available >=
   total hold` in the WHERE, row count checked), one statement for the orders and their
   outbox rows, one for their journal entries (kind order_hold, ref "order:<id>") and the
   two postings of each; COMMIT (migration 0002's triggers run unchanged).
4. After commit: one pipelined XADD of the batch's commands (outbox id order, i.e. arrival
   order) and one UPDATE marking them published (outbox.publish_outbox); a Redis failure
   leaves them to the sweeper. Then each caller's future gets its Order or DomainError.

If the batch transaction fails as a whole (a client_order_id inserted concurrently by
another process, a lost connection), each request is applied again on its own through the
single-order path, so one bad request cannot fail the others.

The thread starts on first use, exits after IDLE_EXIT_SECONDS without work (closing its
connection), and a forked child builds its own batcher (the parent's thread does not
survive a fork, so the pid is checked on every submit).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from accounts.errors import InsufficientFunds
from accounts.locks import lock_balance_rows
from accounts.models import Asset, EntryKind, User
from exchange.db import PreparedStatement
from exchange.errors import DomainError
from markets.models import Market
from trading.engine.commands import command_to_dict
from trading.errors import DuplicateClientOrderId
from trading.models import Order, OrderStatus, OutboxEntry
from trading.services.orders import accept_single, build_place_command, loaded, same_order
from trading.services.outbox import publish_outbox
from trading.validation import OrderPlan, OrderSpec

logger = logging.getLogger(__name__)

# At most this many orders per transaction: large enough that the per-transaction costs
# (COMMIT's fsync, round trips, planning) vanish per order, small enough that one batch's
# statements and lock set stay short (a batch of 256 commits in a few ms).
MAX_BATCH = 256
# An idle batcher thread exits after this long and closes its connection (restarted lazily).
IDLE_EXIT_SECONDS = 30.0


@dataclass(slots=True, eq=False)
class AcceptRequest:
    """One validated order waiting for the batcher; `coid` is generated if the client gave none."""

    user: User
    market: Market
    spec: OrderSpec
    plan: OrderPlan
    coid: str
    client_coid: bool  # the client chose `coid` (idempotency applies)
    hold_asset: Asset
    hold_amount: Decimal
    future: Future[Order] = field(default_factory=Future)


@dataclass(slots=True)
class BatchStats:
    """What this process's batcher has done (tests and benchmarks read it)."""

    batches: int = 0
    orders: int = 0
    largest: int = 0
    fallbacks: int = 0


class AcceptBatcher:
    """A queue of accept requests and the thread that applies them in batches."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.stats = BatchStats()
        self._cond = threading.Condition()
        self._pending: deque[AcceptRequest] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def submit(self, request: AcceptRequest) -> Future[Order]:
        """Queue the request (starting the thread if needed); return its future."""
        with self._cond:
            self._pending.append(request)
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._run, name="accept-batcher", daemon=True
                )
                self._thread.start()
            else:
                self._cond.notify()
        return request.future

    def stop(self) -> None:
        """Let the thread finish what is queued, then exit and close its connection."""
        with self._cond:
            thread = self._thread
            self._stopping = True
            self._cond.notify()
        if thread is not None:
            thread.join()

    def _take(self) -> list[AcceptRequest] | None:
        with self._cond:
            while not self._pending:
                if self._stopping or not self._cond.wait(timeout=IDLE_EXIT_SECONDS):
                    if self._pending:
                        break
                    self._thread = None
                    return None
            n = min(len(self._pending), MAX_BATCH)
            return [self._pending.popleft() for _ in range(n)]

    def _run(self) -> None:
        try:
            while (batch := self._take()) is not None:
                try:
                    self._apply(batch)
                except BaseException as exc:  # never leave a caller waiting forever
                    for request in batch:
                        if not request.future.done():
                            request.future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
        finally:
            connection.close()

    def _apply(self, batch: list[AcceptRequest]) -> None:
        stats = self.stats
        stats.batches += 1
        stats.orders += len(batch)
        stats.largest = max(stats.largest, len(batch))
        try:
            outcomes, entries = _apply_batch(batch)
        except Exception:
            logger.info("accept batch of %d failed; applying one by one", len(batch), exc_info=True)
            stats.fallbacks += 1
            if connection.connection is not None and not connection.is_usable():
                connection.close()  # a lost connection: the fallback reconnects
            _apply_one_by_one(batch)
            return
        publish_outbox(entries=entries)
        for request, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Order):
                request.future.set_result(outcome)
            else:
                request.future.set_exception(outcome)


_batcher: AcceptBatcher | None = None
_batcher_lock = threading.Lock()


def get_batcher() -> AcceptBatcher:
    """This process's batcher, built on first use and again in a forked child."""
    global _batcher
    pid = os.getpid()
    batcher = _batcher
    if batcher is None or batcher.pid != pid:
        with _batcher_lock:
            if _batcher is None or _batcher.pid != pid:
                _batcher = AcceptBatcher()
            batcher = _batcher
    return batcher


def stop_batcher() -> None:
    """Stop this process's batcher thread, if any (tests, before the database goes away)."""
    if _batcher is not None and _batcher.pid == os.getpid():
        _batcher.stop()


def _apply_one_by_one(batch: Sequence[AcceptRequest]) -> None:
    for request in batch:
        try:
            order = accept_single(
                user=request.user,
                market=request.market,
                spec=request.spec,
                plan=request.plan,
                coid=request.coid if request.client_coid else None,
            )
        except Exception as exc:
            request.future.set_exception(exc)
        else:
            request.future.set_result(order)


# The stored orders of the batch's client-chosen ids (idempotency on (user, coid)).
_FIND_STORED = PreparedStatement(
    "trading_batch_find_stored",
    """
SELECT o.id FROM trading_order o
JOIN unnest(%(user_ids)s::bigint[], %(coids)s::text[]) AS k(user_id, coid)
  ON o.user_id = k.user_id AND o.client_order_id = k.coid
""",
)

# The holds: the balance rows are locked (lock_balance_rows) and the totals checked, so a
# miss of the guard means a broken invariant; the row count is checked all the same.
_HOLD_MANY = PreparedStatement(
    "trading_batch_hold",
    """
UPDATE accounts_balance AS b
SET available = b.available - v.amount, locked = b.locked + v.amount, updated_at = %(now)s
FROM unnest(%(ids)s::bigint[], %(amounts)s::numeric[]) AS v(id, amount)
WHERE b.id = v.id AND b.available >= v.amount
""",
)

# The orders (arrival order, so ids ascend with it) and their outbox rows, whose commands get
# the order ids by jsonb_set as in the single-order statement.
_INSERT_ORDERS = PreparedStatement(
    "trading_batch_insert_orders",
    """
WITH v AS (
    SELECT * FROM unnest(
        %(user_ids)s::bigint[], %(market_ids)s::bigint[], %(coids)s::text[], %(sides)s::text[],
        %(types)s::text[], %(tifs)s::text[], %(prices)s::numeric[], %(stop_prices)s::numeric[],
        %(quantities)s::numeric[], %(quote_amounts)s::numeric[], %(stp_modes)s::text[],
        %(hold_asset_ids)s::bigint[], %(holds)s::numeric[], %(payloads)s::text[]
    ) WITH ORDINALITY AS v(
        user_id, market_id, coid, side, order_type, tif, price, stop_price, quantity,
        quote_amount, stp_mode, hold_asset_id, hold, payload, n
    )
), o AS (
    INSERT INTO trading_order (
        user_id, market_id, client_order_id, side, order_type, time_in_force, price,
        stop_price, quantity, quote_amount, stp_mode, filled_quantity, filled_quote, fee_paid,
        hold_asset_id, hold_amount, hold_remaining, status, reject_reason, accepted_seq,
        created_at, updated_at
    )
    SELECT user_id, market_id, coid, side, order_type, tif, price, stop_price, quantity,
           quote_amount, stp_mode, 0, 0, 0, hold_asset_id, hold, hold, %(status)s, '', NULL,
           %(now)s, %(now)s
    FROM v ORDER BY n
    RETURNING id, user_id, client_order_id
), x AS (
    INSERT INTO trading_outboxentry (market_id, payload, created_at, published_at, stream_id)
    SELECT v.market_id, jsonb_set(v.payload::jsonb, '{order_id}', to_jsonb(o.id)), %(now)s,
           NULL, ''
    FROM v JOIN o ON o.user_id = v.user_id AND o.client_order_id = v.coid
    ORDER BY v.n
    RETURNING id, (payload ->> 'order_id')::bigint AS order_id
)
SELECT o.user_id, o.client_order_id, o.id, x.id FROM o JOIN x ON x.order_id = o.id
""",
)

# One order_hold entry per order and its two postings (available -hold, locked +hold), the
# shape of accounts' hold_funds; the triggers of accounts' migration 0002 check each.
_INSERT_ENTRIES = PreparedStatement(
    "trading_batch_hold_entries",
    """
WITH v AS (
    SELECT * FROM unnest(
        %(refs)s::text[], %(balance_ids)s::bigint[], %(asset_ids)s::bigint[],
        %(amounts)s::numeric[]
    ) WITH ORDINALITY AS v(ref, balance_id, asset_id, amount, n)
), e AS (
    INSERT INTO accounts_journalentry (kind, ref, memo, created_at)
    SELECT %(kind)s, ref, '', %(now)s FROM v ORDER BY n
    RETURNING id, ref
)
INSERT INTO accounts_posting (entry_id, balance_id, asset_id, bucket, amount)
SELECT e.id, v.balance_id, v.asset_id, p.bucket, p.sign * v.amount
FROM v JOIN e ON e.ref = v.ref,
     (VALUES ('available', -1), ('locked', 1)) AS p(bucket, sign)
""",
)


Outcome = Order | DomainError


def _apply_batch(batch: Sequence[AcceptRequest]) -> tuple[list[Outcome], list[OutboxEntry]]:
    """Accept the batch in one durable transaction; return each request's outcome and the
    outbox rows written (in id order). Raises (and writes nothing) if the transaction fails."""
    outcomes: list[Outcome | None] = [None] * len(batch)
    same_as: dict[int, int] = {}  # request index -> earlier accepted index with its coid
    now = timezone.now()
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        stored = _stored_orders(cursor, batch)
        rows = {
            (row.user_id, row.asset_id): row
            for row in lock_balance_rows(
                user_assets=sorted({(r.user.pk, r.hold_asset.pk) for r in batch})
            )
        }
        left = {row.id: row.available for row in rows.values()}
        taken: dict[tuple[int, str], int] = {}
        accepted: list[int] = []
        for i, request in enumerate(batch):
            key = (request.user.pk, request.coid)
            if request.client_coid and key in stored:
                outcomes[i] = _repeat_of(stored[key], request)
                continue
            if request.client_coid and key in taken:
                j = taken[key]
                if _same_spec(batch[j], request):
                    same_as[i] = j
                else:
                    outcomes[i] = _different_order()
                continue
            row = rows.get((request.user.pk, request.hold_asset.pk))
            if row is None or left[row.id] < request.hold_amount:
                outcomes[i] = InsufficientFunds(
                    f"Insufficient available {request.hold_asset.code}: "
                    f"{request.hold_amount} requested.",
                    asset=request.hold_asset.code,
                    requested=request.hold_amount,
                )
                continue
            left[row.id] -= request.hold_amount
            accepted.append(i)
            taken[key] = i
        entries: list[OutboxEntry] = []
        if accepted:
            held = [batch[i] for i in accepted]
            balance_of = {i: rows[(batch[i].user.pk, batch[i].hold_asset.pk)].id for i in accepted}
            totals: dict[int, Decimal] = {}
            for i in accepted:
                b = balance_of[i]
                totals[b] = totals.get(b, Decimal(0)) + batch[i].hold_amount
            ids = sorted(totals)
            _HOLD_MANY.execute(
                cursor, {"now": now, "ids": ids, "amounts": [totals[b] for b in ids]}
            )
            if cursor.rowcount != len(ids):
                raise RuntimeError("a balance changed under its lock; the batch is retried")
            orders, entries = _insert_orders(cursor, held, now=now)
            for i, order in zip(accepted, orders, strict=True):
                outcomes[i] = order
            _INSERT_ENTRIES.execute(
                cursor,
                {
                    "refs": [f"order:{order.pk}" for order in orders],
                    "balance_ids": [balance_of[i] for i in accepted],
                    "asset_ids": [r.hold_asset.pk for r in held],
                    "amounts": [r.hold_amount for r in held],
                    "kind": str(EntryKind.ORDER_HOLD),
                    "now": now,
                },
            )
    for i, j in same_as.items():
        outcomes[i] = outcomes[j]
    final = [o for o in outcomes if o is not None]
    if len(final) != len(batch):
        raise RuntimeError("an accept request was left without an outcome")
    return final, entries


def _stored_orders(
    cursor: CursorWrapper, batch: Sequence[AcceptRequest]
) -> dict[tuple[int, str], Order]:
    keys = sorted({(r.user.pk, r.coid) for r in batch if r.client_coid})
    if not keys:
        return {}
    _FIND_STORED.execute(cursor, {"user_ids": [u for u, _ in keys], "coids": [c for _, c in keys]})
    ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return {}
    return {(o.user_id, o.client_order_id): o for o in Order.objects.filter(pk__in=ids)}


def _repeat_of(stored: Order, request: AcceptRequest) -> Outcome:
    if same_order(stored, market=request.market, spec=request.spec):
        return stored
    return _different_order()


def _different_order() -> DuplicateClientOrderId:
    return DuplicateClientOrderId(
        "This client_order_id was already used for a different order.",
        field="client_order_id",
    )


def _same_spec(first: AcceptRequest, second: AcceptRequest) -> bool:
    a, b = first.spec, second.spec
    return (
        first.market.pk == second.market.pk
        and a.side == b.side
        and a.order_type == b.order_type
        and a.resolved_time_in_force == b.resolved_time_in_force
        and a.stp_mode == b.stp_mode
        and _same_decimal(a.price, b.price)
        and _same_decimal(a.stop_price, b.stop_price)
        and _same_decimal(a.quantity, b.quantity)
        and _same_decimal(a.quote_amount, b.quote_amount)
    )


def _same_decimal(a: Decimal | None, b: Decimal | None) -> bool:
    return a == b if a is not None and b is not None else a is b


def _insert_orders(
    cursor: CursorWrapper, held: Sequence[AcceptRequest], *, now: datetime
) -> tuple[list[Order], list[OutboxEntry]]:
    payloads = []
    for r in held:
        # order_id is filled in by the statement; the rest of the command is known already.
        command = build_place_command(
            order_id=0,
            account_id=r.user.pk,
            side=r.spec.side,
            stp_mode=r.spec.stp_mode,
            plan=r.plan,
        )
        payloads.append(command_to_dict(command))
    specs = [r.spec for r in held]
    _INSERT_ORDERS.execute(
        cursor,
        {
            "user_ids": [r.user.pk for r in held],
            "market_ids": [r.market.pk for r in held],
            "coids": [r.coid for r in held],
            "sides": [s.side for s in specs],
            "types": [s.order_type for s in specs],
            "tifs": [s.resolved_time_in_force for s in specs],
            "prices": [s.price for s in specs],
            "stop_prices": [s.stop_price for s in specs],
            "quantities": [s.quantity for s in specs],
            "quote_amounts": [s.quote_amount for s in specs],
            "stp_modes": [s.stp_mode for s in specs],
            "hold_asset_ids": [r.hold_asset.pk for r in held],
            "holds": [r.hold_amount for r in held],
            "payloads": [json.dumps(p) for p in payloads],
            "status": str(OrderStatus.NEW),
            "now": now,
        },
    )
    ids = {(user_id, coid): (order_id, entry_id) for user_id, coid, order_id, entry_id in cursor}
    orders: list[Order] = []
    entries: list[OutboxEntry] = []
    for r, payload in zip(held, payloads, strict=True):
        order_id, entry_id = ids[(r.user.pk, r.coid)]
        s = r.spec
        orders.append(
            loaded(
                Order(
                    pk=order_id,
                    user=r.user,
                    market=r.market,
                    client_order_id=r.coid,
                    side=s.side,
                    order_type=s.order_type,
                    time_in_force=s.resolved_time_in_force,
                    price=s.price,
                    stop_price=s.stop_price,
                    quantity=s.quantity,
                    quote_amount=s.quote_amount,
                    stp_mode=s.stp_mode,
                    hold_asset=r.hold_asset,
                    hold_amount=r.hold_amount,
                    hold_remaining=r.hold_amount,
                    status=OrderStatus.NEW,
                    created_at=now,
                    updated_at=now,
                )
            )
        )
        payload["order_id"] = order_id
        entries.append(
            loaded(OutboxEntry(pk=entry_id, market=r.market, payload=payload, created_at=now))
        )
    entries.sort(key=lambda e: e.pk)
    return orders, entries
