"""The ODE paths behind one pipeline run, frame by frame, for the app's trajectory scrubber.

Bias is drift along the solve: the base ODE x_t from z (t = 0) to G(z) (t = 1), the LFR's path
z_t from z to F_LFR(z) in latent space (each z_t decoded by the base, so it can be looked at), and
the DFR's path from G(z) to F_DFR(G(z)) in data space. Each is returned on its solver's fixed grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bfr_core.generative.ode import flow_map, grid_steps
from bfr_core.pipeline import Settings


@dataclass
class Path:
    times: torch.Tensor  # (K + 1,) grid times in [0, 1]
    frames: torch.Tensor  # (K + 1, n, *shape): the state at each time, as images


def grid(solver: str, nfe: int) -> torch.Tensor:
    return torch.linspace(0.0, 1.0, grid_steps(solver, nfe) + 1)


@torch.no_grad()
def pipeline_paths(pipe, n: int, seed: int, settings) -> dict[str, Path]:
    """{"base": …, "lfr": …, "dfr": …} paths of one run (the refiners the bundle has), same prior draws.

    Args:
        pipe: a Pipeline; settings: a Settings whose base / LFR / DFR solver and NFE are used.
    Returns:
        One Path per stage; LFR frames are G(z_t), the base's decoding of each latent on the path.
    """
    s = pipe.resolve(Settings(**{**settings.__dict__, "mode": "none"}))
    z, labels = pipe.prior(n, seed), pipe.labels_for(n, None)
    base = pipe.bundle.models["base"]
    made = flow_map(base, z, labels, None, 0.0, 1.0, s.base_solver, s.base_nfe, return_trajectory=True)
    paths = {"base": Path(grid(s.base_solver, s.base_nfe), made.trajectory)}
    if pipe.bundle.has("lfr"):
        s_l = pipe.resolve(Settings(**{**settings.__dict__, "mode": "lfr"}))
        z_path = pipe.refine(
            "latent", z, labels, s_l, torch.Generator().manual_seed(seed + 1), return_trajectory=True
        ).trajectory
        decoded = torch.stack([pipe.generate(z_t, labels, s_l).x for z_t in z_path])
        paths["lfr"] = Path(grid(s_l.lfr_solver, s_l.lfr_nfe), decoded)
    if pipe.bundle.has("dfr"):
        s_d = pipe.resolve(Settings(**{**settings.__dict__, "mode": "dfr"}))
        x_path = pipe.refine(
            "data", made.x, labels, s_d, torch.Generator().manual_seed(seed + 1), return_trajectory=True
        ).trajectory
        paths["dfr"] = Path(grid(s_d.dfr_solver, s_d.dfr_nfe), x_path)
    return paths


def frame_index(path: Path, t: float) -> int:
    """The index of the last grid time ≤ t (clamped to the path): which solver step t shows."""
    k = int(torch.searchsorted(path.times, torch.tensor(float(t)), right=True)) - 1
    return max(0, min(k, len(path.times) - 1))


def frame_at(path: Path, t: float) -> torch.Tensor:
    """The frame of ``path`` at the last grid time ≤ t (the solver has no state between its steps)."""
    return path.frames[frame_index(path, t)]
