"""Reflow LFR (ours): the LFR distilled into a flow that one Euler step follows.

Re-pair prior samples with where the multi-step LFR ODE takes them, z0 ~ N(0, I) ↦ z1 = F_LFR(z0)
(the teacher's solver, 20 RK4 evaluations by default), and train on those fixed pairs; the
straighter flow keeps most of the LFR's gain at one network evaluation.
"""

from __future__ import annotations

from pathlib import Path

import torch

from bfr_core.cli import commands as cmds
from bfr_core.infra.checkpoint import CheckpointError
from bfr_core.infra.device import resolve_device
from bfr_core.generative.flow import FlowBatch
from bfr_core.generative.nets import build_net
from bfr_core.generative.ode import FIXED_SOLVERS, flow_map
from bfr_core.refiners.base import Refiner


def paired_batches(x0, x1, y=None, cond=None):
    """Fixed pairs: row i of x0 always goes to row i of x1."""

    def draw(g, bs):
        idx = torch.randint(0, len(x0), (bs,), generator=g)
        return FlowBatch(x0[idx], x1[idx], None if y is None else y[idx], None if cond is None else cond[idx])

    return draw


def student_config(teacher: dict, channels: int | None) -> dict:
    """The student's network: the teacher's, or the teacher's UNet at ``channels`` width.

    A narrower student is cheaper to train and to run than a wide teacher (the one-step map it
    learns is simpler than the LFR's field). Raises ValueError for ``channels`` on an MLP teacher.
    """
    if channels is None or channels == teacher.get("channels"):
        return dict(teacher)
    if teacher.get("kind") != "unet_velocity":
        raise ValueError(f"--channels: the LFR is a {teacher.get('kind')}, not a UNet with channels")
    return {**teacher, "channels": channels}


def train(args, pipe) -> None:
    """``bfr train-lfr-reflow``: distil ``pipe``'s bundle's LFR into a one-step flow."""
    bundle = pipe.bundle.flows_to(resolve_device(args.device))  # the teacher's pairs there too
    if not bundle.has("lfr"):
        raise CheckpointError(f"{bundle.path}: no lfr.safetensors to distil; run train-lfr first")
    g = torch.Generator().manual_seed(args.seed + 1)
    n = args.pairs
    z0 = torch.randn((n, *bundle.shape), generator=g)
    labels = torch.randint(0, bundle.num_classes, (n,), generator=g) if bundle.num_classes else None
    rng = bundle.alpha_range()
    alpha = torch.rand(n, 1, generator=g) * rng[1] if rng else None
    lfr_meta = bundle.meta["lfr"]
    z1 = flow_map(
        bundle.models["lfr"],
        z0,
        labels,
        alpha,
        0.0,
        1.0,
        args.teacher_solver,
        args.teacher_nfe,
        desc=None if args.quiet else "reflow pairs",
    ).x
    config = student_config(lfr_meta["net"], args.channels)
    init = "init_from" if args.init_from else args.init
    if init == "teacher" and config != lfr_meta["net"]:
        raise ValueError(
            f"--init teacher copies the LFR's weights, so the student needs its width "
            f"({lfr_meta['net'].get('channels')} channels); use --init scratch or --init-from NAME"
        )
    net = build_net(config, cmds.seeded(args))
    if init == "teacher":  # as 2-rectified flow starts from the 1-rectified one (Liu et al., 2022)
        net.load_state_dict(bundle.models["lfr"].state_dict())
    meta = {
        "role": "lfr_reflow",
        "dataset": bundle.dataset,
        "alpha": lfr_meta.get("alpha"),
        "alpha_max": lfr_meta.get("alpha_max"),
        "alpha_default": lfr_meta.get("alpha_default"),
        "pairs": n,
        "init": init,
        "teacher": {  # which LFR was distilled: its own card's command, steps and width
            "solver": args.teacher_solver,
            "nfe": args.teacher_nfe,
            "command": lfr_meta.get("command"),
            "steps": lfr_meta.get("steps"),
            "channels": lfr_meta["net"].get("channels"),
        },
        "sampling": {"solver": "euler", "nfe": 1},
    }
    cmds.train_and_save(
        args, bundle.dataset, net, config, paired_batches(z0, z1, labels, alpha), "paired", 0.0, meta
    )


class ReflowRefiner(Refiner):
    def add_command(self, sub, parents):
        p = sub.add_parser(
            self.command, parents=parents, help="distil the LFR ODE into a one-Euler-step refiner"
        )
        p.add_argument("--bundle", type=Path, required=True)
        p.add_argument("--pairs", type=cmds.positive_int, default=20000)
        p.add_argument("--teacher-solver", choices=FIXED_SOLVERS, default="rk4")
        p.add_argument("--teacher-nfe", type=cmds.positive_int, default=20)
        p.add_argument(
            "--init",
            choices=["teacher", "scratch"],
            default="teacher",
            help="start from the LFR's weights (default) or from a fresh network",
        )
        cmds.add_snapshot_arg(p, "BUNDLE/NAME_stepSTEP.safetensors")
        cmds.add_refiner_args(p, self.name, train, sampling=False)
        p.set_defaults(channels=None)  # the teacher's network unless --channels says another UNet width


LFR_REFLOW = ReflowRefiner(
    "lfr_reflow", "latent", "reflow", "reflow LFR", "reflow-lfr", rows=(("lfr-reflow-euler1", None, None),)
)
