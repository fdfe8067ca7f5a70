"""`./run up` supervises what it starts: a killed worker comes back, SIGTERM stops everything.

A real `./run up` in its own session, on a free port, its own database and Redis database
(both emptied before and after): the home page answers, the loops worker is killed with
SIGKILL and restarted by its supervisor (new pid, the log line), killed again and restarted
after twice the delay, then SIGTERM to the script stops every process it started.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import redis
from django.conf import settings
from psycopg2 import sql

from tests.database_url import database_url

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DATABASE = "exchange_run_supervision"
REDIS_DB = 10  # the suite uses another one; this one is emptied before and after
ANSI = re.compile(r"\x1b\[[0-9;]*m")
STARTUP_SECONDS = 45
STOP_SECONDS = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _admin_connection() -> psycopg2.extensions.connection:
    cfg = settings.DATABASES["default"]
    conn = psycopg2.connect(
        dbname="postgres",
        user=cfg["USER"] or "postgres",
        password=cfg["PASSWORD"] or None,
        host=cfg["HOST"] or None,
        port=cfg["PORT"] or None,
    )
    conn.autocommit = True
    return conn


def drop_database() -> None:
    conn = _admin_connection()
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE))
            )
    finally:
        conn.close()


def redis_client() -> redis.Redis:
    kwargs = redis.Redis.from_url(settings.REDIS_URL).connection_pool.connection_kwargs
    assert kwargs.get("db", 0) != REDIS_DB, "the suite's own Redis database is db 10"
    return redis.Redis(host=kwargs["host"], port=kwargs["port"], db=REDIS_DB)


def run_env(port: int, tmp_path: Path) -> dict[str, str]:
    cfg = settings.DATABASES["default"]
    kwargs = redis_client().connection_pool.connection_kwargs
    return {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": database_url(cfg, name=DATABASE),
        "REDIS_URL": f"redis://{kwargs['host']}:{kwargs['port']}/{REDIS_DB}",
        "CELERY_BEAT_SCHEDULE": str(tmp_path / "celerybeat-schedule"),
        "CELERY_CONCURRENCY": "2",
        "MATCHING_CONCURRENCY": "8",  # two loops for each of the three demo markets
        "PYTHONUNBUFFERED": "1",
    }


# ---------------------------------------------------------------- processes, from /proc


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of a live process, None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has exited: it only waits for its parent to reap it
        return None
    return int(fields[1]), fields[0], int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """{pid: start time} of every live process under `root`."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[0], []).append(int(entry.name))
            starts[int(entry.name)] = stat[2]
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found[child] = starts[child]
            todo.append(child)
    return found


def argv(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except (FileNotFoundError, ProcessLookupError):
        return []


def loops_worker(root: int) -> int | None:
    # Matched in the joined command line: a renamed process title keeps its arguments.
    pids = [pid for pid in descendants(root) if " loops@" in " ".join(argv(pid))]
    # The supervisor's subshell has the same argv until it execs; the worker is the leaf.
    leaves = [pid for pid in pids if not set(descendants(pid)) & set(pids)]
    return leaves[0] if len(leaves) == 1 else None


def alive(processes: dict[int, int]) -> list[int]:
    """The pids still running as the same process (same start time: no pid reuse)."""
    return [
        pid
        for pid, start in processes.items()
        if (stat := _stat(pid)) is not None and stat[2] == start
    ]


def wait_for(what: str, predicate, timeout: float, log: Path):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; log:\n{read(log)}")


def read(log: Path) -> str:
    return ANSI.sub("", log.read_text(errors="replace"))


def home_page_status(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return int(response.status)
    except OSError:
        return None


@pytest.fixture
def run_up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    drop_database()
    client = redis_client()
    client.flushdb()
    port = free_port()
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own script
            [str(ROOT / "run"), "up"],
            cwd=ROOT,
            env=run_env(port, tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the teardown can end it all
        )
    try:
        yield proc, port, log
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything left behind in its group
        client.flushdb()
        client.close()
        drop_database()


def test_killed_worker_is_restarted_and_sigterm_stops_everything(run_up) -> None:
    proc, port, log = run_up
    wait_for("the home page", lambda: home_page_status(port) == 200, STARTUP_SECONDS, log)
    first = wait_for("the loops worker", lambda: loops_worker(proc.pid), 10, log)

    os.kill(first, signal.SIGKILL)
    second = wait_for("a new loops worker", lambda: new_loops_worker(proc.pid, first), 10, log)
    os.kill(second, signal.SIGKILL)  # again, after running < 60 s: the delay doubles
    third = wait_for("a third loops worker", lambda: new_loops_worker(proc.pid, second), 10, log)

    assert read(log).count("[run] loops exited with status 137; restarting in 1 s") == 1
    assert read(log).count("[run] loops exited with status 137; restarting in 2 s") == 1
    assert home_page_status(port) == 200  # the rest of the exchange never stopped
    started = descendants(proc.pid)
    assert third in started
    assert len(started) >= 10  # five supervisors and the five processes they run
    assert any("demo_maker" in argv(pid) for pid in started)  # DEMO_MAKER_ENABLED by default

    proc.send_signal(signal.SIGTERM)
    began = time.monotonic()
    proc.wait(timeout=STOP_SECONDS)
    wait_for("every process to stop", lambda: not alive(started), STOP_SECONDS, log)

    print(f"stopped everything in {time.monotonic() - began:.1f} s")  # noqa: T201
    assert proc.returncode == 143
    assert "[run] stopping every process started here" in read(log)
    assert read(log).count("exited with status") == 2  # nothing else died or was restarted


def new_loops_worker(root: int, old: int) -> int | None:
    pid = loops_worker(root)
    return pid if pid not in (None, old) else None
