"""LFR and DFR: the two noise-free refiners, as thin layers over flow matching.

LFR (latent space): invert real data through the base ODE, z_b = G⁻¹(x); mix the targets
    z1 = √(1 − a)·z_b + √a·ε,  a ~ U(0, α),  ε ~ N(0, I);
and train a flow N(0, I) → z1 with minibatch OT coupling. Sample z ~ N(0, I) → F(z) → G.
If ``alpha_max`` is given instead, each sample draws its own α ~ U(0, α_max) and the network
receives α as an input, so one refiner serves every α in [0, α_max].

DFR (data space): train a flow from generated samples x_g = G(z) (augmented during training
only) to real samples, pairing each real sample with a generated one of the same class,
then OT within each class. Refine x_g → F(x_g).

Reflow (ours, METHOD.md): re-pair prior samples with where the multi-step LFR ODE takes
them and retrain on those fixed pairs; the straighter flow works with one Euler step.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from tqdm.auto import tqdm

from .flow import FlowBatch, coupled_batch, flow_loss
from .ode import integrate, velocity_field
from .train import TrainConfig, TrainResult, fit


# ----------------------------------------------------------------------------- flow maps
@torch.no_grad()
def flow_map(net, x, y=None, cond=None, t0=0.0, t1=1.0, solver="rk4", nfe=4,
             batch_size=1000, desc=None, return_trajectory=False):
    """Integrate ``net``'s field over [t0, t1] for every row of ``x`` in batches.

    Returns (x_out, nfe) or, with ``return_trajectory``, (x_out, nfe, trajectory).
    """
    outs, trajs, nfe_used = [], [], 0
    starts = range(0, len(x), batch_size)
    for s in tqdm(starts, desc=desc, disable=desc is None or len(starts) < 2):
        sl = slice(s, s + batch_size)
        res = integrate(
            velocity_field(net, None if y is None else y[sl], None if cond is None else cond[sl]),
            x[sl], t0, t1, solver, nfe, return_trajectory=return_trajectory,
        )
        outs.append(res.x)
        trajs.append(res.trajectory)
        nfe_used = max(nfe_used, res.nfe)
    out = torch.cat(outs) if outs else x.clone()
    if return_trajectory:
        return out, nfe_used, torch.cat(trajs, dim=1)
    return out, nfe_used


def invert(base, x, y=None, solver="rk4", nfe=20, batch_size=1000, desc="invert"):
    """Biased latents z_b = G⁻¹(x): the base ODE integrated from t = 1 back to t = 0."""
    return flow_map(base, x, y, None, 1.0, 0.0, solver, nfe, batch_size, desc)[0]


def alpha_mix(z_b: torch.Tensor, alpha, generator: torch.Generator):
    """z1 = √(1 − a)·z_b + √a·ε with a ~ U(0, α) per sample; α a float or a (B,) tensor.

    Returns (z1, a).
    """
    alpha = torch.as_tensor(alpha, dtype=z_b.dtype)
    if (alpha < 0).any() or (alpha > 1).any():
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    a = torch.rand(len(z_b), generator=generator, dtype=z_b.dtype) * alpha
    eps = torch.randn(z_b.shape, generator=generator, dtype=z_b.dtype)
    aa = a.view(-1, *([1] * (z_b.dim() - 1)))
    return torch.sqrt(1 - aa) * z_b + torch.sqrt(aa) * eps, a


# ----------------------------------------------------------------------------- augmentation
@dataclass
class Augment:
    """Light source augmentation for DFR training (never applied at inference).

    With probability ``noise_p`` add N(0, noise_std²); with probability ``blur_p`` blur with
    a ``blur_kernel``-tap Gaussian of σ ~ U(blur_sigma_min, blur_sigma_max) pixels.
    """

    noise_p: float = 0.0
    noise_std: float = 0.01
    blur_p: float = 0.3
    blur_sigma_min: float = 0.01
    blur_sigma_max: float = 0.02
    blur_kernel: int = 5

    def __post_init__(self):
        for name in ("noise_p", "blur_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        if self.blur_kernel % 2 == 0 or self.blur_kernel < 1:
            raise ValueError(f"blur_kernel must be odd and positive, got {self.blur_kernel}")
        if not 0 < self.blur_sigma_min <= self.blur_sigma_max:
            raise ValueError("need 0 < blur_sigma_min <= blur_sigma_max")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = len(x)
        shape = (n,) + (1,) * (x.dim() - 1)
        noisy = (torch.rand(n, generator=generator) < self.noise_p).view(shape)
        x = x + noisy * self.noise_std * torch.randn(x.shape, generator=generator)
        if x.dim() == 4 and self.blur_p > 0:
            blur = (torch.rand(n, generator=generator) < self.blur_p).view(shape)
            sig = self.blur_sigma_min + (self.blur_sigma_max - self.blur_sigma_min) * torch.rand(n, generator=generator)
            x = torch.where(blur, gaussian_blur(x, sig, self.blur_kernel), x)
        return x

    def to_dict(self) -> dict:
        return asdict(self)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel: int) -> torch.Tensor:
    """Blur each image of (B, C, H, W) with its own σ: separable kernel ∝ exp(−k²/2σ²), reflect pad."""
    b, c, h, w = x.shape
    k = torch.arange(kernel, dtype=x.dtype) - kernel // 2
    g = torch.exp(-(k[None] ** 2) / (2 * sigma[:, None].to(x.dtype) ** 2))
    g = (g / g.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (B*C, K)
    flat = x.reshape(1, b * c, h, w)
    pad = kernel // 2
    flat = torch.nn.functional.pad(flat, (pad, pad, 0, 0), mode="reflect")
    flat = torch.nn.functional.conv2d(flat, g[:, None, None, :], groups=b * c)
    flat = torch.nn.functional.pad(flat, (0, 0, pad, pad), mode="reflect")
    flat = torch.nn.functional.conv2d(flat, g[:, None, :, None], groups=b * c)
    return flat.view(b, c, h, w)


# ----------------------------------------------------------------------------- training
def train_flow(net, draw, coupling: str, sigma: float, batch_size: int, cfg: TrainConfig,
               state_path=None, resume=False, on_step=None, ot_batch: int | None = None) -> TrainResult:
    """Flow matching with batches from ``draw(generator, n) -> FlowBatch``; ``ot_batch`` > batch_size
    couples that many pairs per step and trains on ``batch_size`` of them (``coupled_batch``)."""

    def loss_fn(model, generator, step):
        return flow_loss(model, coupled_batch(draw, coupling, batch_size, ot_batch, generator), sigma, generator)

    return fit(net, loss_fn, cfg, state_path, resume, on_step)


def labels_or_none(y: torch.Tensor, conditional: bool):
    return y if conditional else None


def base_batches(x_train, y_train, conditional: bool, leak: float = 0.0):
    """Source N(0, I), target real data (with labels when the base is conditional).

    With ``leak`` l > 0 the source is x0 = √(1 − l²)·ε + l·x1 (ε ~ N(0, I)): the model is trained
    on sources that still hold a trace of their image, but sampled from pure N(0, I). This is the
    signal leak (non-zero terminal SNR) of the paper's MNIST base, made explicit.
    """
    if not 0.0 <= leak < 1.0:
        raise ValueError(f"leak must lie in [0, 1), got {leak}")

    def draw(g, bs):
        idx = torch.randint(0, len(x_train), (bs,), generator=g)
        x1 = x_train[idx]
        x0 = torch.randn(x1.shape, generator=g)
        if leak > 0:
            x0 = (1 - leak ** 2) ** 0.5 * x0 + leak * x1
        return FlowBatch(x0, x1, labels_or_none(y_train[idx], conditional))

    return draw


def lfr_batches(z_b, y, conditional: bool, alpha: float | None = None, alpha_max: float | None = None):
    """Source N(0, I), target α-mixed biased latents; with ``alpha_max`` α becomes an input."""
    if (alpha is None) == (alpha_max is None):
        raise ValueError("give exactly one of alpha (fixed) or alpha_max (α as an input)")

    def draw(g, bs):
        idx = torch.randint(0, len(z_b), (bs,), generator=g)
        if alpha_max is not None:
            per_sample = torch.rand(bs, generator=g) * alpha_max
            z1, _ = alpha_mix(z_b[idx], per_sample, g)
            cond = per_sample[:, None]
        else:
            z1, _ = alpha_mix(z_b[idx], alpha, g)
            cond = None
        return FlowBatch(torch.randn(z1.shape, generator=g), z1, labels_or_none(y[idx], conditional), cond)

    return draw


def dfr_batches(pool_x, pool_y, x_train, y_train, conditional: bool, augment: Augment):
    """Target real data; source a generated sample of the same class (any class if
    unconditional), augmented."""
    by_class = [torch.nonzero(pool_y == c).squeeze(1) for c in range(int(pool_y.max()) + 1)]
    for c, members in enumerate(by_class):
        if conditional and len(members) == 0 and (y_train == c).any():
            raise ValueError(f"the generated pool has no samples of class {c}")

    def draw(g, bs):
        idx = torch.randint(0, len(x_train), (bs,), generator=g)
        x1, y1 = x_train[idx], y_train[idx]
        if conditional:
            src = torch.empty(bs, dtype=torch.long)
            for c in torch.unique(y1).tolist():
                rows = torch.nonzero(y1 == c).squeeze(1)
                members = by_class[c]
                src[rows] = members[torch.randint(0, len(members), (len(rows),), generator=g)]
        else:
            src = torch.randint(0, len(pool_x), (bs,), generator=g)
        return FlowBatch(augment(pool_x[src], g), x1, y1 if conditional else None)

    return draw


def paired_batches(x0, x1, y=None, cond=None):
    """Fixed pairs (reflow): row i of x0 always goes to row i of x1."""

    def draw(g, bs):
        idx = torch.randint(0, len(x0), (bs,), generator=g)
        return FlowBatch(x0[idx], x1[idx], None if y is None else y[idx], None if cond is None else cond[idx])

    return draw
