"""Private PostgreSQL and Redis servers for tests that stop, restart or flush them.

Fault tests must never touch the machine's shared servers (5432 / 6379: other engineers and
services use them). These classes start throw-away servers from the system's programs in a
temporary directory, on a free port of 127.0.0.1 with trust authentication:

    with PrivatePostgres() as pg, PrivateRedis() as rd:
        url = pg.url("exchange")          # postgres://postgres@127.0.0.1:<port>/exchange
        pg.restart(mode="immediate")      # a crash restart: WAL recovery on start
        rd.flushall()                     # only ever this private server

initdb, pg_ctl and postgres refuse to run as root; as root they run as the ``postgres``
user through ``runuser`` (as the ``run`` script's as_pg_owner does). Cleanup always stops
the servers: on ``cleanup``/``__exit__`` and at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

# The machine's shared servers: never started, stopped or flushed from here.
SHARED_PORTS = frozenset({5432, 6379})
START_TIMEOUT = 60.0


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on right now (and not a shared one)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in SHARED_PORTS:
            return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def pg_bindir() -> Path:
    """Where initdb, pg_ctl and postgres live (pg_config, else the newest Debian cluster)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["pg_config", "--bindir"],  # noqa: S607 - the system's pg_config
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        path = Path(out.stdout.strip())
        if (path / "initdb").exists():
            return path
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    for candidate in reversed(candidates):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL programs not found (apt-get install postgresql)")


def _is_root() -> bool:
    return os.geteuid() == 0


def _as_pg_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if _is_root() else argv


def _run(argv: list[str], *, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - argv built from the system's own programs
        argv, capture_output=True, text=True, timeout=timeout, check=False
    )


class _Server:
    """Common life cycle: a temp dir, a port, start/stop, cleanup that always runs."""

    kind = "server"

    def __init__(self, *, port: int | None = None) -> None:
        self.port = port or free_port()
        if self.port in SHARED_PORTS:
            raise ValueError(f"port {self.port} belongs to the machine's shared {self.kind}")
        self.host = "127.0.0.1"
        self.dir = Path(tempfile.mkdtemp(prefix=f"private-{self.kind}-"))
        self.running = False
        atexit.register(self._atexit)

    # subclasses: _start(), _stop(mode), _ready()

    def start(self) -> _Server:
        if self.running:
            return self
        self._start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready():
            if time.monotonic() > deadline:
                self._stop("immediate")
                raise RuntimeError(
                    f"private {self.kind} on {self.port} did not start:\n{self.log()}"
                )
            time.sleep(0.05)
        self.running = True
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clean shutdown) or ``immediate`` (like a crash)."""
        if mode not in ("fast", "immediate"):
            raise ValueError(f"mode must be 'fast' or 'immediate', not {mode!r}")
        if not self.running:
            return
        self._stop(mode)
        self.running = False

    def restart(self, mode: str = "fast") -> None:
        """Stop (``mode``) and start again on the same port with the same data."""
        self.stop(mode)
        self.start()

    def cleanup(self) -> None:
        """Stop the server if running and remove its directory."""
        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            atexit.unregister(self._atexit)

    def log(self) -> str:
        path = self.dir / "server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def _atexit(self) -> None:
        with contextlib.suppress(Exception):
            self.cleanup()

    def __enter__(self) -> Any:  # Any: the subclass itself
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self, mode: str) -> None:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError


class PrivatePostgres(_Server):
    """A throw-away PostgreSQL cluster (initdb on construction, user ``postgres``, trust)."""

    kind = "postgres"

    def __init__(self, *, port: int | None = None, settings: dict[str, str] | None = None) -> None:
        super().__init__(port=port)
        self.bindir = pg_bindir()
        self.data = self.dir / "data"
        # fsync off: a killed *server* loses nothing (the OS still has the pages); only a
        # machine crash would, and these clusters do not outlive the test run. Commits stay
        # synchronous: with synchronous_commit off an immediate stop loses committed rows.
        self.settings = {
            "fsync": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "64MB",
            **(settings or {}),
        }
        if _is_root():
            shutil.chown(self.dir, user="postgres")
        result = _run(
            _as_pg_owner(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            )
        )
        if result.returncode != 0:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise RuntimeError(f"initdb failed: {result.stderr or result.stdout}")

    def _options(self) -> str:
        extra = " ".join(f"-c {key}={value}" for key, value in self.settings.items())
        return f"-p {self.port} -h 127.0.0.1 -k {self.dir} {extra}"

    def _start(self) -> None:
        result = _run(
            _as_pg_owner(
                [
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.dir / "server.log"),
                    "-w",
                    "-t",
                    str(int(START_TIMEOUT)),
                    "-o",
                    self._options(),
                    "start",
                ]
            ),
            timeout=START_TIMEOUT + 10,
        )
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {result.stderr}\n{self.log()}")

    def _stop(self, mode: str) -> None:
        result = _run(
            _as_pg_owner(
                [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]
            ),
            timeout=START_TIMEOUT + 10,
        )
        if result.returncode != 0 and "not running" not in (result.stderr + result.stdout):
            # Last resort so that cleanup never leaves a server behind.
            self._kill_postmaster()

    def _kill_postmaster(self) -> None:
        pid_file = self.data / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)

    def _ready(self) -> bool:
        if not port_open(self.port):
            return False
        result = _run(
            [str(self.bindir / "pg_isready"), "-h", self.host, "-p", str(self.port), "-q"],
            timeout=10,
        )
        return result.returncode == 0

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def url(self, dbname: str = "postgres") -> str:
        return f"postgres://postgres@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres") -> Any:  # Any: a psycopg2 connection
        """An autocommit psycopg2 connection (caller closes it)."""
        import psycopg2

        conn = psycopg2.connect(
            host=self.host, port=self.port, user="postgres", dbname=dbname, connect_timeout=10
        )
        conn.autocommit = True
        return conn

    def execute(self, sql: str, params: Any = None, *, dbname: str = "postgres") -> list[Any]:
        """Run one statement in autocommit; return its rows (empty for commands)."""
        conn = self.connect(dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()


class PrivateRedis(_Server):
    """A throw-away redis-server (no persistence) as a child process."""

    kind = "redis"

    def __init__(self, *, port: int | None = None) -> None:
        super().__init__(port=port)
        program = shutil.which("redis-server")
        if program is None:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise RuntimeError("redis-server not found (apt-get install redis-server)")
        self.program = program
        self.proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> None:
        log = (self.dir / "server.log").open("ab")
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - the system's redis-server
                [
                    self.program,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.dir),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--protected-mode",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of the test run reaches us, not it
            )
        finally:
            log.close()

    def _stop(self, mode: str) -> None:
        if self.proc is None:
            return
        if mode == "immediate":
            self.proc.kill()
        else:
            self.proc.terminate()  # SIGTERM: redis shuts down cleanly (nothing to save)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)
        self.proc = None

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited ({self.proc.returncode}):\n{self.log()}")
        if not port_open(self.port):
            return False
        try:
            return bool(self.client().ping())
        except Exception:  # still loading or not accepting yet
            return False

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    def client(self, db: int = 0) -> Any:  # Any: redis.Redis
        import redis

        return redis.Redis(host=self.host, port=self.port, db=db, socket_timeout=10)

    def flushall(self) -> None:
        """FLUSHALL of this private server only (the shared one is refused by construction)."""
        assert self.port not in SHARED_PORTS
        client = self.client()
        try:
            client.flushall()
        finally:
            client.close()
