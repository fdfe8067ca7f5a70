"""One small helper for the trading app's background threads: start, stop, errors, a name.

The accept batcher, the channels publisher and the snapshot writer each run one daemon
thread that repeats a *step* until told to stop. ``Worker`` owns that thread::

    worker = Worker(
        "snapshots-BTC-USDT",
        step,                               # () -> bool | None; False ends the thread
        keep_going_on=(DatabaseError,),     # logged, then ``after_error`` and the next step
        after_error=lambda: connection.close(),
        on_start=use_loop_session_limits,   # on the thread, before the first step
        on_exit=lambda: connection.close(), # on the thread, always, last
    )
    worker.start()                          # again after it ended: a fresh thread
    worker.stop(timeout=30, wake=put_sentinel)  # True once the thread is gone

(Django's ``connection`` is a per-thread proxy: pass ``lambda: connection.close()``, not
``connection.close``, which is bound to the connection of the thread that built the worker.)

The step decides when the thread ends (it returns False): ``stop`` only sets ``stopping``,
so work queued before a sentinel is still done. Error policy: an exception listed in
``keep_going_on`` is logged with the worker's name and the thread goes on with the next
step (log and continue); any other exception is logged and ends the thread (log and die):
``is_alive()`` turns False and ``error`` holds it, so an owner that hands the worker work
checks ``is_alive()`` first instead of waiting on a thread that is gone. ``BaseException``
(SystemExit, KeyboardInterrupt) ends the thread too, unlogged. ``stop`` sets ``stopping``
(for the step to poll), calls ``wake`` to unblock a step waiting for work (a sentinel in
its queue, a notify), then joins with the timeout; a thread that already died is not
woken and ``stop`` just returns True.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

Step = Callable[[], bool | None]


class Worker:
    """A named daemon thread that runs ``step`` until it returns False or is stopped."""

    def __init__(
        self,
        name: str,
        step: Step,
        *,
        keep_going_on: tuple[type[Exception], ...] = (),
        after_error: Callable[[], None] | None = None,
        on_start: Callable[[], None] | None = None,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self._step = step
        self._keep_going_on = keep_going_on
        self._after_error = after_error
        self._on_start = on_start
        self._on_exit = on_exit
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (a fresh one if an earlier one ended); no-op while it runs."""
        if self.is_alive():
            return
        self.stopping.clear()
        self.error = None
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, *, timeout: float | None = None, wake: Callable[[], None] | None = None) -> bool:
        """Ask the thread to end, wake it, wait up to ``timeout``; True once it is gone."""
        self.stopping.set()
        thread = self._thread
        if thread is None or not thread.is_alive():
            return True
        if wake is not None:
            wake()
        if thread is not threading.current_thread():
            thread.join(timeout)
        return not thread.is_alive()

    def _run(self) -> None:
        try:
            if self._on_start is not None:
                self._on_start()
            while True:
                try:
                    if self._step() is False:
                        return
                except self._keep_going_on:
                    logger.exception("%s: step failed, continuing", self.name)
                    if self._after_error is not None:
                        self._after_error()
        except Exception as exc:
            self.error = exc
            logger.exception("%s failed; its thread ends", self.name)
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            if self._on_exit is not None:
                try:
                    self._on_exit()
                except Exception:
                    logger.exception("%s: cleanup failed", self.name)


__all__ = ["Worker"]
