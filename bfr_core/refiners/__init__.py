"""The registry of refiners: adding one is a file in this package plus one line here.

Order matters: it is the order of the CLI's commands, of ``evaluate``'s rows and of the app's
choices. Latent refiners run before the base generator, data refiners after it.
"""

from __future__ import annotations

from bfr_core.refiners.base import SPACES, Refiner
from bfr_core.refiners.dfr import DFR
from bfr_core.refiners.lfr import LFR
from bfr_core.refiners.lfr_reflow import LFR_REFLOW
from bfr_core.refiners.noise_refiner import NOISE_REFINER

REFINERS: dict[str, Refiner] = {r.name: r for r in (LFR, LFR_REFLOW, DFR, NOISE_REFINER)}


def variants(space: str) -> dict[str, Refiner]:
    """The refiners of one space by variant name: variants("latent") = {"ode": LFR, "reflow": …}."""
    if space not in SPACES:
        raise ValueError(f"space must be one of {', '.join(SPACES)}, got {space!r}")
    return {r.variant: r for r in REFINERS.values() if r.space == space}


def refiner_for(space: str, variant: str) -> Refiner:
    """The refiner a setting names: ("latent", "reflow") → the reflow LFR; a ValueError names a bad one."""
    options = variants(space)
    if variant not in options:
        field = "lfr_variant" if space == "latent" else "dfr_variant"
        raise ValueError(f"{field} must be one of {', '.join(map(repr, options))}, got {variant!r}")
    return options[variant]
