"""trading.background.Worker: the step loop, the two error policies, stop and restart."""

from __future__ import annotations

import queue
import threading

from trading.background import Worker


def _queue_worker(items: queue.Queue[object], done: list[object], **kwargs: object) -> Worker:
    def step() -> bool:
        item = items.get()
        if item is None:
            return False
        if isinstance(item, Exception):
            raise item
        done.append(item)
        return True

    return Worker("test-worker", step, **kwargs)  # type: ignore[arg-type]


def test_runs_steps_until_one_returns_false_and_work_before_the_sentinel_is_done() -> None:
    items: queue.Queue[object] = queue.Queue()
    done: list[object] = []
    exited = threading.Event()
    worker = _queue_worker(items, done, on_exit=exited.set)
    worker.start()
    for n in range(3):
        items.put(n)
    assert worker.stop(timeout=5, wake=lambda: items.put(None))
    assert done == [0, 1, 2]
    assert exited.is_set()
    assert worker.error is None
    assert not worker.is_alive()


def test_listed_errors_are_logged_and_the_thread_goes_on(caplog) -> None:  # type: ignore[no-untyped-def]
    items: queue.Queue[object] = queue.Queue()
    done: list[object] = []
    cleaned: list[int] = []
    worker = _queue_worker(
        items, done, keep_going_on=(ValueError,), after_error=lambda: cleaned.append(1)
    )
    worker.start()
    items.put(ValueError("transient"))
    items.put("after")
    assert worker.stop(timeout=5, wake=lambda: items.put(None))
    assert done == ["after"]
    assert cleaned == [1]
    assert "test-worker: step failed, continuing" in caplog.text


def test_other_errors_are_logged_and_end_the_thread(caplog) -> None:  # type: ignore[no-untyped-def]
    items: queue.Queue[object] = queue.Queue()
    done: list[object] = []
    exited = threading.Event()
    worker = _queue_worker(items, done, keep_going_on=(ValueError,), on_exit=exited.set)
    worker.start()
    items.put(KeyError("bug"))
    assert exited.wait(5)
    worker._thread.join(5)  # type: ignore[union-attr]
    assert not worker.is_alive()
    assert isinstance(worker.error, KeyError)
    assert "test-worker failed; its thread ends" in caplog.text
    # A dead worker is not woken (its wake could block) and stop still answers at once.
    assert worker.stop(timeout=5, wake=lambda: (_ for _ in ()).throw(AssertionError))


def test_start_after_the_thread_ended_runs_a_fresh_thread() -> None:
    items: queue.Queue[object] = queue.Queue()
    done: list[object] = []
    started: list[int] = []
    worker = _queue_worker(items, done, on_start=lambda: started.append(1))
    worker.start()
    assert worker.stop(timeout=5, wake=lambda: items.put(None))
    worker.start()
    assert worker.is_alive()
    assert not worker.stopping.is_set()
    items.put("again")
    assert worker.stop(timeout=5, wake=lambda: items.put(None))
    assert done == ["again"]
    assert started == [1, 1]
