"""The LFR's mixing coefficient α from the inverted latents alone, without training an LFR per α.

The LFR is trained towards mixed targets (METHOD: noise mixing)

    z₁ = √(1 − a)·z_b + √a·ε,   a ~ U(0, α),  ε ~ N(0, I),

where z_b = G⁻¹(x) are the bundle's inverted training images. Two estimates of α with no free parameter,
both from the first ``points`` inverted latents (N × d) against the prior N(0, I):

- **variance deficit**: α̂ = 1 − v_b, with v_b the per-dimension variance of z_b averaged over dimensions
  (clipped to [0, 1]): the share of the prior's variance the inverted latents lack. A bundle whose latents
  already fill the prior (v_b ≈ 1) gets α̂ ≈ 0; a strongly contracted one mixes more noise back in.
- **energy halfway**: the α whose targets T_α lie as far from the prior as from z_b in energy distance,
  ED(T_α, N(0, I)) = ED(T_α, z_b), found by bisection on α ∈ [0, 1] with the draws a = α·u, ε held fixed
  (T_0 = z_b, and T_α moves towards the prior as α grows). Since a ~ U(0, α) mixes in only α/2 on average,
  this rule lands near α = 1 for any strong bias (0.96–0.98 on the shipped bundles): kept as the rejected
  alternative the check measures (bench/results/suggest_alpha_*.md), not the one the app marks.

``alpha_curve`` measures what an estimate is worth: the α-conditioned LFR at the paper's end (one RK4 step
to t = 1) for each α, FID and FID2 against held-out *training* images, on shared prior draws per seed.
``bfr suggest-alpha`` stores the estimates (``alpha_suggestion.json``) for the app; ``bench/suggest_alpha``
validates them against the curve.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from bfr_core.eval.metrics import energy_distance, latent_bias
from bfr_core.infra.checkpoint import load_stored_measurement
from bfr_core.pipeline import Pipeline, Settings
from bfr_core.views.sweep import decode_stack

SUGGESTION_FILE = "alpha_suggestion.json"  # BUNDLE/alpha_suggestion.json, written by `bfr suggest-alpha`
ESTIMATORS = ("variance_deficit", "energy_halfway")
SUGGESTED = "variance_deficit"  # the estimate the app marks (bench/results/suggest_alpha_*.md: the evidence)


def mixed_targets(z_b: torch.Tensor, alpha: float, u: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z₁ = √(1 − a)·z_b + √a·ε with a = α·u (u ~ U(0, 1) per row, held fixed across α)."""
    a = (alpha * u).view(-1, *([1] * (z_b.dim() - 1)))
    return (1 - a).sqrt() * z_b + a.sqrt() * eps


def variance_deficit(z_b: torch.Tensor) -> float:
    """1 − (per-dimension variance of z_b, averaged over dimensions), clipped to [0, 1]."""
    return min(1.0, max(0.0, 1.0 - float(z_b.flatten(1).double().var(0).mean())))


def energy_halfway(z_b: torch.Tensor, seed: int = 0, iterations: int = 12) -> float:
    """The α ∈ [0, 1] with ED(T_α, prior) = ED(T_α, z_b), by bisection (T_0 = z_b is nearer z_b; 1 when even
    the targets of α = 1 stay nearer z_b than the prior)."""
    z = z_b.flatten(1).double()
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(len(z), generator=g, dtype=torch.float64)
    eps = torch.randn(z.shape, generator=g, dtype=torch.float64)
    prior = torch.randn(z.shape, generator=g, dtype=torch.float64)

    def nearer_latents(alpha: float) -> bool:
        t = mixed_targets(z, alpha, u, eps)
        return energy_distance(t, z) < energy_distance(t, prior)

    if nearer_latents(1.0):
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(iterations):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if nearer_latents(mid) else (lo, mid)
    return (lo + hi) / 2


