"""Training-free baselines that BFR is compared against.

SDEdit / Restart-style resampling, in this project's convention (t = 0 noise, t = 1 data):
push a generated sample back to level s = 1 − t* along the linear path,
    x_s = (1 − s)·ε + s·x,   ε ~ N(0, I),
then re-integrate the base ODE from s to 1. It costs NFE ∝ t*; t* = 0 returns x unchanged.

Prior rescaling (ours): sample G(s·z), z ~ N(0, I), with s = √(mean z_b²) the RMS of the cached
inverted latents z_b = G⁻¹(x_train). It matches only the latents' second moment, which the
inversion measures (no FID is consulted), and costs no extra NFE: the simplest correction of a
latent bias that is mostly a contraction, and a yardstick for what LFR learns beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bfr_core.generative.ode import flow_map


def sdedit(base, x, labels, t_star: float, solver: str, nfe: int, generator: torch.Generator):
    """Returns (x_refined, nfe) for noise level t* ∈ (0, 1]."""
    if not 0 < t_star <= 1:
        raise ValueError(f"t_star must lie in (0, 1], got {t_star}")
    s = 1.0 - t_star
    eps = torch.randn(x.shape, generator=generator)
    res = flow_map(base, (1 - s) * eps + s * x, labels, None, s, 1.0, solver, nfe)
    return res.x, res.nfe


@dataclass(frozen=True)
class SDEdit:
    """One SDEdit setting — noise level t*, solver, NFE — named and applied one way in every benchmark."""

    t_star: float
    solver: str
    nfe: int

    @property
    def label(self) -> str:
        """E.g. "SDEdit t*=0.5 rk4x1": steps of the solver, as the refiners' rows count them."""
        steps = self.nfe // 4 if self.solver == "rk4" else self.nfe
        return f"SDEdit t*={self.t_star:g} {self.solver}x{steps}"

    def apply(self, base, x, labels, seed: int) -> tuple[torch.Tensor, int]:
        """:func:`sdedit` on all of ``x`` with noise from its own generator, seeded 1000 + ``seed``."""
        g = torch.Generator().manual_seed(1000 + seed)
        return sdedit(base, x, labels, self.t_star, self.solver, self.nfe, g)


def prior_scale(z_b: torch.Tensor) -> float:
    """s = √(mean of z_b²) over every latent and dimension; 1 for N(0, I) draws."""
    return float(torch.sqrt(torch.mean(z_b.double() ** 2)))
