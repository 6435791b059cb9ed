"""DFR, the data-space refiner (the paper's DFR).

Train a flow from generated samples x_g = G(z) (augmented during training only: light noise and
blur) to real samples, pairing each real sample with a generated one of the same class, then OT
within each class. Refine x_g ↦ F(x_g).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from bfr_core.cli import commands as cmds
from bfr_core.infra.data import load_dataset
from bfr_core.infra.dataset import IMAGE_RANGE
from bfr_core.infra.device import resolve_device
from bfr_core.generative.flow import FlowBatch
from bfr_core.generative.nets import build_net, default_velocity_config
from bfr_core.refiners.base import Refiner, solver_rows


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
            sig = self.blur_sigma_min + (self.blur_sigma_max - self.blur_sigma_min) * torch.rand(
                n, generator=generator
            )
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


def train(args, pipe) -> None:
    """``bfr train-dfr``: the bundle's pipeline ``pipe`` draws the pool of base samples it starts from."""
    # The pool is drawn where the training runs: the base on the GPU takes 32k samples in seconds.
    bundle = pipe.bundle.flows_to(resolve_device(args.device))
    ds = load_dataset(bundle.dataset, args.data_dir)
    t0 = time.perf_counter()
    pool_x, pool_labels = pipe.base_pool(args.pool, args.seed + 2)
    pool_s = time.perf_counter() - t0
    conditional = bundle.num_classes > 0
    augment = Augment(args.noise_p, args.noise_std, args.blur_p, args.blur_sigma_min, args.blur_sigma_max)
    pool_y = pool_labels if conditional else torch.zeros(len(pool_x), dtype=torch.long)
    draw = dfr_batches(pool_x, pool_y, ds.x_train, ds.y_train, conditional, augment)
    config = default_velocity_config(bundle.shape, bundle.num_classes, channels=args.channels)
    coupling = "ot-per-class" if conditional else "ot"
    meta = {
        "role": "dfr",
        "dataset": bundle.dataset,
        "pool": args.pool,
        "pool_wall_s": round(pool_s, 2),
        "pool_device": str(resolve_device(args.device)),
        "augment": augment.to_dict(),
        "sigma": args.sigma,
        "batch_size": args.batch_size,
        "ot_batch": max(args.ot_batch or 0, args.batch_size),
        "coupling": coupling,
        "sampling": {"solver": args.solver, "nfe": args.nfe},
    }
    net = build_net(config, cmds.seeded(args))
    cmds.train_and_save(
        args, bundle.dataset, net, config, draw, coupling, args.sigma, meta, ot_batch=args.ot_batch
    )


class DataFlowRefiner(Refiner):
    def apply(
        self, bundle, x, labels, alpha, solver, nfe, generator, return_trajectory=False, t1=1.0, share=None
    ):
        """F(x), clipped to the pixel range [-1, 1] when the bundle's card says ``"dfr_clip": true``.

        A few DFR steps can overshoot the range (on MNIST 75% of pixels end below −1, where real images
        never go), which the independent metric punishes; on digits the clip hurts instead. So it is a
        per-bundle choice made on held-out training images (README: the bias zoo).
        """
        res = super().apply(bundle, x, labels, alpha, solver, nfe, generator, return_trajectory, t1, share)
        if bundle.card.get("dfr_clip"):  # the path too, so that its last frame is the refined image
            path = None if res.trajectory is None else res.trajectory.clamp(*IMAGE_RANGE)
            res = replace(res, x=res.x.clamp(*IMAGE_RANGE), trajectory=path)
        return res

    def add_command(self, sub, parents):
        p = sub.add_parser(
            self.command, parents=parents, help="train the data-space refiner generated → real"
        )
        arg, prob = p.add_argument, cmds.probability
        arg("--bundle", type=Path, required=True)
        arg("--pool", type=cmds.positive_int, default=4096, help="generated samples to refine from")
        arg("--noise-p", type=prob, default=0.0, help="probability of adding N(0, noise_std²) to a source")
        arg("--noise-std", type=float, default=0.01)
        arg("--blur-p", type=prob, default=0.3, help="probability of blurring a source")
        arg("--blur-sigma-min", type=float, default=0.01, help="blur σ ~ U(min, max), in pixels")
        arg("--blur-sigma-max", type=float, default=0.02)
        arg("--sigma", type=float, default=0.0, help="path noise σ")
        cmds.add_refiner_args(p, self.name, train, coupling=True)


DFR = DataFlowRefiner("dfr", "data", "dfr", "DFR", "train-dfr", rows=solver_rows("dfr"))
