"""Inversion: real data run backwards through the base ODE, from t = 1 to t = 0, gives the biased latents
z_b = G⁻¹(x) that LFR learns to reach. ``invert_resumably`` does it chunk by chunk with a resume file.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from bfr_core.generative.ode import flow_map
from bfr_core.infra import distributed
from bfr_core.infra.checkpoint import atomic_torch_save, load_train_state


def invert(base, x, y=None, solver="rk4", nfe=20, batch_size=1000, desc="invert") -> torch.Tensor:
    """Biased latents z_b = G⁻¹(x): the base ODE integrated from t = 1 back to t = 0.

    Args:
        base: the base velocity network v(t, x, y).
        x: data samples (N, ...) at t = 1; y: their classes (None for an unconditional base).
        solver, nfe: a fixed-step solver and its exact number of network evaluations.
        batch_size: samples per network call; desc: the progress bar's label.

    Returns:
        The latents at t = 0, shaped like ``x``. Inversion error: G(G⁻¹(x)) ≠ x by the solver's error,
        which ``invert`` in the CLI reports as the round-trip error per pixel.
    """
    return flow_map(base, x, y, None, 1.0, 0.0, solver, nfe, batch_size, desc).x


def invert_resumably(
    base, x, labels, solver: str, nfe: int, chunk: int, state: Path, resume: bool = False, quiet: bool = False
) -> tuple[torch.Tensor, float]:
    """Invert ``x`` chunk by chunk, saving the latents done so far to ``state`` after every chunk.

    Returns (z, wall seconds summed over every run that contributed). With ``resume`` a killed
    run continues after its last finished chunk; under torchrun each rank inverts its share of
    each chunk and all shares are gathered, so every rank holds the same partial result.
    """
    n = len(x)
    settings = {"n": n, "solver": solver, "nfe": nfe, "chunk": chunk}
    z, done, wall = torch.empty(n, *x.shape[1:]), 0, 0.0
    if resume and state.exists():
        saved = load_train_state(state)
        if {k: saved.get(k) for k in settings} != settings:
            raise ValueError(
                f"{state}: was started with { ({k: saved.get(k) for k in settings}) }, not {settings}; "
                "rerun without --resume to start over"
            )
        done, wall = int(saved["done"]), float(saved["wall_s"])
        z[:done] = saved["z"].float()
    bar = None if quiet or not distributed.is_main() else tqdm(total=n, initial=done, desc="invert")
    while done < n:
        t0 = time.perf_counter()
        rows = slice(done, min(done + chunk, n))
        part = x[rows]
        mine = distributed.rows_of(len(part))  # under torchrun each rank inverts its share of the chunk
        z_part = invert(
            base, part[mine], None if labels is None else labels[rows][mine], solver, nfe, desc=None
        )
        z[rows] = distributed.gather_rows(z_part, len(part))
        done, wall = rows.stop, wall + time.perf_counter() - t0
        if distributed.is_main():
            atomic_torch_save({**settings, "done": done, "wall_s": wall, "z": z[:done].half()}, state)
        if bar is not None:
            bar.update(rows.stop - rows.start)
    if bar is not None:
        bar.close()
    return z, wall
