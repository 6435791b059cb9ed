"""The Fréchet distance between Gaussians fitted to two feature sets: FID, whatever network made the
features (the bundle's classifiers, or the Inception network of ``inception.py``).

    FID = ‖μ_r − μ_f‖² + tr(Σ_r) + tr(Σ_f) − 2·tr((Σ_r Σ_f)^½)   (Heusel et al. 2017)
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (rows are samples)."""
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))


def gaussian_stats(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(μ, Σ) of feature rows in float64, Σ with the n − 1 normalisation."""
    f = features.double().numpy()
    return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(mu_r, cov_r, mu_f, cov_f) -> float:
    """FID = ‖μ_r − μ_f‖² + tr(Σ_r) + tr(Σ_f) − 2·tr((Σ_r Σ_f)^½) (Heusel et al. 2017)."""
    covmean = linalg.sqrtm(cov_r @ cov_f)
    if not np.isfinite(covmean).all():  # standard fix: regularise the product
        eps = 1e-6 * np.eye(len(cov_r))
        covmean = linalg.sqrtm((cov_r + eps) @ (cov_f + eps))
    covmean = covmean.real
    return float(((mu_r - mu_f) ** 2).sum() + np.trace(cov_r) + np.trace(cov_f) - 2 * np.trace(covmean))