def suggest_alpha(z_b: torch.Tensor, seed: int = 0, points: int = 1000) -> dict:
    """Both estimates and the latent statistics behind them, from the first ``points`` latents."""
    if len(z_b) < 2:
        raise ValueError(f"need at least 2 inverted latents to estimate α, got {len(z_b)}")
    z = z_b[:points]
    estimates = {"variance_deficit": variance_deficit(z), "energy_halfway": energy_halfway(z, seed)}
    return {
        "estimates": {k: round(v, 4) for k, v in estimates.items()},
        "suggested": SUGGESTED,
        "alpha": round(estimates[SUGGESTED], 4),
        "latent_stats": {k: round(v, 5) for k, v in latent_bias(z, seed).items()},
        "points": len(z),
        "seed": seed,
    }


@torch.no_grad()
def alpha_curve(pipe: Pipeline, score, alphas, n: int, seeds, progress=None) -> dict:
    """Scores of the α-conditioned LFR at its default end for each α (and of the base), per seed, on the
    same prior draws; ``score(x) -> {metric: value}`` (use held-out training images to choose)."""
    lo_hi = pipe.bundle.alpha_range()
    if lo_hi is None:
        raise ValueError(f"bundle {pipe.bundle.path.name!r} has an LFR trained at one fixed α: no α axis")
    outside = [a for a in alphas if not lo_hi[0] - 1e-9 <= a <= lo_hi[1] + 1e-9]
    if outside:
        raise ValueError(f"α {outside} outside the LFR's trained range {lo_hi[0]:g}..{lo_hi[1]:g}")
    rows: dict[str, list[dict]] = {"base": []} | {f"{a:g}": [] for a in alphas}
    s = pipe.resolve(Settings(mode="lfr"))
    for k, seed in enumerate(seeds):
        base = pipe.run(n, seed, Settings(mode="none"))
        g = torch.Generator()
        latents = [
            pipe.refine("latent", base.z, base.labels, replace(s, alpha=a), g.manual_seed(seed + 1)).x
            for a in alphas
        ]
        rows["base"].append(score(base.base))
        for a, x in zip(alphas, decode_stack(pipe, latents, base.labels, s)):
            rows[f"{a:g}"].append(score(x))
        if progress is not None:
            progress((k + 1) / len(seeds), f"seed {seed}")
    return {"alphas": [float(a) for a in alphas], "seeds": list(seeds), "n": n, "scores": rows}


def seed_mean(curve: dict, row: str, metric: str) -> float:
    """One row's (an α as ``f"{α:g}"``, or "base") mean ``metric`` over the curve's seeds."""
    return sum(r[metric] for r in curve["scores"][row]) / len(curve["seeds"])


def estimate_loss(curve: dict, alpha: float, metric: str) -> dict:
    """What using ``alpha`` (one of the curve's α) costs against the curve's best α under ``metric``: the
    mean scores over seeds and the relative loss (score(α) − best) / best."""
    mean = {a: seed_mean(curve, f"{a:g}", metric) for a in curve["alphas"]}
    best = min(mean, key=mean.get)
    if f"{alpha:g}" not in curve["scores"]:
        raise ValueError(f"α {alpha:g} was not measured; measured: {', '.join(f'{a:g}' for a in mean)}")
    return {
        "best_alpha": best,
        "best": round(mean[best], 3),
        "at_estimate": round(mean[alpha], 3),
        "loss": round((mean[alpha] - mean[best]) / mean[best], 4) if mean[best] > 0 else math.nan,
    }


def load_alpha_suggestion(bundle) -> dict | None:
    """The stored estimate (``bfr suggest-alpha``) of the bundle's latents — its own file, else that of the
    sibling whose latents it shares — or None; a broken file is refused by name (CheckpointError)."""

    def valid(stored):
        return set(ESTIMATORS) <= set(stored["estimates"]) and 0 <= float(stored["alpha"]) <= 1

    latents = bundle.file("latents")  # a bundle sharing its latents reads the sibling's estimate
    folder = bundle.path if latents is None or (bundle.path / SUGGESTION_FILE).is_file() else latents.parent
    return load_stored_measurement(folder / SUGGESTION_FILE, valid, "α suggestion")
