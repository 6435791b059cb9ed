"""A 2-D map of latent space: UMAP fitted *jointly* on prior draws, biased latents and their refinement.

UMAP's ``transform`` places out-of-sample points badly here: refined MNIST latents landed outside the
ring of biased ones although their norms lie between the two clouds, and nearest-neighbour placement
fails too (in 784 dimensions the nearest fitted latent of a fresh prior draw is a biased latent, by
norm alone). So the map is fitted on every cloud together. ``bfr latent-map`` fits, at build time, ONE
map on the prior draws, the biased latents and the LFR refinement of the same prior draws at every
setting the Latents view's sliders reach (NFE 1..10; for an α-conditioned LFR, every α of the slider's
0.05 grid in its range): moving a slider then moves the refined cloud across a fixed map instead of
refitting, and the figures beside it (‖z‖/√d, energy distances) are stored per setting, computed from
all the refined draws. Another setting (an α off the grid) is fitted live on the three clouds.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from bfr_core.infra.checkpoint import CheckpointError, load_tensors
from bfr_core.eval.metrics import energy_distance
from bfr_core.generative.ode import solver_for_nfe
from bfr_core.pipeline import Settings
from bfr_core.views.sweep import lfr_fingerprint
from bfr_core.views.umap_kernels import import_umap

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


UMAP_EXACT_LIMIT = 4096  # below it, UMAP finds exact neighbours from all pairwise distances


def umap_2d(points: np.ndarray, n_neighbors: int = 15, seed: int = 0) -> np.ndarray:
    """2-D UMAP coordinates of ``points`` (N, d), one thread, reproducible for a seed.

    Below UMAP's exact-neighbour limit (4,096 points) the Euclidean distances are computed here, vectorised,
    and handed over as a precomputed matrix: UMAP itself would call its own metric once per pair from Python
    (1,500 points in 64-d: 3.95 s → 2.27 s for the whole fit, measured on this machine's CPU)."""
    import warnings

    from sklearn.metrics import pairwise_distances

    umap = import_umap()  # lazily: it pulls in numba; its kernels cached on disk after the first process

    settings = dict(n_components=2, n_neighbors=n_neighbors, min_dist=0.1, random_state=seed, n_jobs=1)
    if len(points) >= UMAP_EXACT_LIMIT:
        return umap.UMAP(**settings).fit_transform(points)
    distances = pairwise_distances(np.asarray(points, dtype=np.float32), metric="euclidean")
    with warnings.catch_warnings():  # "inverse_transform will be unavailable": never used here
        warnings.filterwarnings("ignore", message="using precomputed metric")
        return umap.UMAP(metric="precomputed", **settings).fit_transform(distances)


class LatentMap:
    """Prior draws, biased (inverted real) latents and optionally their LFR refinement at one setting,
    with joint 2-D UMAP coordinates.

    Args:
        prior, biased: (N, …) latents; flattened to (N, d). ``refined``: F_LFR(prior), or None.
        biased_labels: class labels of the biased latents, or None.
        coords: stored (N_prior + N_biased [+ N_shown], 2) coordinates, in that order; None: fit on demand.
        refined_stats: for a stored map, {"norms": ‖z‖/√d of every refined draw, "distances":
            ``latent_distances``} (the refined latents themselves are not stored); None: computed.
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
        refined_stats: dict | None = None,
    ):
        self.setting = setting  # the LFR's {"alpha", "lfr_solver", "lfr_nfe", "lfr_sha256"}
        self.prior = prior.flatten(1).float().numpy()
        self.biased = biased.flatten(1).float().numpy()
        self.refined = None if refined is None else refined.flatten(1).float().numpy()
        self.refined_stats = refined_stats
        self.biased_labels = None if biased_labels is None else biased_labels.numpy()
        self.n_neighbors, self.seed = n_neighbors, seed
        self.prior_xy = self.biased_xy = self.refined_xy = None
        self.lock = threading.Lock()
        if coords is not None:
            k = len(self.prior) + len(self.biased)
            if refined_stats is None and tuple(coords.shape) != (len(self.points()), 2):
                raise ValueError(
                    f"stored map has {tuple(coords.shape)} coordinates for {len(self.points())} latents"
                )
            self.split(coords.float().numpy(), len(coords) - k)

    @property
    def fitted(self) -> bool:
        return self.prior_xy is not None

    @property
    def has_refined(self) -> bool:
        return self.refined is not None or self.refined_stats is not None

    def points(self) -> np.ndarray:
        clouds = [self.prior, self.biased] + ([self.refined] if self.refined is not None else [])
        return np.concatenate(clouds)

    def split(self, xy: np.ndarray, n_refined: int) -> None:
        a, b = len(self.prior), len(self.prior) + len(self.biased)
        self.prior_xy, self.biased_xy = xy[:a], xy[a:b]
        self.refined_xy = xy[b : b + n_refined] if n_refined else None

    def fit(self) -> "LatentMap":
        """Fit UMAP on every cloud together unless coordinates are known (idempotent, thread-safe)."""
        with self.lock:
            if not self.fitted:
                n_refined = 0 if self.refined is None else len(self.refined)
                self.split(umap_2d(self.points(), self.n_neighbors, self.seed), n_refined)
        return self

    def coords(self) -> torch.Tensor:
        """All coordinates, prior rows first, then biased, then the refined rows shown."""
        self.fit()
        parts = [self.prior_xy, self.biased_xy] + ([self.refined_xy] if self.refined_xy is not None else [])
        return torch.from_numpy(np.concatenate(parts)).float()

    def cloud_norms(self) -> dict[str, np.ndarray]:
        """‖z‖/√d of every latent of each cloud (the refined: all its draws, shown or not)."""
        norms = {
            "prior N(0, I)": norm_per_dim(torch.from_numpy(self.prior)).numpy(),
            "biased G⁻¹(real)": norm_per_dim(torch.from_numpy(self.biased)).numpy(),
        }
        if self.refined_stats is not None:
            norms["LFR-refined"] = np.asarray(self.refined_stats["norms"])
        elif self.refined is not None:
            norms["LFR-refined"] = norm_per_dim(torch.from_numpy(self.refined)).numpy()
        return norms

    def distances(self) -> dict | None:
        """``latent_distances`` of the three clouds, or None without a refined cloud."""
        if self.refined_stats is not None:
            return self.refined_stats["distances"]
        if self.refined is None:
            return None
        return latent_distances(*(torch.from_numpy(c) for c in (self.prior, self.biased, self.refined)))


MAP_NFES = tuple(range(1, 11))  # the Latents view's LFR NFE slider
MAP_ALPHA_STEP = 0.05  # its α slider's step
MAP_REFINED_BUDGET = 10_000  # refined points on a stored map, over all its settings
DISTANCE_KEYS = ("refined_to_biased", "refined_to_prior", "prior_to_biased")


def map_setting(pipe, alpha: float | None = None, lfr_nfe: int | None = None) -> dict | None:
    """The LFR setting a map shows: {"alpha", "lfr_solver", "lfr_nfe", "lfr_sha256"} (None: the LFR's
    defaults; RK4 when the NFE is a multiple of 4, else Euler), or None for a bundle without an LFR."""
    if not pipe.bundle.has("lfr"):
        return None
    solver = None if lfr_nfe is None else solver_for_nfe(lfr_nfe)
    s = pipe.resolve(Settings(mode="lfr", alpha=alpha, lfr_solver=solver, lfr_nfe=lfr_nfe))
    return {
        "alpha": s.alpha,
        "lfr_solver": s.lfr_solver,
        "lfr_nfe": s.lfr_nfe,
        "lfr_sha256": lfr_fingerprint(pipe.bundle),
    }


def slider_settings(pipe) -> list[dict]:
    """Every setting the Latents view's sliders reach, the LFR's default first: NFE ``MAP_NFES`` at its
    α, and for an α-conditioned LFR at every α of the ``MAP_ALPHA_STEP`` grid in its trained range."""
    if not pipe.bundle.has("lfr"):
        return []
    lo_hi = pipe.bundle.alpha_range()
    alphas = [None]
    if lo_hi is not None:
        grid = (round(i * MAP_ALPHA_STEP, 10) for i in range(round(1 / MAP_ALPHA_STEP) + 1))
        alphas = [a for a in grid if lo_hi[0] <= a <= lo_hi[1]]
    default = map_setting(pipe)
    found = [map_setting(pipe, a, k) for a in alphas for k in MAP_NFES]
    return [default] + [s for s in found if s != default]


def refine_prior(pipe, prior: torch.Tensor, setting: dict) -> torch.Tensor:
    """F_LFR of the map's prior draws at ``setting`` (deterministic: the ODE LFR draws nothing)."""
    s = pipe.resolve(
        Settings(
            mode="lfr", alpha=setting["alpha"], lfr_solver=setting["lfr_solver"], lfr_nfe=setting["lfr_nfe"]
        )
    )
    labels = pipe.labels_for(len(prior), None)
    return pipe.refine("latent", prior, labels, s, torch.Generator().manual_seed(MAP_PRIOR_SEED)).x


def map_clouds(pipe, points: int = MAP_POINTS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(prior draws, biased latents, their labels): the bundle's first ``points`` cached latents and as
    many prior draws of seed MAP_PRIOR_SEED."""
    lat = pipe.bundle.latents
    if lat is None:
        raise ValueError(f"bundle {pipe.bundle.path.name!r} has no cached latents (latents.safetensors)")
    k = min(points, len(lat["z"]))
    return pipe.prior(k, MAP_PRIOR_SEED), lat["z"][:k], lat["y"][:k]


def read_stored_map(pipe) -> tuple[dict, dict] | None:
    """(tensors, metadata) of the bundle's stored map file, or None when it has none."""
    f = pipe.bundle.file(MAP_FILE)
    return None if f is None else load_tensors(f)


def stored_points(pipe, stored: tuple[dict, dict] | None) -> int:
    """How many latents of each cloud the ``stored`` map holds (MAP_POINTS without a map)."""
    if stored is None:
        return MAP_POINTS
    points = stored[1].get("points")
    if not isinstance(points, int) or points < 1:
        raise CheckpointError(
            f"{pipe.bundle.file(MAP_FILE)}: its 'points' must be a positive integer; run `bfr latent-map`"
        )
    return points


def build_latent_map(
    pipe,
    budget: int = MAP_REFINED_BUDGET,
    points: int = MAP_POINTS,
    n_neighbors: int = 15,
    seed: int = 0,
    progress=None,
) -> tuple[dict, dict]:
    """What ``bfr latent-map`` stores: one UMAP fitted on the prior draws, the biased latents and the
    refined draws of every ``slider_settings`` setting (all of them for the default setting; for the
    others an equal share (≥ 1) of the ``budget`` of refined points left, their first draws), and per
    setting ‖z‖/√d of every refined draw and the energy distances.

    Returns (tensors {"xy", "refined_norms" (S, k), "refined_distances" (S, 3)}, meta {"points",
    "prior_seed", "settings": [setting + {"shown": m}], "n_neighbors", "seed"}).
    """
    prior, biased, _ = map_clouds(pipe, points)
    k, settings = len(prior), slider_settings(pipe)
    share = min(k, max(1, (budget - k) // max(len(settings) - 1, 1)))
    shown, norms, dists = [], [], []
    for i, setting in enumerate(settings):
        refined = refine_prior(pipe, prior, setting)
        setting["shown"] = k if i == 0 else share
        shown.append(refined.flatten(1)[: setting["shown"]])
        norms.append(norm_per_dim(refined).float())
        d = latent_distances(prior, biased, refined)
        dists.append(torch.tensor([d[key] for key in DISTANCE_KEYS], dtype=torch.float64))
        if progress:
            progress((i + 1) / (len(settings) + 1), f"refined at {setting}")
    points = torch.cat([prior.flatten(1), biased.flatten(1), *shown]).float().numpy()
    xy = torch.from_numpy(umap_2d(points, n_neighbors, seed)).float()
    tensors = {"xy": xy}
    if settings:
        tensors |= {"refined_norms": torch.stack(norms), "refined_distances": torch.stack(dists)}
    meta = {"points": k, "prior_seed": MAP_PRIOR_SEED, "settings": settings, "n_neighbors": n_neighbors}
    return tensors, meta | {"seed": seed}


def same_setting(a: dict, b: dict) -> bool:
    """Whether two map settings name the same LFR file, solver, NFE and α (α to 1e-9: slider floats)."""
    same = all(a.get(x) == b.get(x) for x in ("lfr_solver", "lfr_nfe", "lfr_sha256"))
    return same and isinstance(a.get("alpha"), (int, float)) and abs(a["alpha"] - b["alpha"]) < 1e-9


def stored_map(
    pipe, stored: tuple[dict, dict] | None, k: int, setting: dict | None
) -> tuple[torch.Tensor, dict | None] | None:
    """(coordinates of prior, biased and the shown refined rows, refined_stats) of ``setting`` from the
    bundle's ``stored`` map (``read_stored_map``), or None when it stores no map or not this setting
    (e.g. another LFR file)."""
    if stored is None:
        return None
    f = pipe.bundle.file(MAP_FILE)
    tensors, meta = stored
    settings = meta.get("settings")
    if "xy" not in tensors or meta.get("points") != k or meta.get("prior_seed") != MAP_PRIOR_SEED:
        raise CheckpointError(f"{f}: not a map of this bundle's first {k} latents; run `bfr latent-map`")
    if not isinstance(settings, list) or any(not isinstance(s, dict) for s in settings):
        raise CheckpointError(
            f"{f}: an old map without its settings list; delete it and run `bfr latent-map`"
        )
    shown = [int(s.get("shown", 0)) for s in settings]
    if len(tensors["xy"]) != 2 * k + sum(shown) or tensors["xy"].shape[1:] != (2,):
        raise CheckpointError(
            f"{f}: {tuple(tensors['xy'].shape)} coordinates for its {len(settings)} settings"
        )
    if setting is None:
        return tensors["xy"][: 2 * k], None
    index = next((i for i, s in enumerate(settings) if same_setting(s, setting)), None)
    if index is None:
        return None
    start = 2 * k + sum(shown[:index])
    xy = torch.cat([tensors["xy"][: 2 * k], tensors["xy"][start : start + shown[index]]])
    norms, dists = tensors["refined_norms"][index], tensors["refined_distances"][index]
    if norms.shape != (k,) or dists.shape != (len(DISTANCE_KEYS),):
        raise CheckpointError(f"{f}: its per-setting figures have the wrong shape")
    stats = {"norms": norms.numpy(), "distances": dict(zip(DISTANCE_KEYS, dists.tolist()))}
    return xy, stats


def bundle_latent_map(pipe, alpha: float | None = None, lfr_nfe: int | None = None) -> LatentMap:
    """The map of a bundle at one LFR setting (None: its defaults): ``map_clouds`` (as many points as its
    stored map has) and, when it has an LFR, their refinement at (α, NFE). A setting the stored map holds
    is read from it (nothing is refined or fitted); another one is refined here and fitted on first use
    (``LatentMap.fit``).

    Raises:
        ValueError: the bundle has no cached latents, or a bad α / NFE.
        CheckpointError: a stored map that does not belong to these latents.
    """
    stored = read_stored_map(pipe)  # read once per request
    prior, biased, labels = map_clouds(pipe, stored_points(pipe, stored))
    setting = map_setting(pipe, alpha, lfr_nfe)
    found = stored_map(pipe, stored, len(prior), setting)
    if found is not None:
        xy, stats = found
        return LatentMap(prior, biased, labels, coords=xy, setting=setting, refined_stats=stats or None)
    refined = None if setting is None else refine_prior(pipe, prior, setting)
    return LatentMap(prior, biased, labels, refined=refined, setting=setting)
