"""What the fault tests read from a run: progress over time, the final state, liveness.

Everything is read with plain psycopg2 / redis clients against the private servers (the
pytest process's Django is configured for pytest's own database, not the run's), with short
timeouts, so a reader never hangs on a server that is being restarted.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import zip_longest
from typing import Any

import psycopg2
import redis

Sample = dict[str, tuple[int | None, bytes | None]]  # symbol -> (cursor, consumed offset)


class Db:
    """A reconnecting autocommit connection to one run database."""

    def __init__(self, *, port: int, dbname: str) -> None:
        self.port, self.dbname = port, dbname
        self._conn: Any = None

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """The statement's rows; one retry on a fresh connection if the old one broke
        (the server was restarted since it was opened)."""
        try:
            return self._rows(sql, params)
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            return self._rows(sql, params)

    def _rows(self, sql: str, params: Any) -> list[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg2.connect(
                host="127.0.0.1", port=self.port, user="postgres", dbname=self.dbname,
                connect_timeout=2, options="-c statement_timeout=5000",
            )  # fmt: skip
            self._conn.autocommit = True
        try:
            with self._conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        except psycopg2.Error:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg2.Error):
                self._conn.close()
            self._conn = None


def redis_client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2)


def cursors(db: Db) -> dict[str, int]:
    return dict(
        db.rows(
            "SELECT m.symbol, c.last_seq FROM trading_settlementcursor c "
            "JOIN markets_market m ON m.id = c.market_id"
        )
    )


def order_count(db: Db) -> int:
    return int(db.rows("SELECT count(*) FROM trading_order")[0][0])


def sample(db: Db, rd: redis.Redis, symbols: list[str]) -> Sample:
    """(settlement cursor, matching progress offset) per market; None what is unreadable."""
    try:
        seqs: dict[str, int] | None = cursors(db)
    except psycopg2.Error:
        seqs = None
    try:
        consumed = rd.mget([f"market:{s}:consumed" for s in symbols])
    except redis.RedisError:
        consumed = [None] * len(symbols)
    return {
        s: (seqs.get(s, 0) if seqs is not None else None, c)
        for s, c in zip(symbols, consumed, strict=True)
    }


class Monitor:
    """Samples every market's progress every ``every`` seconds on a thread, until stopped."""

    def __init__(self, *, pg_port: int, dbname: str, redis_port: int, symbols: list[str]):
        self.symbols = symbols
        self.db = Db(port=pg_port, dbname=dbname)
        self.rd = redis_client(redis_port)
        self.samples: list[tuple[float, Sample]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-monitor", daemon=True)

    def start(self) -> Monitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)
        self.db.close()
        self.rd.close()

    def _run(self, every: float = 0.05) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), sample(self.db, self.rd, self.symbols)))
            self._stop.wait(every)


@dataclass
class Stall:
    """How long one market waited after a fault (seconds; None: never within the run)."""

    matching: float | None  # fault -> the matching loop applied its next batch
    settlement: float | None  # fault -> the settlement cursor next advanced
    longest_settle_gap: float  # longest time without a cursor advance from the fault on


def stalls(
    samples: list[tuple[float, Sample]],
    *,
    fault_at: float,
    baseline: Sample,
    until: float,
    stuck: frozenset[str] = frozenset(),
) -> dict[str, Stall]:
    """Stall figures per market for a fault at ``fault_at``, from samples up to ``until``.

    A ``stuck`` market (work still pending when the run ended) also counts the time from its
    last settled batch to ``until`` as a gap: a cursor that stops for good is a stall.
    """
    out: dict[str, Stall] = {}
    for symbol, (cursor0, consumed0) in baseline.items():
        matching = settlement = None
        last_cursor = cursor0 or 0
        last_advance = fault_at
        gap = 0.0
        for at, values in samples:
            if at <= fault_at or at > until:
                continue
            cursor, consumed = values[symbol]
            if matching is None and consumed is not None and consumed != consumed0:
                matching = at - fault_at
            if cursor is not None and cursor > last_cursor:
                if settlement is None:
                    settlement = at - fault_at
                gap = max(gap, at - last_advance)
                last_cursor, last_advance = cursor, at
        if symbol in stuck:
            gap = max(gap, until - last_advance)
        out[symbol] = Stall(matching, settlement, gap)
    return out


# ---------------------------------------------------------------- final state


@dataclass
class FinalState:
    """What an exact comparison looks at, keyed by client order ids (db ids may differ)."""

    trades: dict[str, list[tuple[str, str, Decimal, Decimal]]] = field(default_factory=dict)
    orders: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    balances: dict[tuple[str, str], tuple[Decimal, Decimal]] = field(default_factory=dict)


