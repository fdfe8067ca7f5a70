"""The real deployment shape as child processes: two loops workers, a short-task worker, beat.

Every process gets the private servers' DATABASE_URL / REDIS_URL (never the shared ones)
and its own session (process group), so a fault can SIGKILL or SIGSTOP exactly one worker
and teardown can always kill everything this module started, whatever state it is in.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Every child process started here, by pid: the atexit hook kills what a crashed test left.
_STARTED: dict[int, subprocess.Popen[bytes]] = {}
# Variables that could point a child at the shared servers or change its behaviour.
_SCRUBBED = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CACHE_KEY_PREFIX")


def _kill_leftovers() -> None:
    for proc in list(_STARTED.values()):
        _hard_kill(proc)


atexit.register(_kill_leftovers)


def _hard_kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGCONT)  # a stopped process cannot die cleanly
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    _STARTED.pop(proc.pid, None)


def child_env(*, database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of every process of a run (production settings, private servers)."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=redis_url,
        DJANGO_SETTINGS_MODULE="exchange.settings.base",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


def spawn(
    argv: list[str], *, env: dict[str, str], log: Path, cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    """Start a child in its own session, output appended to ``log``."""
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own programs, fixed argv
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    _STARTED[proc.pid] = proc
    return proc


def manage(*args: str, env: dict[str, str], log: Path, timeout: float) -> int:
    """Run ``manage.py args`` to completion (bounded); return its exit status."""
    proc = spawn([sys.executable, str(ROOT / "manage.py"), *args], env=env, log=log)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _hard_kill(proc)
        raise
    finally:
        _STARTED.pop(proc.pid, None)


@dataclass
class Deployment:
    """The processes of one run; ``names`` maps a role name to its argv."""

    env: dict[str, str]
    run_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)

    def argv(self, name: str) -> list[str]:
        celery = str(BIN / "celery")
        if name.startswith("loops"):
            return [celery, "-A", "exchange", "worker", "-Q", "matching", "--pool", "threads",
                    "--concurrency", "8", "-n", f"{name}@%h", "-l", "info"]  # fmt: skip
        if name == "short":
            return [celery, "-A", "exchange", "worker", "-Q", "celery", "--pool", "threads",
                    "--concurrency", "4", "-n", "short@%h", "-l", "info"]  # fmt: skip
        if name == "beat":
            return [celery, "-A", "exchange", "beat", "-l", "info",
                    "-s", str(self.run_dir / "beat-schedule"),
                    "--pidfile", str(self.run_dir / "beat.pid")]  # fmt: skip
        raise ValueError(name)

    def log_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.log"

    def start(self, name: str) -> None:
        self.procs[name] = spawn(
            self.argv(name), env=self.env, log=self.log_path(name), cwd=self.run_dir
        )

    def start_all(self) -> None:
        for name in ("loops1", "loops2", "short", "beat"):
            self.start(name)

    def name_of_pid(self, pid: int) -> str | None:
        for name, proc in self.procs.items():
            if proc.pid == pid and proc.poll() is None:
                return name
        return None

    def signal(self, name: str, signum: int) -> None:
        """Signal exactly that worker's process (never a group, never by name)."""
        os.kill(self.procs[name].pid, signum)

    def kill_and_restart(self, name: str, *, after: float = 1.0) -> None:
        """SIGKILL one worker, then start it again like a supervisor would."""
        proc = self.procs[name]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        _STARTED.pop(proc.pid, None)
        time.sleep(after)
        self.restarts[name] = self.restarts.get(name, 0) + 1
        self.start(name)

    def dead(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is not None]

    def stop_all(self, grace: float = 8.0) -> None:
        """SIGTERM everything (warm shutdown), SIGKILL what outlives ``grace``."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGCONT)
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self.procs.values():
            _hard_kill(proc)

    def errors(self, limit: int = 25) -> list[str]:
        """The first ERROR/CRITICAL/Traceback lines of every log (for failure messages)."""
        found: list[str] = []
        for path in sorted(self.run_dir.glob("*.log")):
            for line in path.read_text(errors="replace").splitlines():
                if any(word in line for word in ("ERROR", "CRITICAL", "Traceback", "Error:")):
                    found.append(f"{path.name}: {line.strip()[:300]}")
                    if len(found) >= limit:
                        return found
        return found
