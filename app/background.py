"""The app's own background work (the start-up warm-up, bias-lab trainings) and a clean stop for it.

Why a stop is needed: a daemon thread that is still inside a PyTorch operation when the interpreter shuts down
is ended while a C++ frame is on its stack, and the whole process aborts ("terminate called without an active
exception", exit status 134; PyTorch issue 38228). Stopping ``python app.py`` during its warm-up, or ending a
test run while a bias lab still trained, did exactly that. So shutting down is never left to chance:
:func:`stop` asks the work to end at its next check (:func:`check`, called between warm-up jobs and every 25
training steps), then waits for it and for the callbacks in flight, within a bound.
"""

from __future__ import annotations

import threading
import time
import weakref

from .policy import COMPUTING

STOPPING = threading.Event()
_threads: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


class Stopped(Exception):
    """Raised by :func:`check` once the app is shutting down."""


def check() -> None:
    """Raise :class:`Stopped` when the app is shutting down (long work calls this at safe points)."""
    if STOPPING.is_set():
        raise Stopped("the app is shutting down")


def start(target, name: str, *args) -> threading.Thread:
    """Run ``target(*args)`` in a daemon thread that :func:`stop` waits for; a Stopped ends it quietly."""

    def run():
        try:
            target(*args)
        except Stopped:
            pass

    thread = threading.Thread(target=run, name=name, daemon=True)
    _threads.add(thread)
    thread.start()
    return thread


def running() -> list[str]:
    """The names of the background threads still running."""
    return sorted(t.name for t in _threads if t.is_alive())


def stop(timeout: float = 60.0) -> list[str]:
    """Ask the background work to end, and wait (at most ``timeout`` seconds in all) for it and for every
    callback still computing. Returns what is still running when the time is up (empty: a clean stop)."""
    STOPPING.set()
    deadline = time.monotonic() + timeout
    for thread in list(_threads):
        thread.join(max(0.0, deadline - time.monotonic()))
    idle = COMPUTING.wait_idle(max(0.0, deadline - time.monotonic()))
    return running() + ([] if idle else [f"{COMPUTING.active} callback(s)"])
