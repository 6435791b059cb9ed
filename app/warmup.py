"""Start-up warm-up: compute the views a visitor opens first, in the background, while the server starts.

The first Refine answer and the first Latents view of the default bundle (loading the bundle, refining the
map's prior draws) and the bias lab at its default setting are pure functions of the shipped files, so they
are computed once in a daemon thread and kept (``callbacks.refine_answer``, ``registry.latent_map``,
``lab.cached_bias_lab``); a
request that arrives earlier simply computes the same result itself. A failure is logged, never
raised: the views report their own errors when asked.
"""

from __future__ import annotations

import logging
import threading
import time

from bfr_core.lab import DEFAULT_LAB, cached_bias_lab

from . import callbacks, registry

log = logging.getLogger("bfr_explorer")


def warm(bundle: str | None = None) -> dict[str, float]:
    """Compute the default views now; returns the seconds each took (the default bundle first)."""
    names = registry.available_bundles()
    bundle = bundle or (names[0] if names else None)
    took = {}
    jobs = [("bias lab", lambda: cached_bias_lab(*DEFAULT_LAB))]
    if bundle is not None:
        jobs.insert(0, (f"latents {bundle}", lambda: registry.latent_map(bundle)))
        jobs.insert(0, (f"refine {bundle}", lambda: callbacks.refine(bundle, **callbacks.REFINE_DEFAULTS)))
    for what, job in jobs:
        t0 = time.perf_counter()
        try:
            job()
        except Exception as e:  # noqa: BLE001 - a warm-up never stops the app
            log.warning("warm-up of %s failed: %s", what, e)
        took[what] = round(time.perf_counter() - t0, 2)
    return took


def start(bundle: str | None = None) -> threading.Thread:
    """Run :func:`warm` in a daemon thread and return it."""
    thread = threading.Thread(target=warm, args=(bundle,), name="bfr-warm-up", daemon=True)
    thread.start()
    return thread
