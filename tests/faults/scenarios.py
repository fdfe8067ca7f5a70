"""One fault run: a fresh database and Redis, the real processes, a seeded workload, a fault.

``run_scenario`` creates the run's database from the migrated template, starts the
deployment (tests.faults.deployment), waits for every market's loops, drives ``manage.py
simulate --no-inline`` as a subprocess, injects the scenario's fault(s) from this process,
then collects: the simulate outcome (it waits for the exchange to catch up: liveness), the
liveness diagnostics if it did not, the money invariants (run_ledger_checks in a fresh
process), the final state for the exact comparison, and the stall figures per fault.

Every wait is bounded and every process is killed at the end, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import redis

from tests.faults.deployment import ROOT, Deployment, child_env, manage, spawn
from tests.faults.observe import (
    Db,
    FinalState,
    Monitor,
    Sample,
    Stall,
    cursors,
    final_state,
    liveness,
    order_count,
    redis_client,
    sample,
    stalls,
    stuck_markets,
)
from tests.private_servers import PrivatePostgres, PrivateRedis

SYMBOLS = ["SIM0-USDT", "SIM1-USDT"]
FAULTED = SYMBOLS[0]  # the market whose loop owners the process faults target
READY_TIMEOUT = 90.0
LEDGER_CHECK = (
    "import sys\n"
    "from accounts.checks import run_ledger_checks\n"
    "report = run_ledger_checks()\n"
    "print(report.format())\n"
    "sys.exit(0 if report.ok else 3)\n"
)


class HarnessError(Exception):
    """The harness could not do what the scenario asks (not a finding about the system)."""


@dataclass(frozen=True)
class Workload:
    """A seeded multi-user workload with cancels across two markets."""

    seed: int
    users: int = 8
    orders: int = 1200
    rate: float = 100.0
    cancel_share: float = 0.2
    # Liveness: everything accepted is matched and settled this long after the last order.
    settle_deadline: float = 45.0

    @property
    def seconds(self) -> float:
        return self.orders / self.rate

    def simulate_args(self) -> list[str]:
        return [
            "simulate", "--no-inline", "--markets", str(len(SYMBOLS)),
            "--users", str(self.users), "--orders", str(self.orders), "--seed", str(self.seed),
            "--rate", str(self.rate), "--cancel-share", str(self.cancel_share),
            "--timeout", str(self.settle_deadline), "--outage-patience", "60",
        ]  # fmt: skip


@dataclass
class Servers:
    """The session's private servers and the migrated template database."""

    pg: PrivatePostgres
    rd: PrivateRedis
    template: str
    log_dir: Path
    runs: int = 0


@dataclass
class FaultEvent:
    at: float  # time.monotonic() when the fault was injected
    baseline: Sample
    note: str


@dataclass
class Outcome:
    scenario: str
    seed: int
    problems: list[str]
    events: list[FaultEvent]
    stalls: list[dict[str, Stall]]
    seconds: float
    run_dir: Path
    state: FinalState | None = None
    errors: list[str] = field(default_factory=list)

    def over_budget(self, budget: float) -> list[str]:
        """Every market whose matching or settlement stalled past ``budget`` after a fault."""
        found = []
        for event, figures in zip(self.events, self.stalls, strict=True):
            for symbol, stall in figures.items():
                for what, value in (
                    ("matching", stall.matching),
                    ("settlement", stall.settlement),
                    ("settlement (longest gap)", stall.longest_settle_gap),
                ):
                    if value is None or value > budget:
                        took = "never resumed" if value is None else f"stalled {value:.1f}s"
                        found.append(
                            f"{symbol}: {what} {took} after {event.note} (budget {budget:g}s)"
                        )
        return found

    def line(self, *, exact: bool | None = None, budget: float | None = None) -> str:
        """One line of figures: the worst stall per market over the run's faults."""

        def worst(pick: Callable[[Stall], float | None]) -> str:
            parts = []
            for symbol in SYMBOLS:
                values = [pick(s[symbol]) for s in self.stalls if symbol in s]
                if not values:
                    parts.append(f"{symbol[:4]} -")
                elif any(v is None for v in values):
                    parts.append(f"{symbol[:4]} never")
                else:
                    parts.append(f"{symbol[:4]} {max(v for v in values if v is not None):.1f}s")
            return "/".join(parts)

        slow = budget is not None and bool(self.over_budget(budget))
        verdict = "PASS" if not self.problems and exact is not False and not slow else "FAIL"
        compare = "" if exact is None else f" exact={'ok' if exact else 'DIFFERS'}"
        notes = "; ".join(e.note for e in self.events)
        return (
            f"{self.scenario:<26} seed={self.seed} {verdict} "
            f"match_stall={worst(lambda s: s.matching)} "
            f"settle_stall={worst(lambda s: s.settlement)} "
            f"settle_gap={worst(lambda s: s.longest_settle_gap)} "
            f"run={self.seconds:.0f}s problems={len(self.problems)}{compare} [{notes}]"
        )


