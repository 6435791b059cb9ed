"""A 2-D map of latent space: UMAP fitted once on prior and biased latents, then reused.

Fitting is the slow part (numba compiles UMAP on first use); new latents — e.g. LFR-refined
ones at a new α or NFE — are placed on the existing map with ``transform``, which is fast.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from .metrics import energy_distance


def norm_per_dim(z: torch.Tensor) -> torch.Tensor:
    """‖z‖/√d per row: ≈ 1 for N(0, I) draws in high dimension, below 1 for contracted latents."""
    z = z.flatten(1).double()
    return z.norm(dim=1) / z.shape[1] ** 0.5


def latent_distances(
    prior: torch.Tensor, biased: torch.Tensor, refined: torch.Tensor, max_points: int = 500
) -> dict:
    """Energy distances between the three latent clouds (first ``max_points`` rows of each): where the
    refined latents sit between the prior they start from and the biased latents they should reach."""
    p, b, r = (x[:max_points] for x in (prior, biased, refined))
    return {
        "refined_to_biased": energy_distance(r, b),
        "refined_to_prior": energy_distance(r, p),
        "prior_to_biased": energy_distance(p, b),
    }


class LatentMap:
    def __init__(
        self,
        prior: torch.Tensor,
        biased: torch.Tensor,
        biased_labels: torch.Tensor | None,
        n_neighbors: int = 15,
        seed: int = 0,
    ):
        self.prior = prior.flatten(1).float().numpy()
        self.biased = biased.flatten(1).float().numpy()
        self.biased_labels = None if biased_labels is None else biased_labels.numpy()
        self.n_neighbors, self.seed = n_neighbors, seed
        self.reducer = None
        self.prior_xy = self.biased_xy = None
        self.lock = threading.Lock()

    def fit(self) -> "LatentMap":
        """Fit UMAP on prior ∪ biased latents (idempotent and thread-safe)."""
        with self.lock:
            if self.reducer is None:
                import umap  # imported lazily: it pulls in numba

                reducer = umap.UMAP(
                    n_components=2,
                    n_neighbors=self.n_neighbors,
                    min_dist=0.1,
                    random_state=self.seed,
                    n_jobs=1,
                )
                xy = reducer.fit_transform(np.concatenate([self.prior, self.biased]))
                self.prior_xy, self.biased_xy = xy[: len(self.prior)], xy[len(self.prior) :]
                self.reducer = reducer
        return self

    def transform(self, z: torch.Tensor) -> np.ndarray:
        """Place new latents on the fitted map."""
        self.fit()
        with self.lock:  # umap's transform is not documented as thread-safe
            return self.reducer.transform(z.flatten(1).float().numpy())
