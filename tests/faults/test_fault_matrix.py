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

One line per scenario with the stall figures is printed in the terminal summary. A failure
names the market and the first differing trade / order; the run's logs stay in the
reported directory.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.faults.conftest import FAULT_LINES
from tests.faults.observe import differences
from tests.faults.scenarios import SCENARIOS, Outcome, Workload, random_faults, run_scenario

pytestmark = pytest.mark.faults


def _workload(scenario: str, seed: int) -> Workload:
    if scenario == "random_faults":  # --faults-long: a longer run, a fault every ~7 s
        return Workload(seed=seed, orders=7200, settle_deadline=90.0)
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
    fault = random_faults(5) if fault_scenario == "random_faults" else SCENARIOS[fault_scenario]

    outcome = run_scenario(fault_servers, workload, fault_scenario, fault)  # type: ignore[arg-type]

    diffs = (
        differences(reference.state, outcome.state) if outcome.state is not None else ["no state"]
    )
    line = outcome.line(exact=not diffs)
    FAULT_LINES.append(line)
    print(line)  # noqa: T201 - the scenario's figures
    problems = outcome.problems + [f"differs from the uninterrupted run: {d}" for d in diffs]
    assert not problems, (
        f"{fault_scenario} (seed {seed}): {'; '.join(e.note for e in outcome.events)}\n"
        + "\n".join(f"  - {p}" for p in problems)
        + f"\n  figures: {line}\n  logs: {outcome.run_dir}\n  first errors in the logs:\n"
        + "\n".join(f"    {e}" for e in outcome.errors[:12])
    )
