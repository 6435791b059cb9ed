"""The generative stages from the command line: ``train-base``, ``train-classifier`` and ``invert``."""

from __future__ import annotations

import json


from bfr_core.infra.device import describe, resolve_device
from bfr_core.infra.checkpoint import MAX_LATENTS_BYTES, load_model, load_tensors, save_tensors
from bfr_core.infra import distributed
from bfr_core.eval.classifier import accuracy, classifier_loss
from bfr_core.cli.commands import (
    command_line,
    finish,
    seeded,
    state_path,
    train_cfg,
    with_snapshots,
)
from bfr_core.infra.data import load_dataset
from bfr_core.generative.flow import base_batches, train_flow
from bfr_core.eval.metrics import latent_bias
from bfr_core.generative.nets import build_net, default_classifier_config, default_velocity_config
from bfr_core.generative.inversion import invert_resumably
from bfr_core.generative.ode import flow_map
from bfr_core.bundle import Bundle
from bfr_core.generative.train import fit


# ----------------------------------------------------------------------------- commands


def cmd_train_base(args):
    ds = load_dataset(args.dataset, args.data_dir)
    conditional = ds.num_classes > 1 and not args.unconditional
    config = default_velocity_config(ds.shape, ds.num_classes if conditional else 0, channels=args.channels)
    meta = {
        "role": "base",
        "dataset": ds.name,
        "sigma": args.sigma,
        "batch_size": args.batch_size,
        "leak": args.leak,
        "sampling": {"solver": args.solver, "nfe": args.nfe},
    }
    cfg = with_snapshots(
        train_cfg(args, "base", ds.name),
        args.snapshot_at,
        config,
        meta,
        lambda step: args.out / "snapshots" / f"base_step{step}" / "base.safetensors",
    )
    result = train_flow(
        build_net(config, seeded(args)),
        base_batches(ds.x_train, ds.y_train, conditional, args.leak),
        "independent",
        args.sigma,
        args.batch_size,
        cfg,
        state_path(args.out, "base"),
        args.resume,
    )
    finish(args.out, "base", result, config, meta)


def cmd_train_classifier(args):
    dataset = args.dataset or load_model(args.bundle / "base.safetensors")[1]["dataset"]
    ds = load_dataset(dataset, args.data_dir)
    config = default_classifier_config(ds.shape, ds.num_classes, args.arch)
    cfg = train_cfg(args, args.name, ds.name)
    cfg.ema_decay = 0.0
    loss_fn = classifier_loss(ds.x_train, ds.y_train, args.batch_size, args.noise, args.max_shift)
    result = fit(
        build_net(config, seeded(args)), loss_fn, cfg, state_path(args.bundle, args.name), args.resume
    )
    acc = accuracy(result.model, ds.x_test, ds.y_test)
    if distributed.is_main():
        print(f"{args.name} test accuracy: {acc:.4f}")
    finish(
        args.bundle,
        args.name,
        result,
        config,
        {
            "role": args.name,
            "dataset": ds.name,
            "test_accuracy": acc,
            "noise": args.noise,
            "max_shift": args.max_shift,
            "seed": args.seed,
        },
    )


def cmd_invert(args):
    bundle = Bundle(args.bundle)
    ds = load_dataset(bundle.dataset, args.data_dir)
    n = min(args.n or len(ds.x_train), len(ds.x_train))
    x, y = ds.x_train[:n], ds.y_train[:n]
    labels = y if bundle.num_classes else None
    state = state_path(args.bundle, args.name)
    base = bundle.models["base"].to(resolve_device(args.device))
    z, wall = invert_resumably(
        base, x, labels, args.solver, args.nfe, args.chunk, state, resume=args.resume, quiet=args.quiet
    )
    if not distributed.is_main():
        return
    x_back = flow_map(
        base,
        z[:500],
        None if labels is None else labels[:500],
        None,
        0.0,
        1.0,
        args.solver,
        args.nfe,
    ).x
    round_trip = float((x_back - x[:500]).abs().mean())
    bias = latent_bias(z)
    meta = {
        "role": "latents",
        "dataset": ds.name,
        "n": n,
        "solver": args.solver,
        "nfe": args.nfe,
        "round_trip_mae": round_trip,
        "latent_bias": bias,
        "wall_s": round(wall, 2),
        "command": command_line(),
        "world_size": distributed.rank_and_world()[1],
        "device": describe(resolve_device(args.device)),
    }
    save_tensors({"z": z.half(), "y": y}, meta, args.bundle / f"{args.name}.safetensors")
    state.unlink(missing_ok=True)
    print(
        json.dumps(
            {"inverted": n, "round_trip_mae": round_trip, "latent_bias": bias, "wall_s": round(wall, 1)},
            indent=1,
        )
    )


def cmd_keep_latents(args):
    """Keep the first ``--n`` cached latents (the Latents map reads its first points; a click indexes them),
    so a bundle whose full cache is over the file-size cap still ships one. The LFR trained on them all;
    the metadata's round trip and latent bias stay those of every inverted image (``inverted``)."""
    path = args.bundle / "latents.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no cached latents to keep; run `bfr invert` first")
    tensors, meta = load_tensors(path, MAX_LATENTS_BYTES)
    total = int(meta.get("inverted", len(tensors["z"])))
    if args.n > len(tensors["z"]):
        raise ValueError(f"--n {args.n} is more than the {len(tensors['z'])} latents in {path}")
    kept = {k: v[: args.n].clone() for k, v in tensors.items()}
    save_tensors(kept, {**meta, "n": args.n, "inverted": total, "kept_by": command_line()}, path)
    print(f"kept the first {args.n} of {total} latents in {path}")
