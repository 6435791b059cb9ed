"""Cap glibc's malloc arenas, so a long-running server's memory stays flat.

glibc gives each thread that allocates under contention an arena of its own, up to 8 per core; memory freed
in one arena is not reused by another, so a server whose answers are computed on a pool of worker threads
(Gradio's) keeps growing: measured on this app, 2,000 requests each on a new session after the session store
was full, with Python's own heap flat (tracemalloc: 71.5 -> 73.7 MB): RSS +104 MB with the default arenas,
+33 MB with two (``bench/soak.py`` measures it over 30 minutes). ``M_ARENA_MAX`` is read when a thread first
needs a new arena, so this works when called before the worker threads start (``app.service`` calls it on
import). The same setting as the environment variable ``MALLOC_ARENA_MAX=2``, which is left to win when set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """``mallopt(M_ARENA_MAX, arenas)``; True when glibc took it, False elsewhere (musl, macOS, Windows) or
    when ``MALLOC_ARENA_MAX`` is set in the environment (the user's choice stands)."""
    if arenas < 1:
        raise ValueError(f"arenas must be >= 1, got {arenas}")
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(M_ARENA_MAX, arenas) == 1
