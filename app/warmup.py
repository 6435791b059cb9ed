"""Start-up warm-up: compute the views a visitor opens first, in the background, while the server starts.

The first answer of each tab on the default bundle — Refine, the Latents map (refining its prior draws),
the Trajectories paths, Inspect's bias meter, the Over-refinement tab's drift strip and overshoot — and the
bias lab at its default setting are pure functions of the shipped files, so they are computed once in a
daemon thread and kept (``callbacks.refine_answer``, ``registry.latent_map``, ``callbacks.cached_paths``,
``callbacks.cached_bias_meter``, ``callbacks.cached_drift_rows``, ``callbacks.cached_overshoots``,
``lab.cached_bias_lab``); a request that arrives earlier simply computes the same result itself. A
failure is logged, never raised: the views report their own errors when asked.
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
    jobs = []
    if bundle is not None:  # in the order of the tabs
        jobs += [
            (f"refine {bundle}", lambda: callbacks.refine(bundle, **callbacks.REFINE_DEFAULTS)),
            (f"latents {bundle}", lambda: registry.latent_map(bundle)),
            (f"trajectories {bundle}", lambda: callbacks.trajectory(bundle, **callbacks.TRAJECTORY_DEFAULTS)),
            (f"inspect {bundle}", lambda: callbacks.inspect_example(bundle, **callbacks.INSPECT_DEFAULTS)),
        ]
    if bundle is not None:  # Over-refinement: its drift strip, and the overshoot's base and trained rows
        jobs.append((f"overrefine {bundle}", lambda: callbacks.warm_overrefine(bundle)))
        jobs.append((f"overshoot {bundle}", lambda: callbacks.warm_overshoot(bundle)))
    # the bias lab last: its training is the longest job, and unwarmed it streams curves within a second
    jobs.append(("bias lab", lambda: cached_bias_lab(*DEFAULT_LAB)))
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
