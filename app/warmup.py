"""Start-up warm-up: compute the views a visitor opens first, in the background, while the server starts.

Each tab's first answer on the default bundle (its ``warm(bundle)``: Refine, the Latents map, the
Trajectories paths, Inspect's bias meter, the Over-refinement tab's drift strip and overshoot, the bias
lab at its default setting) is a pure function of the shipped files, so it is computed once in a background
thread, in the order of the tabs, and kept by that tab's cache; a request that arrives earlier simply
computes the same result itself. A failure is logged, never raised: the views report their own errors
when asked. A shutdown ends it between two jobs (:mod:`app.background`).
"""

from __future__ import annotations

import logging
import threading
import time

from . import background, registry
from .tabs import TABS

log = logging.getLogger("bfr_explorer")


def warm(bundle: str | None = None) -> dict[str, float]:
    """Compute the default views now; returns the seconds each took (the default bundle first)."""
    names = registry.available_bundles()
    bundle = bundle or (names[0] if names else None)
    took = {}
    warmed = [tab for tab in TABS if hasattr(tab, "warm")]
    if bundle is None:  # no bundle: only what needs none (the bias lab)
        warmed = [tab for tab in warmed if tab.ID == "lab"]
    jobs = [(f"{tab.ID} {bundle}", lambda tab=tab: tab.warm(bundle)) for tab in warmed]
    for what, job in jobs:
        if background.STOPPING.is_set():
            break
        t0 = time.perf_counter()
        try:
            job()
        except Exception as e:  # noqa: BLE001 - a warm-up never stops the app
            log.warning("warm-up of %s failed: %s", what, e)
        took[what] = round(time.perf_counter() - t0, 2)
    return took


def start(bundle: str | None = None) -> threading.Thread:
    """Run :func:`warm` in a background thread (one :func:`app.background.stop` waits for) and return it."""
    return background.start(warm, "bfr-warm-up", bundle)
