"""The fault matrix: each fault against the real processes, compared with an uninterrupted run.

For every scenario the same seeded workload (8 users, two markets, limit / IOC / FOK /
market orders and cancels) runs through ``manage.py simulate --no-inline`` against two
Celery loops workers, a short-task worker and beat, on private PostgreSQL and Redis. After
the fault the run must

- keep the money invariants (run_ledger_checks),
- stay live: everything accepted is matched and settled within the workload's deadline,
- end EXACTLY where the uninterrupted run of the same seed ends: every trade per market in
  seq order (buyer and seller by client order id, price, quantity) and every order's final
  status, filled quantity, filled quote, fee and hold_remaining.

- heal quickly: after the fault, neither matching nor settlement of any market waits longer
  than FAULT_STALL_BUDGET_SECONDS (env, default 6: the design's 3 s target plus room for
  a loaded 2-core CI box). A stall is the time from the fault to the market's next applied
  batch (matching) or settled batch, and the longest gap between settled batches after it.

One line per scenario with the stall figures is printed in the terminal summary. A failure
names the market and the first differing trade / order; the run's logs stay in the
reported directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from tests.faults.conftest import FAULT_LINES
from tests.faults.observe import differences
from tests.faults.scenarios import SCENARIOS, Outcome, Workload, random_faults, run_scenario

pytestmark = pytest.mark.faults


RANDOM_FAULTS_PER_RUN = 6
STALL_BUDGET = float(os.environ.get("FAULT_STALL_BUDGET_SECONDS", "6"))


def _workload(scenario: str, seed: int) -> Workload:
    if scenario.startswith("random_faults"):  # --faults-long: a long run, many faults
        return Workload(seed=seed, orders=6000, settle_deadline=90.0)
    return Workload(seed=seed)


def test_fault_scenario(
    fault_scenario: str,
    seed: int,
    fault_servers: object,
    fault_reference: Callable[[Workload], Outcome],
) -> None:
    workload = _workload(fault_scenario, seed)
    reference = fault_reference(workload)
    if reference.problems or reference.state is None:
        pytest.fail(
            "the uninterrupted reference run itself failed (logs in "
            f"{reference.run_dir}):\n" + "\n".join(reference.problems + reference.errors[:10])
        )
    if fault_scenario.startswith("random_faults"):
        fault = random_faults(RANDOM_FAULTS_PER_RUN, int(fault_scenario.rsplit("_", 1)[1]))
    else:
        fault = SCENARIOS[fault_scenario]

    outcome = run_scenario(fault_servers, workload, fault_scenario, fault)  # type: ignore[arg-type]

    diffs = (
        differences(reference.state, outcome.state) if outcome.state is not None else ["no state"]
    )
    line = outcome.line(exact=not diffs, budget=STALL_BUDGET)
    FAULT_LINES.append(line)
    print(line)  # noqa: T201 - the scenario's figures
    problems = (
        outcome.problems
        + [f"too slow to heal: {p}" for p in outcome.over_budget(STALL_BUDGET)]
        + [f"differs from the uninterrupted run: {d}" for d in diffs]
    )
    assert not problems, (
        f"{fault_scenario} (seed {seed}): {'; '.join(e.note for e in outcome.events)}\n"
        + "\n".join(f"  - {p}" for p in problems)
        + f"\n  figures: {line}\n  logs: {outcome.run_dir}\n  first errors in the logs:\n"
        + "\n".join(f"    {e}" for e in outcome.errors[:12])
    )