def final_state(db: Db) -> FinalState:
    state = FinalState()
    for symbol, buy, sell, price, quantity in db.rows(
        "SELECT m.symbol, b.client_order_id, s.client_order_id, t.price, t.quantity "
        "FROM trading_trade t JOIN markets_market m ON m.id = t.market_id "
        "JOIN trading_order b ON b.id = t.buy_order_id "
        "JOIN trading_order s ON s.id = t.sell_order_id ORDER BY m.symbol, t.seq"
    ):
        state.trades.setdefault(symbol, []).append((buy, sell, price, quantity))
    for coid, *rest in db.rows(
        "SELECT o.client_order_id, m.symbol, o.status, o.filled_quantity, o.filled_quote, "
        "o.fee_paid, o.hold_remaining FROM trading_order o "
        "JOIN markets_market m ON m.id = o.market_id"
    ):
        state.orders[coid] = tuple(rest)
    for owner, asset, available, locked in db.rows(
        "SELECT coalesce(u.email, b.id::text), a.code, b.available, b.locked "
        "FROM accounts_balance b JOIN accounts_asset a ON a.id = b.asset_id "
        "LEFT JOIN accounts_user u ON u.id = b.user_id WHERE u.id IS NOT NULL"
    ):
        state.balances[(owner, asset)] = (available, locked)
    return state


ORDER_FIELDS = ("market", "status", "filled_quantity", "filled_quote", "fee", "hold_remaining")


def _coid_key(coid: str) -> tuple[int, str]:
    head, _, n = coid.rpartition("-")
    return (int(n), head) if n.isdigit() else (1 << 62, coid)


def differences(expected: FinalState, got: FinalState, *, limit: int = 5) -> list[str]:
    """Human-readable differences: per market the first differing trade, then orders."""
    problems: list[str] = []
    for symbol in sorted(set(expected.trades) | set(got.trades)):
        want, have = expected.trades.get(symbol, []), got.trades.get(symbol, [])
        for i, (a, b) in enumerate(zip_longest(want, have)):
            if a != b:
                problems.append(
                    f"{symbol}: trade #{i} (in seq order) differs: uninterrupted run "
                    f"{_trade(a)}, faulted run {_trade(b)} "
                    f"({len(want)} vs {len(have)} trades in all)"
                )
                break
    wrong = [
        coid
        for coid in sorted(set(expected.orders) | set(got.orders), key=_coid_key)
        if expected.orders.get(coid) != got.orders.get(coid)
    ]
    for coid in wrong[:limit]:
        problems.append(
            f"order {coid}: uninterrupted {_order(expected.orders.get(coid))}, "
            f"faulted {_order(got.orders.get(coid))}"
        )
    if len(wrong) > limit:
        problems.append(f"... {len(wrong)} orders differ in all")
    bad_balances = [k for k in expected.balances if expected.balances[k] != got.balances.get(k)]
    if bad_balances and not wrong:
        key = bad_balances[0]
        problems.append(
            f"balance {key}: uninterrupted {expected.balances[key]}, faulted "
            f"{got.balances.get(key)} ({len(bad_balances)} balances differ)"
        )
    return problems


def _trade(t: tuple[Any, ...] | None) -> str:
    return "none" if t is None else f"buy {t[0]} / sell {t[1]} {t[3]:f} @ {t[2]:f}"


def _order(o: tuple[Any, ...] | None) -> str:
    if o is None:
        return "missing"
    return ", ".join(
        f"{name}={value:f}" if isinstance(value, Decimal) else f"{name}={value}"
        for name, value in zip(ORDER_FIELDS, o, strict=True)
    )


# ---------------------------------------------------------------- liveness


def stuck_markets(problems: list[str], symbols: list[str]) -> frozenset[str]:
    """The markets a list of liveness problems names."""
    return frozenset(s for s in symbols for p in problems if f"{s}:" in p)


def liveness(db: Db, rd: redis.Redis, symbols: list[str]) -> list[str]:
    """What is still unmatched or unsettled per market (empty: everything caught up)."""
    problems: list[str] = []
    seqs = cursors(db)
    unpublished = dict(
        db.rows(
            "SELECT m.symbol, count(*) FROM trading_outboxentry o "
            "JOIN markets_market m ON m.id = o.market_id WHERE o.published_at IS NULL "
            "GROUP BY m.symbol"
        )
    )
    unmatched = dict(
        db.rows(
            "SELECT m.symbol, count(*) FROM trading_order o "
            "JOIN markets_market m ON m.id = o.market_id "
            "WHERE o.status = 'new' AND o.accepted_seq IS NULL GROUP BY m.symbol"
        )
    )
    for symbol in symbols:
        last_in = rd.xrevrange(f"market:{symbol}:in", count=1)
        consumed = rd.get(f"market:{symbol}:consumed")
        last_out = rd.xrevrange(f"market:{symbol}:out", count=1)
        tail = int(last_out[0][1][b"z"]) if last_out else 0
        issues = []
        if unpublished.get(symbol):
            issues.append(f"{unpublished[symbol]} outbox rows unpublished")
        if last_in and consumed != last_in[0][0]:
            issues.append(f"input tail {last_in[0][0]!r} but matching consumed {consumed!r}")
        if seqs.get(symbol, 0) < tail:
            issues.append(f"settlement cursor {seqs.get(symbol, 0)} < output tail seq {tail}")
        if unmatched.get(symbol):
            issues.append(f"{unmatched[symbol]} orders never accepted by the engine")
        if issues:
            owners = {
                role: rd.get(f"lease:{role}:{symbol}:owner") for role in ("matching", "settlement")
            }
            problems.append(f"{symbol}: " + "; ".join(issues) + f" (lease owners {owners})")
    return problems
