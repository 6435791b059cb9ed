"""What every training command shares: argument types and groups, the training config built from
them, resume-state paths, snapshots, and saving a model with its provenance (command line, steps,
wall time, final loss). The commands themselves live in cli.py and, for refiners, in their own
files under refiners/.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import time
from pathlib import Path

import torch

from bfr_core.infra import distributed
from bfr_core.infra.checkpoint import MAX_LATENTS_BYTES, CheckpointError, load_model, load_tensors, save_model
from bfr_core.infra.data import TOY_SETS
from bfr_core.infra.device import DEVICES, describe, resolve_device
from bfr_core.generative.ode import FIXED_SOLVERS
from bfr_core.generative.train import TrainConfig
from bfr_core.generative.flow import train_flow

STEPS = {"toy": 3000, "digits": 4000, "mnist": 6000, "cifar10": 20000}


FAMILIES = {**{name: "toy" for name in TOY_SETS}, "digits": "digits", "mnist": "mnist"}
FAMILIES |= {"fashion-mnist": "mnist", "cifar10": "cifar10"}  # the step defaults each dataset takes


def family(dataset: str) -> str:
    """The family whose default training steps ``dataset`` takes; a ValueError names an unknown one (it would
    otherwise silently get the toy default)."""
    if dataset not in FAMILIES:
        raise ValueError(f"no training defaults for dataset {dataset!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[dataset]


_INVOKED: dict[str, list[str] | None] = {"argv": None}  # what main() was called with; None: sys.argv


def record_invocation(argv: list[str] | None) -> None:
    """Remember the arguments ``main(argv)`` runs with, so that a command run in-process (by ``bfr build`` or
    a test) records its own command line, not the host process's."""
    _INVOKED["argv"] = None if argv is None else [str(a) for a in argv]


def command_line() -> str:
    """The command as typed (under torchrun, with the number of processes it ran on)."""
    argv = sys.argv[1:] if _INVOKED["argv"] is None else _INVOKED["argv"]
    launcher = "python -m bfr_core"
    if distributed.launched():
        launcher = f"torchrun --standalone --nproc_per_node {distributed.rank_and_world()[1]} -m bfr_core"
    return launcher + " " + " ".join(shlex.quote(a) for a in argv)


def train_cfg(args, desc: str, dataset: str) -> TrainConfig:
    return TrainConfig(
        steps=args.steps or STEPS[family(dataset)],
        lr=args.lr,
        seed=args.seed,
        save_every=args.save_every,
        progress=not args.quiet,
        desc=desc,
        device=args.device,
        bf16=args.bf16,
        max_seconds=args.max_seconds,
    )


def seeded(args) -> torch.Generator:
    """The generator a command's network is initialised from (``--seed``; never the global state)."""
    return torch.Generator().manual_seed(args.seed)


def state_path(bundle: Path, name: str) -> Path:
    return bundle / ".state" / f"{name}.pt"


def finish(bundle: Path, name: str, result, net_config: dict, meta: dict) -> None:
    """Save the trained model with its provenance, then drop the resume state (kept when a time box stopped
    the run early, so ``--resume`` continues it)."""
    meta = {
        **meta,
        "steps": result.steps,
        "final_loss": result.final_loss,
        "wall_s": round(result.wall_s, 2),
        "command": command_line(),
        "world_size": distributed.rank_and_world()[1],
        "device": result.device,
    }
    if distributed.is_main():  # under torchrun, rank 0 writes for everyone
        save_model(result.model, net_config, meta, bundle / f"{name}.safetensors")
        if not getattr(result, "stopped_early", False):
            state_path(bundle, name).unlink(missing_ok=True)
        print(
            f"saved {bundle / name}.safetensors ({result.steps} steps, {result.wall_s:.1f} s, "
            f"loss {result.final_loss:.4f})"
        )
    distributed.barrier()


def train_and_save(
    args,
    dataset: str,
    net,
    config: dict,
    draw,
    coupling: str,
    sigma: float,
    meta: dict,
    cfg: TrainConfig | None = None,
    ot_batch: int | None = None,
) -> None:
    """Train ``net`` as a flow on ``draw``'s pairs with the command's batch size, steps and resume
    options, then save it as BUNDLE/NAME.safetensors with ``meta`` and its provenance (``finish``).
    With ``--snapshot-at`` (and no ``cfg`` of its own), also BUNDLE/NAME_stepSTEP.safetensors."""
    if getattr(args, "init_from", None):
        meta = {**meta, **warm_start(net, config, args.bundle, args.init_from)}
    if cfg is None:
        cfg = train_cfg(args, args.name, dataset)
        if getattr(args, "snapshot_at", None):
            cfg = with_snapshots(
                cfg,
                args.snapshot_at,
                config,
                meta,
                lambda step: args.bundle / f"{args.name}_step{step}.safetensors",
            )
    result = train_flow(
        net,
        draw,
        coupling,
        sigma,
        args.batch_size,
        cfg,
        state_path(args.bundle, args.name),
        args.resume,
        ot_batch=ot_batch,
    )
    finish(args.bundle, args.name, result, config, meta)


def warm_start(net, config: dict, bundle: Path, name: str) -> dict:
    """Load the weights of BUNDLE/NAME.safetensors into ``net`` (refused unless it has the same
    network config).

    Returns the metadata that records it: ``init_from`` (NAME) and ``init_steps`` (the steps behind
    those weights, its own warm start's included).
    """
    path = bundle / f"{name}.safetensors"
    model, meta = load_model(path)
    if meta["net"] != config:
        raise ValueError(f"{path}: its network {meta['net']} differs from this run's {config}")
    net.load_state_dict(model.state_dict())
    return {"init_from": name, "init_steps": int(meta.get("init_steps", 0)) + int(meta["steps"])}


