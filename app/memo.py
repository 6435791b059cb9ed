"""Memoisation for a multi-user server: one computation per key, however many ask at once.

``functools.lru_cache`` lets two concurrent callers of the same key both compute it; for a view that
takes seconds of CPU (the start-up warm-up and the first visitor asking for the same Latents map) that
doubles the wait on a 2-core machine. ``single_flight`` makes the later callers wait for the first.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from concurrent.futures import Future


def single_flight(maxsize: int):
    """Decorator: remember the last ``maxsize`` results by positional arguments; concurrent callers of
    one key share a single computation. A failure is raised to every waiter and not remembered.
    ``fn.set_maxsize(0)`` keeps nothing: only callers that arrive while a key is computed share it."""

    def wrap(fn):
        kept: OrderedDict[tuple, Future] = OrderedDict()
        lock = threading.Lock()
        limit = [maxsize]  # ``call.set_maxsize(0)``: keep nothing, share only computations in flight

        @functools.wraps(fn)
        def call(*args):
            with lock:
                future = kept.get(args)
                owner = future is None
                if owner:
                    future = kept[args] = Future()
                kept.move_to_end(args)
                while limit[0] and len(kept) > limit[0]:
                    kept.popitem(last=False)
            if owner:
                try:
                    future.set_result(fn(*args))
                except BaseException as e:
                    forget(args, future)
                    future.set_exception(e)
                if not limit[0]:  # nothing is kept: the entry lived only while it was computed
                    forget(args, future)
            return future.result()

        def forget(args, future):
            with lock:
                if kept.get(args) is future:
                    del kept[args]

        def set_maxsize(k: int) -> None:
            with lock:
                limit[0] = k
                while len(kept) > k:
                    kept.popitem(last=False)

        call.cache_clear = lambda: kept.clear()
        call.cached = lambda *args: args in kept and kept[args].done()
        call.set_maxsize = set_maxsize
        return call

    return wrap
