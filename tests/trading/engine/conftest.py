"""Engine test options; these tests need no database and no Django settings."""

import os

import pytest

# Filled by test_differential, printed in the terminal summary so the figure is always visible.
DIFFERENTIAL_SUMMARY: list[str] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine-diff-seeds",
        type=int,
        default=int(os.environ.get("ENGINE_DIFF_SEEDS", "20")),
        help="random streams in the engine differential test (env ENGINE_DIFF_SEEDS)",
    )


@pytest.fixture
def diff_seeds(request: pytest.FixtureRequest) -> int:
    return int(request.config.getoption("--engine-diff-seeds"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in DIFFERENTIAL_SUMMARY:
        terminalreporter.write_line(line)
