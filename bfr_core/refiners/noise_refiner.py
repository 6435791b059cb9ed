"""A noise-injection refiner (after FMRefiner, Xu & Gao, arXiv 2510.04878): the kind BFR argues against.

Training pairs come from real data alone: x0 = x + τ·ε, x1 = x (ε ~ N(0, I), τ the noise level),
fixed pairs, so the flow learns to carry a noised image back to the data manifold. At inference the
same noise is injected into a generated sample first, x_g ↦ F(x_g + τ·ε). It never sees the base's
samples: whatever it corrects, it corrects because noise hides the base's errors, not because it
has learned them. It is here to be measured against DFR at the same extra NFE.
"""

from __future__ import annotations

from pathlib import Path

import torch

from bfr_core.cli import commands as cmds
from bfr_core.infra.data import load_dataset
from bfr_core.generative.flow import FlowBatch, labels_or_none
from bfr_core.generative.nets import build_net, default_velocity_config
from bfr_core.generative.ode import ODEResult
from bfr_core.refiners.base import Refiner


def noised_batches(x_train, y_train, conditional: bool, noise_level: float):
    """Pairs (x + τ·ε, x) of a real image x with its noised copy."""
    if not noise_level > 0:
        raise ValueError(f"noise level must be positive, got {noise_level}")

    def draw(g, bs):
        idx = torch.randint(0, len(x_train), (bs,), generator=g)
        x1 = x_train[idx]
        return FlowBatch(
            x1 + noise_level * torch.randn(x1.shape, generator=g),
            x1,
            labels_or_none(y_train[idx], conditional),
        )

    return draw


def train(args, pipe) -> None:
    """``bfr train-noise-refiner``: a flow from noised real images to real ones, for ``pipe``'s bundle."""
    bundle = pipe.bundle
    ds = load_dataset(bundle.dataset, args.data_dir)
    conditional = bundle.num_classes > 0
    config = default_velocity_config(bundle.shape, bundle.num_classes, channels=args.channels)
    draw = noised_batches(ds.x_train, ds.y_train, conditional, args.noise_level)
    meta = {
        "role": "noise_refiner",
        "dataset": bundle.dataset,
        "noise_level": args.noise_level,
        "batch_size": args.batch_size,
        "sampling": {"solver": args.solver, "nfe": args.nfe},
    }
    net = build_net(config, cmds.seeded(args))
    cmds.train_and_save(args, bundle.dataset, net, config, draw, "independent", 0.0, meta)


class NoiseInjectionRefiner(Refiner):
    def apply(
        self, bundle, x, labels, alpha, solver, nfe, generator, return_trajectory=False, t1=1.0, share=None
    ) -> ODEResult:
        """F(x + τ·ε) with ε drawn from ``generator`` and τ the noise level the model was trained at;
        for a ``share`` (total, rows) of a batch, ε is the whole batch's noise at those rows."""
        tau = float(bundle.meta[self.name]["noise_level"])
        total, rows = share if share is not None else (len(x), slice(None))
        eps = torch.randn((total, *x.shape[1:]), generator=generator)[rows]
        noised = x + tau * eps
        return super().apply(bundle, noised, labels, alpha, solver, nfe, generator, return_trajectory, t1)

    def add_command(self, sub, parents):
        p = sub.add_parser(
            self.command,
            parents=parents,
            help="train a noise-injection refiner (real + noise → real), a baseline for DFR",
        )
        p.add_argument("--bundle", type=Path, required=True)
        p.add_argument(
            "--noise-level",
            type=float,
            default=0.3,
            help="τ, the std of the noise added to an image (data range [-1, 1])",
        )
        cmds.add_refiner_args(p, self.name, train)


NOISE_REFINER = NoiseInjectionRefiner(
    "noise_refiner",
    "data",
    "noise",
    "noise-injection refiner",
    "train-noise-refiner",
    rows=(("noise-refiner", None, None), ("noise-refiner-euler1", "euler", 1)),
)
