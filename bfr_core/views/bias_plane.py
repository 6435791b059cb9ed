"""The bias plane: a 2-D map of latent space whose axes a reader can name, so distances on it keep the order
of the high-dimensional ones.

Each latent z (d coordinates) is drawn at

    x = ‖z‖/√d                      (≈ 1 for N(0, I) draws: the prior's shell)
    y = √(mean of z_i² over L)      (≈ 1 for N(0, I) draws)

where L is the quarter of the coordinates in which the biased latents z_b = G⁻¹(real) vary least (for
images: the pixels where the bias lives, e.g. MNIST's empty border). Prior draws sit around (1, 1); biased
latents lower, and lowest in y; an LFR that reaches the biased latents moves its cloud onto theirs, and one
that collapses onto a conditional mean (one Euler step) contracts it into a small clump near the origin —
below the biased cloud, where no real latent lies. Unlike UMAP, which keeps neighbours and may place a
refined draw by its own prior draw, nothing here is fitted: the same z always lands on the same point.

``bfr bias-plane`` stores the plane of the map's prior draws, biased latents and the LFR's refinement of those
draws at every NFE of the Latents view's slider (at the LFR's default α); other settings are computed live.
For 2-D latents (the toy sets) the plane is the latent space itself.
"""

from __future__ import annotations

import torch

from bfr_core.eval.metrics import energy_distance
from bfr_core.infra.checkpoint import CheckpointError, load_tensors
from bfr_core.views.latent_view import MAP_NFES, map_clouds, map_setting, refine_prior, same_setting

IMAGE_AXES = ("‖z‖/√d  (prior ≈ 1)", "RMS of z where the biased latents vary least  (prior ≈ 1)")
POINT_AXES = ("z₁", "z₂")  # 2-D latents: the plane is the latent space
COLLAPSE_RATIO = 0.75  # refined ‖z‖/√d below this share of the biased latents': a collapse onto a mean
PLANE_FILE = "bias_plane"  # BUNDLE/bias_plane.safetensors, written by `bfr bias-plane`
PLANE_POINTS = 500  # prior draws, biased latents and refined draws per setting on a stored plane
LIVE_POINTS = 200  # the same for a setting the bundle does not store (an α off its default): ~3 s on a CPU
LOW_VARIANCE_SHARE = 0.25  # the share of coordinates that make the y axis


def low_variance_coordinates(biased: torch.Tensor, share: float = LOW_VARIANCE_SHARE) -> torch.Tensor:
    """Indices of the ``share`` of coordinates in which the biased latents (N, …) vary least."""
    var = biased.flatten(1).double().var(0)
    return var.argsort()[: max(1, int(share * var.numel()))]


def plane_coordinates(z: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
    """(N, 2): ‖z‖/√d and the RMS of z over the coordinates ``low``, per row of ``z`` (N, …); 2-D latents
    (the toy sets) are their own faithful map and are returned as they are."""
    if z.flatten(1).shape[1] == 2:
        return z.flatten(1).float()
    z = z.flatten(1).double()
    return torch.stack([z.norm(dim=1) / z.shape[1] ** 0.5, z[:, low].pow(2).mean(1).sqrt()], 1).float()


def axes_for(z: torch.Tensor) -> tuple[str, str]:
    """The plane's axis titles for latents like ``z`` (N, …)."""
    return POINT_AXES if z.flatten(1).shape[1] == 2 else IMAGE_AXES


def contraction(plane: dict) -> float | None:
    """Mean ‖z‖/√d of the refined draws over that of the biased latents (None without refined draws).
    Far below 1 (under COLLAPSE_RATIO) the LFR has shrunk its draws onto a mean instead of moving them
    onto the biased cloud: the one-Euler-step collapse."""
    if plane["refined"] is None:
        return None
    if plane["axes"] == POINT_AXES:

        def norm(xy):
            return xy.norm(dim=1) / 2**0.5
    else:

        def norm(xy):
            return xy[:, 0]

    return float(norm(plane["refined"]).mean() / norm(plane["biased"]).mean())


def plane_distances(prior_xy, biased_xy, refined_xy) -> dict:
    """Energy distances between the three clouds on the plane, keyed like ``latent_view.latent_distances``."""
    return {
        "refined_to_biased": energy_distance(refined_xy, biased_xy),
        "refined_to_prior": energy_distance(refined_xy, prior_xy),
        "prior_to_biased": energy_distance(prior_xy, biased_xy),
    }


def plane_settings(pipe) -> list[dict]:
    """The settings ``bfr bias-plane`` stores: every NFE of the Latents slider at the LFR's default α."""
    return [map_setting(pipe, None, k) for k in MAP_NFES] if pipe.bundle.has("lfr") else []


def build_bias_plane(pipe, points: int = PLANE_POINTS, progress=None) -> tuple[dict, dict]:
    """What ``bfr bias-plane`` stores: tensors {"prior", "biased": (k, 2), "refined": (S, k, 2), "low"} and
    meta {"points", "settings"}; the refined draws are ``refine_prior`` of the map's prior draws."""
    prior, biased, _ = map_clouds(pipe, points)
    low = low_variance_coordinates(biased)
    settings, refined = plane_settings(pipe), []
    for i, setting in enumerate(settings):
        refined.append(plane_coordinates(refine_prior(pipe, prior, setting), low))
        if progress:
            progress((i + 1) / len(settings), f"refined at {setting['lfr_solver']} {setting['lfr_nfe']} NFE")
    tensors = {"prior": plane_coordinates(prior, low), "biased": plane_coordinates(biased, low), "low": low}
    if refined:
        tensors["refined"] = torch.stack(refined)
    return tensors, {"points": len(prior), "settings": settings}


def stored_plane(pipe, setting: dict | None) -> dict | None:
    """The clouds of ``setting`` (as ``bias_plane`` returns them) from the bundle's stored plane, or None when
    it has no plane file or not this setting (e.g. an α off the LFR's default)."""
    f = pipe.bundle.file(PLANE_FILE)
    if f is None:
        return None
    tensors, meta = load_tensors(f)
    settings = meta.get("settings")
    if not isinstance(settings, list) or "prior" not in tensors or "biased" not in tensors:
        raise CheckpointError(f"{f}: not a bias plane; run `bfr bias-plane`")
    clouds = {
        "prior": tensors["prior"],
        "biased": tensors["biased"],
        "axes": axes_for(pipe.bundle.latents["z"]),
    }
    if setting is None:
        return clouds | {"refined": None}
    index = next(
        (i for i, s in enumerate(settings) if isinstance(s, dict) and same_setting(s, setting)), None
    )
    return None if index is None else clouds | {"refined": tensors["refined"][index]}


def bias_plane(pipe, setting: dict | None, points: int = LIVE_POINTS) -> dict:
    """The plane at ``setting`` (``latent_view.map_setting``; None: no refined cloud): stored when the bundle
    has it, else computed from the map's clouds. Returns {"prior", "biased", "refined" (or None)} as (k, 2)
    coordinates, and "axes", the axis titles."""
    found = stored_plane(pipe, setting)
    if found is not None:
        return found
    prior, biased, _ = map_clouds(pipe, points)
    low = low_variance_coordinates(biased)
    refined = None if setting is None else plane_coordinates(refine_prior(pipe, prior, setting), low)
    clouds = {"prior": plane_coordinates(prior, low), "biased": plane_coordinates(biased, low)}
    return clouds | {"refined": refined, "axes": axes_for(prior)}
