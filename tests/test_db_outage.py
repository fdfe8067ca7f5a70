"""A database outage seen from a live ASGI server: 503 with Retry-After, then recovery.

A real uvicorn process (exchange.asgi:application, the real middleware stack) runs against a
private PostgreSQL cluster (tests/private_servers.py) that the test stops, fast and
immediate, and starts again. During the outage every page and API path answers 503 with
Retry-After, never a 500 trace; after the restart they answer as before, from the same
uvicorn process. The shared servers are never stopped.

The login page itself needs no database for an anonymous visitor (it is a form), so it
keeps answering 200 during the outage; what does need it, the page for a browser that
brings a session cookie and the submitted form, answers 503.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings

from tests.private_servers import PrivatePostgres, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 90.0

BINANCE_503 = {
    "code": -1001,
    "msg": "Internal error; unable to process your request. Please try again.",
}
NATIVE_503 = {
    "code": "service_unavailable",
    "message": "The service is temporarily unavailable; please try again shortly.",
    "field": None,
}
LOGIN_FORM = "login form submitted"
# (name, path, headers, status with the database up, JSON body of the 503 or None for HTML)
PROBES = [
    ("home page", "/", {}, 200, None),
    (
        "login page with a session cookie",
        "/accounts/login/",
        {"Cookie": f"sessionid={'s' * 32}"},
        200,
        None,
    ),
    (LOGIN_FORM, "/accounts/login/", {}, 200, None),
    ("native API", "/api/v1/outage-probe", {}, 200, NATIVE_503),
    ("Binance API", "/api/v3/outage-probe", {}, 200, BINANCE_503),
    (
        "Binance API with a key",
        "/api/v3/outage-probe",
        {"X-MBX-APIKEY": "A" * 64},
        401,
        BINANCE_503,
    ),
    ("session saved by middleware", "/outage/session-write", {}, 200, None),
]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


@dataclass
class Site:
    pg: PrivatePostgres
    proc: subprocess.Popen[bytes]
    port: int
    log_path: str

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return self.request("GET", path, headers)

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: str = ""
    ) -> Answer:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body or None, headers=headers or {})
            response = conn.getresponse()
            return Answer(
                status=response.status,
                headers={k.lower(): v for k, v in response.getheaders()},
                body=response.read(),
            )
        finally:
            conn.close()

    def log(self) -> str:
        return Path(self.log_path).read_text(errors="replace")[-6000:]


def _site_env(pg: PrivatePostgres) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": pg.url("exchange"),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "tests.outage_settings",
        "DB_CONN_MAX_AGE": "60",  # persistent connections: the broken one must be replaced
        "PYTHONUNBUFFERED": "1",
    }


def _wait_until_serving(site: Site) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if site.proc.poll() is not None:
            pytest.fail(f"uvicorn exited ({site.proc.returncode}):\n{site.log()}")
        try:
            if site.get("/api/v1/outage-probe").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"uvicorn did not serve within {START_TIMEOUT} s:\n{site.log()}")


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    """uvicorn on a free port, its database a migrated private PostgreSQL cluster."""
    with PrivatePostgres() as pg:
        pg.execute("CREATE DATABASE exchange")
        env = _site_env(pg)
        migrated = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert migrated.returncode == 0, migrated.stderr + migrated.stdout
        port = free_port()
        log = tempfile.NamedTemporaryFile(prefix="uvicorn-", suffix=".log", delete=False)  # noqa: SIM115
        proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                sys.executable,
                "-m",
                "uvicorn",
                "exchange.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        running = Site(pg=pg, proc=proc, port=port, log_path=log.name)
        try:
            _wait_until_serving(running)
            yield running
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            Path(log.name).unlink(missing_ok=True)


def _submit_login(site: Site) -> Answer:
    """GET the login form (no database needed), then POST wrong credentials to it."""
    form = site.get("/accounts/login/")
    assert form.status == 200, form.body[:2000]
    cookie = re.search(r"csrftoken=([^;]+)", form.headers["set-cookie"])
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', form.body)
    assert cookie is not None
    assert token is not None
    return site.request(
        "POST",
        "/accounts/login/",
        {
            "Cookie": f"csrftoken={cookie.group(1)}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        urlencode(
            {
                "csrfmiddlewaretoken": token.group(1).decode(),
                "login": "nobody@example.com",
                "password": "not the password",
            }
        ),
    )


def _answers(site: Site) -> dict[str, Answer]:
    return {
        name: _submit_login(site) if name == LOGIN_FORM else site.get(path, headers)
        for name, path, headers, _up, _down in PROBES
    }


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_outage_answers_503_with_retry_after_and_recovers_without_a_restart(
    site: Site, mode: str
) -> None:
    pid = site.proc.pid
    before = _answers(site)
    assert {name: a.status for name, a in before.items()} == {
        name: up for name, _path, _headers, up, _down in PROBES
    }, site.log()

    site.pg.stop(mode)
    try:
        during = _answers(site)
    finally:
        site.pg.start()

    for name, _path, _headers, _up, body in PROBES:
        answer = during[name]
        assert (name, answer.status) == (name, 503), answer.body[:2000]
        assert answer.headers["retry-after"] == "5", name
        assert b"Traceback" not in answer.body, name
        if body is None:
            assert answer.headers["content-type"].startswith("text/html"), name
            assert b"Temporarily unavailable" in answer.body, name
        else:
            assert answer.headers["content-type"] == "application/json", name
            assert answer.json() == body, name

    after = _answers(site)
    assert {name: a.status for name, a in after.items()} == {
        name: a.status for name, a in before.items()
    }, site.log()
    for name, _path, _headers, _up, body in PROBES:
        if body is not None:
            assert after[name].json() == before[name].json(), name
    assert site.proc.poll() is None
    assert site.proc.pid == pid