@dataclass
class RunContext:
    """What a fault function works with."""

    servers: Servers
    deployment: Deployment
    workload: Workload
    db: Db
    rd: redis.Redis
    simulate: subprocess.Popen[bytes]

    def snapshot(self) -> Sample:
        return sample(self.db, self.rd, SYMBOLS)

    def wait_orders(self, fraction: float) -> None:
        """Until the workload has placed ``fraction`` of its orders (bounded)."""
        target = int(self.workload.orders * fraction)
        deadline = time.monotonic() + self.workload.seconds * 2 + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(psycopg2.Error):
                if order_count(self.db) >= target:
                    return
            if self.simulate.poll() is not None:
                raise HarnessError(f"simulate ended before {fraction:.0%} of the orders")
            time.sleep(0.05)
        raise HarnessError(f"the workload never reached {fraction:.0%} of its orders")

    def wait_settled_some(self) -> None:
        """Until some market has settled its first batch (bounded)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(psycopg2.Error):
                if any(v > 0 for v in cursors(self.db).values()):
                    return
            time.sleep(0.05)
        raise HarnessError("nothing settled within 60 s of the workload's start")

    def loops_of(self, pid: int) -> str:
        """Which loops the process owns now, e.g. "matching:SIM0 settlement:SIM1"."""
        owned = []
        for symbol in SYMBOLS:
            for role in ("matching", "settlement"):
                label = self.rd.get(f"lease:{role}:{symbol}:owner")
                if label and label.decode().split(":")[1] == str(pid):
                    owned.append(f"{role}:{symbol[:4]}")
        return " ".join(owned) or "no loops"

    def owner(self, role: str, symbol: str = FAULTED) -> tuple[str, int]:
        """(worker name, pid) of the process owning the market's lease for ``role``."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            label = self.rd.get(f"lease:{role}:{symbol}:owner")
            if label:
                pid = int(label.decode().split(":")[1])
                name = self.deployment.name_of_pid(pid)
                if name is None:
                    raise HarnessError(f"the {role} owner {label!r} is no worker of this run")
                return name, pid
            time.sleep(0.05)
        raise HarnessError(f"no {role} owner of {symbol} within 30 s")


FaultFn = Callable[[RunContext], list[FaultEvent]]


