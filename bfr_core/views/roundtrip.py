"""One real image through the whole BFR idea, and the bias meter.

Round trip: a held-out image x is inverted, z_b = G⁻¹(x) (the base ODE from t = 1 back to 0), and
decoded again, x̂ = G(z_b); the reconstruction error |x̂ − x| says how faithful the inversion is at
that solver and NFE. The LFR then moves z_b as it moves any latent, G(F_LFR(z_b)). A latent inverted
earlier (a biased latent of the bundle's cache, clicked on the latent map) takes the second half only.

Bias meter: invert a batch of real images and compare their latents with N(0, I): in d dimensions a
Gaussian draw has ‖z‖/√d concentrated near 1 (a shell of width ≈ 1/√(2d)); biased latents sit
elsewhere. The energy distance to as many N(0, I) draws is the number, and unlike a 2-D map it
cannot invent or hide structure.

``examples.safetensors`` (``bfr examples``) ships a few held-out test images in the bundle, so both
work with no dataset on disk.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bfr_core.infra.checkpoint import CheckpointError, load_tensors, save_tensors
from bfr_core.views.latent_view import norm_per_dim
from bfr_core.eval.metrics import energy_distance
from bfr_core.generative.ode import flow_map, solver_for_nfe
from bfr_core.generative.inversion import invert
from bfr_core.pipeline import Settings

EXAMPLES_FILE = "examples.safetensors"


def save_examples(x: torch.Tensor, y: torch.Tensor, meta: dict, path) -> None:
    save_tensors({"x": x.half(), "y": y}, {**meta, "role": "examples"}, path)


def load_examples(bundle) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The bundle's (or its sibling's, via shared.json) example images and labels, or None."""
    path = bundle.file("examples")
    if path is None:
        return None
    tensors, _ = load_tensors(path)
    x, y = tensors.get("x"), tensors.get("y")
    if x is None or y is None or tuple(x.shape[1:]) != bundle.shape or len(y) != len(x):
        raise CheckpointError(f"{path}: needs 'x' of shape (N, *{bundle.shape}) and N labels 'y'")
    return x.float(), y.long()


def one_label(pipe, label) -> torch.Tensor | None:
    """One image's class as a (1,) tensor for a conditional base; None for an unconditional one."""
    return None if label is None or not pipe.bundle.num_classes else torch.tensor([int(label)])


def shell_width(d: int) -> float:
    """1/√(2d): the spread of ‖z‖/√d over N(0, I) draws in d dimensions (they sit on a shell at 1)."""
    return (2 * d) ** -0.5


@dataclass
class RoundTrip:
    image: torch.Tensor | None  # (1, C, H, W); None when only the latent is known
    latent: torch.Tensor  # z_b = G⁻¹(x)
    regenerated: torch.Tensor  # G(z_b)
    reconstruction_error: float | None  # mean |G(z_b) − x| per pixel (None without the image)
    lfr_regenerated: torch.Tensor | None  # G(F_LFR(z_b))
    latent_stats: dict  # mean, std, ‖z‖/√d of z_b


@torch.no_grad()
def round_trip(pipe, x: torch.Tensor, label, solver: str, nfe: int, alpha: float | None = None) -> RoundTrip:
    """Invert one image (1, C, H, W), decode it back, and decode its LFR-moved latent.

    Args:
        pipe: a Pipeline; label: its class (conditional bases) or None.
        solver, nfe: the base ODE's solver and NFE, used for the inversion and both decodings.
    """
    labels = one_label(pipe, label)
    z = invert(pipe.bundle.models["base"], x, labels, solver, nfe, desc=None)
    return decode_latent(pipe, z, label, solver, nfe, alpha, image=x)


@torch.no_grad()
def decode_latent(
    pipe,
    z: torch.Tensor,
    label,
    solver: str,
    nfe: int,
    alpha: float | None = None,
    lfr_nfe: int | None = None,
    image: torch.Tensor | None = None,
) -> RoundTrip:
    """The second half of a round trip, for a latent z_b (1, …) already inverted (e.g. a cached one).

    Decodes x̂ = G(z_b) and G(F_LFR(z_b)) with the base at ``solver``/``nfe`` (the inversion's, so x̂ is
    the reconstruction), the LFR at ``lfr_nfe`` (None: its default; multiples of 4 run RK4, else
    Euler) and ``alpha``; with the real ``image`` x, the reconstruction error mean |x̂ − x|.
    """
    labels = one_label(pipe, label)
    latents = [z]
    if pipe.bundle.has("lfr"):
        lfr_solver = None if lfr_nfe is None else solver_for_nfe(lfr_nfe)
        s = pipe.resolve(Settings("lfr", solver, nfe, lfr_solver=lfr_solver, lfr_nfe=lfr_nfe, alpha=alpha))
        latents.append(pipe.refine("latent", z, labels, s, torch.Generator().manual_seed(0)).x)
    both = None if labels is None else labels.repeat(len(latents))
    decoded = flow_map(pipe.bundle.models["base"], torch.cat(latents), both, None, 0.0, 1.0, solver, nfe).x
    x_hat, lfr_x = decoded[: len(z)], decoded[len(z) :] if len(latents) > 1 else None  # one solve for both
    stats = {"mean": float(z.mean()), "std": float(z.std()), "norm_per_dim": float(norm_per_dim(z)[0])}
    error = None if image is None else float((x_hat - image).abs().mean())
    return RoundTrip(image, z, x_hat, error, lfr_x, stats)


@torch.no_grad()
def bias_meter(pipe, x: torch.Tensor, labels, solver: str, nfe: int, seed: int = 0) -> dict:
    """Invert real images at a solver and NFE and measure how far their latents are from N(0, I).

    Returns:
        {"norm_per_dim": ‖z_b‖/√d per image, "prior_norm_per_dim": the same for as many N(0, I) draws,
        "energy_to_prior": energy distance between the two clouds, "rms": √mean z_b²,
        "shell_width": 1/√(2d)}.
    """
    y = labels if pipe.bundle.num_classes else None
    z_b = invert(pipe.bundle.models["base"], x, y, solver, nfe, desc=None)
    prior = torch.randn(z_b.shape, generator=torch.Generator().manual_seed(seed))
    d = z_b[0].numel()
    return {
        "norm_per_dim": norm_per_dim(z_b),
        "prior_norm_per_dim": norm_per_dim(prior),
        "energy_to_prior": energy_distance(z_b, prior),
        "rms": float(z_b.double().pow(2).mean().sqrt()),
        "shell_width": shell_width(d),
    }
