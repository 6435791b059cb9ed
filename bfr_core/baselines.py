"""Noise-injection baselines that BFR is compared against (training-free).

SDEdit / Restart-style resampling, in this project's convention (t = 0 noise, t = 1 data):
push a generated sample back to level s = 1 − t* along the linear path,
    x_s = (1 − s)·ε + s·x,   ε ~ N(0, I),
then re-integrate the base ODE from s to 1. It costs NFE ∝ t*; t* = 0 returns x unchanged.
"""
from __future__ import annotations

import torch

from .refine import flow_map


def sdedit(base, x, labels, t_star: float, solver: str, nfe: int, generator: torch.Generator):
    """Returns (x_refined, nfe) for noise level t* ∈ (0, 1]."""
    if not 0 < t_star <= 1:
        raise ValueError(f"t_star must lie in (0, 1], got {t_star}")
    s = 1.0 - t_star
    eps = torch.randn(x.shape, generator=generator)
    return flow_map(base, (1 - s) * eps + s * x, labels, None, s, 1.0, solver, nfe)
