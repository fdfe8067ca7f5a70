"""A real HTTP receiver on loopback for the webhook tests, with misbehaving paths.

Paths: /ok (200), /flaky/<n> (500 for the first n requests to that path, then 200), /down
(always 500), /slow (sleeps `slow_seconds`, then 200), /redirect (302 to /ok), /huge (200
with a 4 MiB body), /huge-error (500 with a 4 MiB body). Every request is recorded.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HUGE_BYTES = 4 * 1024 * 1024


@dataclass
class Received:
    path: str
    headers: Message
    body: bytes


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    slow_seconds: float = 2.0
    huge_sent: list[int] = field(default_factory=list)  # bytes written before the client left

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def bodies(self, path: str) -> list[bytes]:
        return [r.body for r in self.requests if r.path == path]


def start_receiver() -> Receiver:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            path = self.path
            receiver.requests.append(Received(path, self.headers, body))
            receiver.counts[path] += 1
            if path == "/ok":
                self._answer(200, b"thanks")
            elif path.startswith("/flaky/"):
                failures = int(path.rsplit("/", 1)[1])
                self._answer(500 if receiver.counts[path] <= failures else 200, b"flaky")
            elif path == "/down":
                self._answer(500, b"down for maintenance")
            elif path == "/slow":
                time.sleep(receiver.slow_seconds)
                self._answer(200, b"late")
            elif path == "/redirect":
                self.send_response(302)
                self.send_header("Location", receiver.url("/ok"))
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path in ("/huge", "/huge-error"):
                self._huge(200 if path == "/huge" else 500)
            else:
                self._answer(404, b"no such path")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _huge(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(HUGE_BYTES))
            self.end_headers()
            sent = 0
            chunk = b"x" * 65536
            try:
                while sent < HUGE_BYTES:
                    self.wfile.write(chunk)
                    sent += len(chunk)
            except OSError:  # the client stopped reading and closed: expected
                pass
            receiver.huge_sent.append(sent)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server=server)
    threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True).start()
    return receiver


def stop_receiver(receiver: Receiver) -> None:
    receiver.server.shutdown()
    receiver.server.server_close()
