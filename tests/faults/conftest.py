"""The fault matrix's session: private servers, the migrated template, the reference runs.

Selected with ``-m faults``; ``--faults-long`` (tests/conftest.py) runs more seeds and a
long scenario of repeated random faults.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.faults.deployment import child_env, manage
from tests.faults.scenarios import SCENARIOS, Outcome, Servers, Workload, run_scenario
from tests.private_servers import PrivatePostgres, PrivateRedis

TEMPLATE = "fault_template"
SHORT_SEEDS = [1]
LONG_SEEDS = [1, 2, 3, 4, 5]
RANDOM_ROUNDS = 3  # --faults-long: runs of repeated random faults per seed
# One figure line per run, printed in the terminal summary.
FAULT_LINES: list[str] = []


def seeds(config: pytest.Config) -> list[int]:
    return LONG_SEEDS if config.getoption("--faults-long") else SHORT_SEEDS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fault_scenario" in metafunc.fixturenames:
        names = list(SCENARIOS)
        if metafunc.config.getoption("--faults-long"):
            names += [f"random_faults_{k}" for k in range(1, RANDOM_ROUNDS + 1)]
        metafunc.parametrize("fault_scenario", names)
    if "seed" in metafunc.fixturenames:
        metafunc.parametrize("seed", seeds(metafunc.config))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FAULT_LINES:
        terminalreporter.section("fault matrix: stalls per scenario (worst market first 4)")
        for line in FAULT_LINES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def fault_servers(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Servers]:
    """Private PostgreSQL + Redis and a template database: migrated, markets, funded users."""
    log_dir = tmp_path_factory.mktemp("faults")
    with PrivatePostgres() as pg, PrivateRedis() as rd:
        pg.execute(f'CREATE DATABASE "{TEMPLATE}"')
        env = child_env(database_url=pg.url(TEMPLATE), redis_url=rd.url(0))
        log = log_dir / "template.log"
        steps = [["migrate", "--noinput"]]
        for seed in seeds(request.config):
            users = str(Workload(seed).users)
            steps.append(["simulate", "--setup-only", "--markets", "2", "--users", users])
            steps[-1] += ["--seed", str(seed)]
        for step in steps:
            if manage(*step, env=env, log=log, timeout=300) != 0:
                pytest.fail(f"template set-up failed at {step}:\n{log.read_text()[-3000:]}")
        rd.flushall()
        yield Servers(pg=pg, rd=rd, template=TEMPLATE, log_dir=log_dir)


@pytest.fixture(scope="session")
def fault_reference(fault_servers: Servers) -> Callable[[Workload], Outcome]:
    """The uninterrupted run of a workload (run once per workload, then reused)."""
    done: dict[Workload, Outcome] = {}

    def get(workload: Workload) -> Outcome:
        if workload not in done:
            outcome = run_scenario(fault_servers, workload, "reference", None)
            FAULT_LINES.append(outcome.line())
            done[workload] = outcome
        return done[workload]

    return get