def run_scenario(
    servers: Servers, workload: Workload, scenario: str, fault: FaultFn | None
) -> Outcome:
    servers.runs += 1
    dbname = f"run{servers.runs}_{scenario}_{workload.seed}"
    run_dir = servers.log_dir / dbname
    run_dir.mkdir(parents=True)
    servers.rd.flushall()  # the private server: nothing of the previous run survives
    servers.pg.execute(f'CREATE DATABASE "{dbname}" TEMPLATE "{servers.template}"')
    env = child_env(database_url=servers.pg.url(dbname), redis_url=servers.rd.url(0))
    deployment = Deployment(env=env, run_dir=run_dir)
    db = Db(port=servers.pg.port, dbname=dbname)
    rd = redis_client(servers.rd.port)
    monitor: Monitor | None = None
    simulate: subprocess.Popen[bytes] | None = None
    problems: list[str] = []
    events: list[FaultEvent] = []
    stuck: frozenset[str] = frozenset()
    started = time.monotonic()
    ended = started
    try:
        deployment.start_all()
        _wait_ready(rd, deployment)
        monitor = Monitor(
            pg_port=servers.pg.port, dbname=dbname, redis_port=servers.rd.port, symbols=SYMBOLS
        ).start()
        simulate = spawn(
            [sys.executable, str(ROOT / "manage.py"), *workload.simulate_args()],
            env=env,
            log=run_dir / "simulate.log",
        )
        workload_started = time.monotonic()
        ctx = RunContext(servers, deployment, workload, db, rd, simulate)
        if fault is None:
            events = [FaultEvent(workload_started, ctx.snapshot(), "no fault")]
        else:
            try:
                events = fault(ctx)
            except HarnessError as exc:
                problems.append(f"harness: {exc}")
        problems += _finish_simulate(simulate, workload, run_dir, started=workload_started)
        if any("not settled" in p or "simulate" in p for p in problems):
            with contextlib.suppress(psycopg2.Error, redis.RedisError):
                pending = liveness(db, rd, SYMBOLS)
                stuck = stuck_markets(pending, SYMBOLS)
                problems += [f"liveness: {p}" for p in pending]
        ended = time.monotonic()
    except HarnessError as exc:
        problems.append(f"harness: {exc}")
    finally:
        if monitor is not None:
            monitor.stop()
        if simulate is not None and simulate.poll() is None:
            os.killpg(simulate.pid, signal.SIGKILL)
            simulate.wait(10)
        deployment.stop_all()
        rd.close()
    problems += _check_ledger(env, run_dir)
    problems += _check_marketdata(env, run_dir)
    state = None
    try:
        state = final_state(db)
    except psycopg2.Error as exc:
        problems.append(f"could not read the final state: {exc}")
    finally:
        db.close()
    samples = monitor.samples if monitor is not None else []
    figures = [
        stalls(
            samples,
            fault_at=event.at,
            baseline=event.baseline,
            until=events[i + 1].at if i + 1 < len(events) else ended,
            stuck=stuck if i + 1 == len(events) else frozenset(),
        )
        for i, event in enumerate(events)
    ]
    return Outcome(
        scenario=scenario,
        seed=workload.seed,
        problems=problems,
        events=events,
        stalls=figures,
        seconds=time.monotonic() - started,
        run_dir=run_dir,
        state=state,
        errors=deployment.errors(),
    )


def _wait_ready(rd: redis.Redis, deployment: Deployment) -> None:
    """Until every market has a live matching and settlement lease (the watchdog's work)."""
    keys = [f"lease:{role}:{s}" for s in SYMBOLS for role in ("matching", "settlement")]
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if rd.exists(*keys) == len(keys):
            return
        if deployment.dead():
            raise HarnessError(f"processes died at start-up: {deployment.dead()}")
        time.sleep(0.1)
    raise HarnessError(f"the loops did not all start within {READY_TIMEOUT:.0f}s")


def _finish_simulate(
    proc: subprocess.Popen[bytes], workload: Workload, run_dir: Path, *, started: float
) -> list[str]:
    # The workload's own time, the liveness deadline, and room for outage retries.
    deadline = started + workload.seconds * 1.5 + workload.settle_deadline + 60
    try:
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        return [f"simulate did not finish within {deadline - started:.0f}s (hung)"]
    text = (run_dir / "simulate.log").read_text(errors="replace")
    if code == 0 and "check_ledger: all invariants hold" in text:
        return []
    tail = " | ".join(line for line in text.strip().splitlines()[-6:])
    return [f"simulate exited {code}: {tail[-1500:]}"]


