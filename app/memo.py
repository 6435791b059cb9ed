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
    one key share a single computation. A failure is raised to every waiter and not remembered."""

    def wrap(fn):
        kept: OrderedDict[tuple, Future] = OrderedDict()
        lock = threading.Lock()

        @functools.wraps(fn)
        def call(*args):
            with lock:
                future = kept.get(args)
                owner = future is None
                if owner:
                    future = kept[args] = Future()
                kept.move_to_end(args)
                while len(kept) > maxsize:
                    kept.popitem(last=False)
            if owner:
                try:
                    future.set_result(fn(*args))
                except BaseException as e:
                    with lock:
                        if kept.get(args) is future:
                            del kept[args]
                    future.set_exception(e)
            return future.result()

        call.cache_clear = lambda: kept.clear()
        call.cached = lambda *args: args in kept and kept[args].done()
        return call

    return wrap
