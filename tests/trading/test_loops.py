"""trading.loops.run_loop: the shell's stop reasons, lease handling and body calls."""

from __future__ import annotations

import threading

import pytest

from trading.lease import Lease, LeaseLost
from trading.loops import run_loop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]


class _Body:
    def __init__(self, *, work: int = 0, lose_after: int | None = None) -> None:
        self.calls: list[str] = []
        self.steps = 0
        self.work = work
        self.lose_after = lose_after

    def start(self, lease: Lease) -> None:
        self.calls.append(f"start:{lease.token > 0}")

    def step(self, now: float) -> bool:
        self.steps += 1
        if self.lose_after is not None and self.steps > self.lose_after:
            raise LeaseLost("test")
        return self.steps <= self.work

    def stopping(self) -> None:
        self.calls.append("stopping")

    def close(self, *, lease_lost: bool) -> None:
        self.calls.append(f"close:{lease_lost}")


def test_idle_bound_counts_from_the_last_step_that_did_work() -> None:
    body = _Body(work=3)
    outcome = run_loop(body, role="matching", symbol="T-USDT", idle_exit_seconds=0.05)
    assert (outcome.owned, outcome.stopped_by) == (True, "idle")
    assert outcome.token > 0
    assert body.steps > 3
    assert body.calls == ["start:True", "stopping", "close:False"]


def test_max_seconds_and_shutdown_stop_gracefully() -> None:
    assert (
        run_loop(_Body(work=10**9), role="matching", symbol="T-USDT", max_seconds=0.05).stopped_by
        == "max_seconds"
    )
    stop = threading.Event()
    stop.set()
    body = _Body()
    assert run_loop(body, role="settlement", symbol="T-USDT", stop=stop).stopped_by == "shutdown"
    assert body.steps == 0


def test_a_lost_lease_skips_the_graceful_stop() -> None:
    body = _Body(work=10**9, lose_after=2)
    outcome = run_loop(body, role="matching", symbol="T-USDT")
    assert outcome.stopped_by == "lease_lost"
    assert body.calls == ["start:True", "close:True"]


def test_a_market_owned_elsewhere_returns_at_once_without_starting() -> None:
    holder = Lease(role="matching", symbol="T-USDT")
    assert holder.acquire()
    tried: list[int] = []
    try:
        body = _Body()
        outcome = run_loop(
            body, role="matching", symbol="T-USDT", on_lease_tried=lambda: tried.append(1)
        )
    finally:
        holder.release()
    assert (outcome.owned, outcome.stopped_by, tried) == (False, "", [1])
    assert body.calls == []