def _check_ledger(env: dict[str, str], run_dir: Path) -> list[str]:
    log = run_dir / "ledger.log"
    try:
        code = manage("shell", "-c", LEDGER_CHECK, env=env, log=log, timeout=180)
    except subprocess.TimeoutExpired:
        return ["money invariants: the ledger check did not finish within 180 s"]
    if code == 0:
        return []
    text = log.read_text(errors="replace").strip().splitlines()
    return ["money invariants violated: " + " | ".join(text[-12:])[-2000:]]


def _check_marketdata(env: dict[str, str], run_dir: Path) -> list[str]:
    """Candles against trades, depth levels against the resting orders, book_seq against the
    cursor, after the fault healed: market data survives every fault the matrix injects."""
    log = run_dir / "marketdata.log"
    try:
        code = manage("check_marketdata", env=env, log=log, timeout=180)
    except subprocess.TimeoutExpired:
        return ["market data: check_marketdata did not finish within 180 s"]
    if code == 0:
        return []
    text = log.read_text(errors="replace").strip().splitlines()
    return ["market data invariants violated: " + " | ".join(text[-12:])[-2000:]]


# ---------------------------------------------------------------- faults


def lease_ttl() -> float:
    from trading.lease import DEFAULT_TTL_MS

    return DEFAULT_TTL_MS / 1000


def kill_owner(role: str) -> FaultFn:
    def fault(ctx: RunContext) -> list[FaultEvent]:
        ctx.wait_orders(0.35)
        name, pid = ctx.owner(role)
        loops = ctx.loops_of(pid)
        baseline, at = ctx.snapshot(), time.monotonic()
        ctx.deployment.kill_and_restart(name)  # SIGKILL that process only; restarted after 1 s
        return [FaultEvent(at, baseline, f"kill -9 {name}, {role} owner, had {loops}")]

    return fault


def flushall(*, mid_run: bool) -> FaultFn:
    def fault(ctx: RunContext) -> list[FaultEvent]:
        if mid_run:
            ctx.wait_orders(0.5)
        else:
            ctx.wait_settled_some()
        baseline, at = ctx.snapshot(), time.monotonic()
        ctx.servers.rd.flushall()
        return [FaultEvent(at, baseline, f"FLUSHALL {'mid-run' if mid_run else 'at start'}")]

    return fault


def pg_restart(mode: str) -> FaultFn:
    def fault(ctx: RunContext) -> list[FaultEvent]:
        ctx.wait_orders(0.4)
        baseline, at = ctx.snapshot(), time.monotonic()
        ctx.servers.pg.restart(mode=mode)
        return [FaultEvent(at, baseline, f"pg restart {mode} ({time.monotonic() - at:.1f}s down)")]

    return fault


def stop_matching_owner(ctx: RunContext) -> list[FaultEvent]:
    ctx.wait_orders(0.35)
    name, pid = ctx.owner("matching")
    loops = ctx.loops_of(pid)
    paused = lease_ttl() + 3
    baseline, at = ctx.snapshot(), time.monotonic()
    ctx.deployment.signal(name, signal.SIGSTOP)
    try:
        time.sleep(paused)
    finally:
        ctx.deployment.signal(name, signal.SIGCONT)
    return [FaultEvent(at, baseline, f"SIGSTOP {name} {paused:.1f}s, had {loops}")]