def with_snapshots(cfg: TrainConfig, steps, net_config: dict, meta: dict, path_for) -> TrainConfig:
    """Also save the model after each of ``steps`` (an earlier, shorter-trained copy of the same run)
    at ``path_for(step)``, with the same metadata, ``steps`` set to that step and ``wall_s`` the training
    time to it in this process (a resumed run counts from its resumption)."""
    cfg.snapshots = tuple(steps)
    t0 = time.perf_counter()

    def snapshot(step: int, model) -> None:
        save_model(
            model,
            net_config,
            {
                **meta,
                "steps": step,
                "snapshot_of_steps": cfg.steps,
                "wall_s": round(time.perf_counter() - t0, 2),
                "command": command_line(),
                "device": describe(resolve_device(cfg.device), cfg.bf16),
            },
            path_for(step),
        )

    cfg.on_snapshot = snapshot
    return cfg


def load_latents(bundle, name: str | None = None):
    """The bundle's cached inverted latents (z, y), or those of ``BUNDLE/NAME.safetensors``."""
    if name is not None:
        tensors, _ = load_tensors(bundle.path / f"{name}.safetensors", MAX_LATENTS_BYTES)
        if "z" not in tensors or "y" not in tensors or tensors["z"].shape[1:] != bundle.shape:
            raise CheckpointError(f"{bundle.path / name}.safetensors: not latents of this bundle's shape")
        return tensors["z"].float(), tensors["y"]
    if bundle.latents is None:
        raise CheckpointError(
            f"{bundle.path}: no latents.safetensors; "
            f"run `python -m bfr_core invert --bundle {bundle.path}` first"
        )
    return bundle.latents["z"], bundle.latents["y"]


def positive_float(s: str) -> float:
    v = float(s)
    if not (v > 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {s}")
    return v


def positive_int(s: str) -> int:
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {s}")
    return v


def model_name(s: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*", s):
        raise argparse.ArgumentTypeError(
            f"a model name is letters, digits, '_', '-' and '/' separators, got {s!r}"
        )
    return s


def add_coupling_args(p, default_name: str) -> None:
    """--ot-batch and --name, shared by the two refiners' training commands."""
    p.add_argument(
        "--ot-batch",
        type=positive_int,
        default=None,
        help="pairs coupled by minibatch OT per step, of which --batch-size are trained on "
        "(default: the batch size; larger gives closer pairs)",
    )
    add_name_arg(p, default_name)


def add_snapshot_arg(p, where: str) -> None:
    p.add_argument(
        "--snapshot-at",
        type=positive_int,
        nargs="*",
        default=[],
        metavar="STEP",
        help=f"also save the model after these steps, as {where}",
    )


def add_name_arg(p, default_name: str) -> None:
    p.add_argument(
        "--name",
        type=model_name,
        default=default_name,
        help=f"write BUNDLE/NAME.safetensors (e.g. ablation/{default_name}_variant, which the app ignores)",
    )


def probability(s: str) -> float:
    v = float(s)
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {s}")
    return v


def leak_fraction(s: str) -> float:
    v = float(s)
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {s}")
    return v


def add_training_args(p, batch_size: int, lr: float = 1e-3, velocity_net: bool = True):
    if velocity_net:
        p.add_argument("--channels", type=positive_int, default=32, help="UNet width (28x28 images only)")
    p.add_argument("--steps", type=positive_int, default=None, help="training steps (default by dataset)")
    p.add_argument("--batch-size", type=positive_int, default=batch_size)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=positive_int, default=250, help="checkpoint interval in steps")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint of a killed run")
    p.add_argument(
        "--max-seconds",
        type=positive_float,
        default=None,
        help="time box: stop after this many seconds of training and save the steps done (a GPU lease)",
    )
    add_device_args(p, bf16=True)


def add_device_args(p, bf16: bool = False):
    p.add_argument(
        "--device", choices=DEVICES, default="cpu", help="where to compute (auto: CUDA when available)"
    )
    if bf16:
        p.add_argument("--bf16", action="store_true", help="bf16 autocast of the forward pass (CUDA only)")


def add_refiner_args(p, name: str, train, *, coupling: bool = False, sampling: bool = True) -> None:
    """The tail every refiner's training command shares: --name (with --ot-batch and --snapshot-at
    when ``coupling``), the training options, the default solver/NFE when ``sampling``; runs
    ``train(args, pipe)`` on the pipeline of the bundle ``--bundle`` names."""
    if coupling:
        add_snapshot_arg(p, "BUNDLE/NAME_stepSTEP.safetensors")
        add_coupling_args(p, name)
    else:
        add_name_arg(p, name)
    add_training_args(p, 256)
    p.add_argument(
        "--init-from",
        type=model_name,
        default=None,
        help="start from the weights of BUNDLE/INIT_FROM.safetensors (same network) instead of a fresh "
        "init: a finished run trained further; its steps add to that file's",
    )
    if sampling:
        add_sampling_args(p, "rk4", 4)
    p.set_defaults(func=train, on_pipeline=True)


def add_sampling_args(p, solver: str, nfe: int):
    p.add_argument(
        "--solver", choices=FIXED_SOLVERS, default=solver, help="default solver recorded in the bundle"
    )
    p.add_argument("--nfe", type=positive_int, default=nfe, help="default network evaluations")
