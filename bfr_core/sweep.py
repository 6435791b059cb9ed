"""Over-refinement: quality as a function of refiner NFE, and how samples drift with NFE.

The paper reports that LFR gets worse with more steps (over-refinement) while DFR improves;
these helpers measure both on one batch so the claim can be checked rather than assumed.
"""

from __future__ import annotations

import json

import torch

from .checkpoint import CheckpointError

from .evaluate import Scorer
from .pipeline import Pipeline, Settings

SWEEP_NFES = (1, 2, 3, 4, 6, 8, 10)
SWEEP_FILE = "overrefine.json"  # the curves measured when the bundle was built (``bfr sweep``)


def load_sweep(bundle) -> dict | None:
    """The bundle's stored NFE sweep, validated, or None when it has none."""
    path = bundle.path / SWEEP_FILE
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        sweep = stored["sweep"]
        ok = isinstance(sweep["base"], (int, float)) and all(
            all(isinstance(p, list) and len(p) == 2 for p in sweep[m]) for m in ("lfr", "dfr") if m in sweep
        )
        ok = ok and (stored["alpha"] is None or isinstance(stored["alpha"], (int, float)))
        int(stored["n"]), str(stored["command"])
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise CheckpointError(f"{path}: not a valid stored NFE sweep")
    return stored


@torch.no_grad()
def nfe_sweep(
    pipe: Pipeline,
    score: Scorer,
    n: int = 500,
    seed: int = 0,
    nfes=SWEEP_NFES,
    alpha: float | None = None,
    progress=None,
) -> dict:
    """{"metric": name, "base": q, "lfr": [(nfe, q)...], "dfr": [(nfe, q)...]} with Euler steps (NFE = steps);
    q is ``score``'s primary metric (FID for images, energy distance for points)."""

    def quality(x, labels) -> float:
        return score(x, labels)[score.primary]

    base = pipe.run(n, seed, Settings(mode="none"))
    out = {"metric": score.primary, "base": quality(base.base, base.labels)}
    stages = [m for m in ("lfr", "dfr") if pipe.bundle.has(m)]
    total, done = len(stages) * len(nfes), 0
    for mode in stages:
        out[mode] = []
        for nfe in nfes:
            s = Settings(mode=mode, alpha=alpha, **{f"{mode}_solver": "euler", f"{mode}_nfe": nfe})
            st = pipe.run(n, seed, s, z=base.z, base=base.base)
            out[mode].append((nfe, quality(st.final, st.labels)))
            done += 1
            if progress:
                progress(done / total, f"{mode} NFE {nfe}")
    return out


@torch.no_grad()
def lfr_drift(pipe: Pipeline, n: int, seed: int, nfes=SWEEP_NFES, alpha: float | None = None) -> torch.Tensor:
    """Images G(F_LFR^(k)(z)) for k Euler steps, stacked as (len(nfes) + 1, n, ...); row 0 is G(z)."""
    base = pipe.run(n, seed, Settings(mode="none"))
    rows = [base.base]
    for nfe in nfes:
        settings = Settings(mode="lfr", alpha=alpha, lfr_solver="euler", lfr_nfe=nfe)
        rows.append(pipe.run(n, seed, settings, z=base.z, base=base.base).final)
    return torch.stack(rows)
