"""A 2-D map of latent space: UMAP fitted *jointly* on prior draws, biased latents and their refinement.

UMAP's ``transform`` places out-of-sample points badly here: refined MNIST latents landed outside the
ring of biased ones although their norms lie between the two clouds, and nearest-neighbour placement
fails too (in 784 dimensions the nearest fitted latent of a fresh prior draw is a biased latent, by
norm alone). So the map is fitted on all three clouds together: the refined cloud is the LFR applied to
the map's own prior draws at one (α, solver, NFE). ``bfr latent-map`` fits the bundle's default setting
at build time and stores the coordinates (``latent_map.safetensors``); another setting is fitted live.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import torch

from .checkpoint import CheckpointError, load_tensors
from .metrics import energy_distance

MAP_FILE = "latent_map"  # BUNDLE/latent_map.safetensors, written by `bfr latent-map`
MAP_POINTS = 1000  # biased latents on the map, and as many prior draws
MAP_PRIOR_SEED = 12345


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
    """Prior draws, biased (inverted real) latents and optionally their LFR refinement, with joint 2-D
    UMAP coordinates.

    Args:
        prior, biased: (N, …) latents; flattened to (N, d). ``refined``: F_LFR(prior), or None.
        biased_labels: class labels of the biased latents, or None.
        coords: stored (N_prior + N_biased [+ N_refined], 2) coordinates, in that order; None: fit on demand.
    """

    def __init__(
        self,
        prior: torch.Tensor,
        biased: torch.Tensor,
        biased_labels: torch.Tensor | None,
        refined: torch.Tensor | None = None,
        n_neighbors: int = 15,
        seed: int = 0,
        coords: torch.Tensor | None = None,
        setting: dict | None = None,
    ):
        self.setting = setting  # the LFR's {"alpha", "lfr_solver", "lfr_nfe"} that made ``refined``
        self.prior = prior.flatten(1).float().numpy()
        self.biased = biased.flatten(1).float().numpy()
        self.refined = None if refined is None else refined.flatten(1).float().numpy()
        self.biased_labels = None if biased_labels is None else biased_labels.numpy()
        self.n_neighbors, self.seed = n_neighbors, seed
        self.prior_xy = self.biased_xy = self.refined_xy = None
        self.lock = threading.Lock()
        if coords is not None:
            if tuple(coords.shape) != (len(self.points()), 2):
                raise ValueError(
                    f"stored map has {tuple(coords.shape)} coordinates for {len(self.points())} latents"
                )
            self.split(coords.float().numpy())

    @property
    def fitted(self) -> bool:
        return self.prior_xy is not None

    def points(self) -> np.ndarray:
        clouds = [self.prior, self.biased] + ([self.refined] if self.refined is not None else [])
        return np.concatenate(clouds)

    def split(self, xy: np.ndarray) -> None:
        a, b = len(self.prior), len(self.prior) + len(self.biased)
        self.prior_xy, self.biased_xy = xy[:a], xy[a:b]
        self.refined_xy = xy[b:] if self.refined is not None else None

    def fit(self) -> "LatentMap":
        """Fit UMAP on every cloud together unless coordinates are known (idempotent, thread-safe)."""
        with self.lock:
            if not self.fitted:
                import umap  # imported lazily: it pulls in numba

                reducer = umap.UMAP(
                    n_components=2,
                    n_neighbors=self.n_neighbors,
                    min_dist=0.1,
                    random_state=self.seed,
                    n_jobs=1,
                )
                self.split(reducer.fit_transform(self.points()))
        return self

    def coords(self) -> torch.Tensor:
        """All coordinates, prior rows first, then biased, then refined: what ``bfr latent-map`` stores."""
        self.fit()
        parts = [self.prior_xy, self.biased_xy] + ([self.refined_xy] if self.refined is not None else [])
        return torch.from_numpy(np.concatenate(parts)).float()


def bundle_latent_map(pipe, alpha: float | None = None, lfr_nfe: int | None = None) -> LatentMap:
    """The map of a bundle at one LFR setting: its first MAP_POINTS cached latents, as many prior draws
    of seed MAP_PRIOR_SEED and, when it has an LFR, their refinement at (α, NFE) (None: its defaults;
    RK4 when the NFE is a multiple of 4, else Euler). Uses the coordinates ``bfr latent-map`` stored
    when they were fitted at this very setting with this very LFR file (its SHA-256 is recorded).

    Raises:
        ValueError: the bundle has no cached latents, or a bad α / NFE.
        CheckpointError: a stored map that does not belong to these latents.
    """
    from .ode import solver_for_nfe
    from .pipeline import Settings

    lat = pipe.bundle.latents
    if lat is None:
        raise ValueError(f"bundle {pipe.bundle.path.name!r} has no cached latents (latents.safetensors)")
    k = min(MAP_POINTS, len(lat["z"]))
    prior, refined, setting, s = pipe.prior(k, MAP_PRIOR_SEED), None, None, None
    if pipe.bundle.has("lfr"):
        solver = None if lfr_nfe is None else solver_for_nfe(lfr_nfe)
        s = pipe.resolve(Settings(mode="lfr", alpha=alpha, lfr_solver=solver, lfr_nfe=lfr_nfe))
        lfr_file = hashlib.sha256(pipe.bundle.file("lfr").read_bytes()).hexdigest()[:16]
        setting = {"alpha": s.alpha, "lfr_solver": s.lfr_solver, "lfr_nfe": s.lfr_nfe, "lfr_sha256": lfr_file}
    coords, f = None, pipe.bundle.file(MAP_FILE)
    if f is not None:
        tensors, meta = load_tensors(f)
        if "xy" not in tensors or meta.get("points") != k or meta.get("prior_seed") != MAP_PRIOR_SEED:
            raise CheckpointError(f"{f}: not a map of this bundle's first {k} latents; run `bfr latent-map`")
        if meta.get("lfr") == setting:
            coords = tensors["xy"]
            stored = tensors.get("refined")  # the refined latents it was fitted on: no refining at first view
            if stored is not None and s is not None:
                if tuple(stored.shape) != (k, *prior.shape[1:]):
                    raise CheckpointError(f"{f}: its refined latents have shape {tuple(stored.shape)}")
                refined = stored.float()
    if s is not None and refined is None:
        labels = pipe.labels_for(k, None)
        refined = pipe.refine("latent", prior, labels, s, torch.Generator().manual_seed(MAP_PRIOR_SEED)).x
    return LatentMap(prior, lat["z"][:k], lat["y"][:k], refined=refined, coords=coords, setting=setting)