def client_ports(pid: int, server_port: int) -> set[int]:
    """Local ports of ``pid``'s TCP connections to 127.0.0.1:server_port (via /proc)."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        local, remote, inode = parts[1], parts[2], parts[9]
        if inode in inodes and int(remote.split(":")[1], 16) == server_port:
            ports.add(int(local.split(":")[1], 16))
    return ports


def stop_settlement_in_transaction(ctx: RunContext) -> list[FaultEvent]:
    """SIGSTOP the settlement owner while its backend is 'idle in transaction', then CONT."""
    ctx.wait_orders(0.35)
    name, pid = ctx.owner("settlement")
    loops = ctx.loops_of(pid)
    rng = random.Random(ctx.workload.seed)  # jitter of the stop attempts
    deadline = time.monotonic() + 40
    tries = 0
    while time.monotonic() < deadline:
        tries += 1
        baseline = ctx.snapshot()
        at = time.monotonic()
        ctx.deployment.signal(name, signal.SIGSTOP)
        landed: list[tuple[object, ...]] = []
        try:
            time.sleep(0.03)  # a statement in flight completes; the backend then idles
            ports = client_ports(pid, ctx.servers.pg.port)
            landed = ctx.db.rows(
                "SELECT pid, left(query, 90) FROM pg_stat_activity "
                "WHERE state = 'idle in transaction' AND client_port = ANY(%s)",
                [sorted(ports)],
            )
            if landed:
                time.sleep(5.0)
        finally:
            ctx.deployment.signal(name, signal.SIGCONT)
        if landed:
            note = (
                f"SIGSTOP {name} inside a settlement transaction for 5s, had {loops} "
                f"(try {tries}; its last statement {str(landed[0][1])[:40]!r})"
            )
            return [FaultEvent(at, baseline, note)]
        time.sleep(rng.uniform(0.0, 0.06))
    raise HarnessError(f"the settlement owner never stopped inside a transaction ({tries} tries)")


def random_faults(count: int, round_: int = 0) -> FaultFn:
    """``count`` faults drawn (seeded by the workload's seed and ``round_``) from every kind,
    spread evenly over the workload."""
    kinds: list[tuple[str, FaultFn]] = [
        ("kill matching", _now(kill_owner("matching"))),
        ("kill settlement", _now(kill_owner("settlement"))),
        ("flushall", _now(flushall(mid_run=True))),
        ("pg fast", _now(pg_restart("fast"))),
        ("pg immediate", _now(pg_restart("immediate"))),
        ("stop matching", _now(stop_matching_owner)),
        ("stop settlement", _now(stop_settlement_in_transaction)),
    ]

    def fault(ctx: RunContext) -> list[FaultEvent]:
        rng = random.Random(ctx.workload.seed * 7919 + round_)  # a reproducible choice
        events: list[FaultEvent] = []
        for k in range(count):
            ctx.wait_orders((k + 1) / (count + 1))
            _label, inject = rng.choice(kinds)
            events += inject(ctx)
        return events

    return fault


def _now(fault: FaultFn) -> FaultFn:
    """The fault without its own wait for progress (random_faults paces them)."""

    def run(ctx: RunContext) -> list[FaultEvent]:
        saved = ctx.wait_orders
        ctx.wait_orders = lambda fraction: None  # type: ignore[method-assign]
        try:
            return fault(ctx)
        finally:
            ctx.wait_orders = saved  # type: ignore[method-assign]

    return run


def no_fault(ctx: RunContext) -> list[FaultEvent]:
    """Nothing happens: the figures are the pipeline's normal jitter at the same point."""
    ctx.wait_orders(0.35)
    return [FaultEvent(time.monotonic(), ctx.snapshot(), "no fault")]


SCENARIOS: dict[str, FaultFn | None] = {
    "no_fault": no_fault,
    "kill_matching_owner": kill_owner("matching"),
    "kill_settlement_owner": kill_owner("settlement"),
    "flushall_at_start": flushall(mid_run=False),
    "flushall_mid_run": flushall(mid_run=True),
    "pg_restart_fast": pg_restart("fast"),
    "pg_restart_immediate": pg_restart("immediate"),
    "sigstop_matching_owner": stop_matching_owner,
    "sigstop_settlement_in_tx": stop_settlement_in_transaction,
}
