"""LFR, the latent-space refiner (the paper's LFR).

Invert real data through the base ODE, z_b = G⁻¹(x) (``bfr invert``); mix the targets
    z1 = √(1 − a)·z_b + √a·ε,   a ~ U(0, α),   ε ~ N(0, I);
and train a flow N(0, I) → z1 with minibatch OT coupling. Sample z ~ N(0, I) → F(z) → G.
With ``--alpha-max`` each pair draws its own α ~ U(0, α_max) and the network receives α as an
input, so one refiner serves every α in [0, α_max].
"""

from __future__ import annotations

from pathlib import Path

import torch

from bfr_core.cli import commands as cmds
from bfr_core.generative.flow import FlowBatch, labels_or_none
from bfr_core.generative.nets import build_net, default_velocity_config
from bfr_core.refiners.base import Refiner, solver_rows


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


def lfr_batches(z_b, y, conditional: bool, alpha: float | None = None, alpha_max: float | None = None):
    """Pairs (ε ~ N(0, I), α-mixed biased latent); with ``alpha_max`` α becomes an input (``cond``)."""
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


def train(args, pipe) -> None:
    """``bfr train-lfr``: a flow from the prior to the biased latents cached in ``pipe``'s bundle."""
    bundle = pipe.bundle
    z_b, y = cmds.load_latents(bundle, args.latents)
    z_b, y = z_b[: args.latents_n], y[: args.latents_n]  # the data axis of the capacity study
    conditional = bundle.num_classes > 0
    config = default_velocity_config(
        bundle.shape,
        bundle.num_classes,
        cond_dim=1 if args.alpha_max is not None else 0,
        channels=args.channels,
    )
    draw = lfr_batches(
        z_b, y, conditional, None if args.alpha_max is not None else args.alpha, args.alpha_max
    )
    meta = {
        "role": "lfr",
        "dataset": bundle.dataset,
        "alpha": None if args.alpha_max is not None else args.alpha,
        "alpha_max": args.alpha_max,
        "alpha_default": args.alpha,
        "sigma": args.sigma,
        "coupling": "ot",
        "batch_size": args.batch_size,
        "ot_batch": max(args.ot_batch or 0, args.batch_size),
        "latents": len(z_b),
        "latents_file": args.latents,
        "sampling": {"solver": args.solver, "nfe": args.nfe},
    }
    net = build_net(config, cmds.seeded(args))
    cmds.train_and_save(
        args, bundle.dataset, net, config, draw, "ot", args.sigma, meta, ot_batch=args.ot_batch
    )


class LatentFlowRefiner(Refiner):
    def add_command(self, sub, parents):
        p = sub.add_parser(
            self.command, parents=parents, help="train the latent-space refiner N(0,I) → mixed biased latents"
        )
        arg, prob, count = p.add_argument, cmds.probability, cmds.positive_int
        arg("--bundle", type=Path, required=True)
        arg("--alpha", type=prob, default=0.2, help="mixing coefficient α (default when --alpha-max)")
        arg("--alpha-max", type=prob, default=None, help="train one α-conditioned net for α in [0, max]")
        arg("--sigma", type=float, default=0.1, help="path noise σ")
        arg("--latents-n", type=count, default=None, help="train on the first N inverted latents")
        arg("--latents", type=cmds.model_name, default=None, help="train on BUNDLE/LATENTS.safetensors")
        cmds.add_refiner_args(p, self.name, train, coupling=True)


LFR = LatentFlowRefiner("lfr", "latent", "ode", "LFR", "train-lfr", rows=solver_rows("lfr"))
