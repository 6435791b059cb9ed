"""Command line: ``python -m bfr_core <command> --help``.

Every command is thin over the library and records its own command line, step count and
wall time in the files it writes. Errors print one line and exit with status 2.
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .classifier import accuracy, classifier_loss
from .checkpoint import CheckpointError, load_model, save_model, save_tensors
from .data import DATASETS, DataError, load_dataset
from .evaluate import evaluate_bundle, scorer_for
from .images import picture
from .metrics import latent_bias
from .nets import build_net, default_classifier_config, default_velocity_config
from .ode import FIXED_SOLVERS, DivergenceError
from .pipeline import FEATURE_EXTRACTORS, MODES, Bundle, Pipeline, Settings
from .reference import FILE as REFERENCE_FILE
from .reference import reference_from_data, save_reference
from .sweep import SWEEP_FILE, nfe_sweep
from .refine import (Augment, base_batches, dfr_batches, flow_map, invert, lfr_batches,
                     paired_batches, train_flow)
from .train import TrainConfig, fit

STEPS = {"toy": 3000, "digits": 4000, "mnist": 6000}


def family(dataset: str) -> str:
    return "digits" if dataset == "digits" else "mnist" if dataset in ("mnist", "fashion-mnist") else "toy"


def command_line() -> str:
    return "python -m bfr_core " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def train_cfg(args, desc: str, dataset: str) -> TrainConfig:
    return TrainConfig(steps=args.steps or STEPS[family(dataset)], lr=args.lr, seed=args.seed,
                       save_every=args.save_every, progress=not args.quiet, desc=desc)


def seeded(args) -> torch.Generator:
    """The generator a command's network is initialised from (``--seed``; never the global state)."""
    return torch.Generator().manual_seed(args.seed)


def state_path(bundle: Path, name: str) -> Path:
    return bundle / ".state" / f"{name}.pt"


def finish(bundle: Path, name: str, result, net_config: dict, meta: dict) -> None:
    """Save the trained model with its provenance, then drop the resume state."""
    meta = {**meta, "steps": result.steps, "final_loss": result.final_loss,
            "wall_s": round(result.wall_s, 2), "command": command_line()}
    save_model(result.model, net_config, meta, bundle / f"{name}.safetensors")
    state_path(bundle, name).unlink(missing_ok=True)
    print(f"saved {bundle / name}.safetensors ({result.steps} steps, {result.wall_s:.1f} s, loss {result.final_loss:.4f})")


# ----------------------------------------------------------------------------- commands
def cmd_train_base(args):
    ds = load_dataset(args.dataset, args.data_dir)
    conditional = ds.num_classes > 1 and not args.unconditional
    config = default_velocity_config(ds.shape, ds.num_classes if conditional else 0, channels=args.channels)
    meta = {"role": "base", "dataset": ds.name, "sigma": args.sigma, "batch_size": args.batch_size,
            "leak": args.leak, "sampling": {"solver": args.solver, "nfe": args.nfe}}
    cfg = train_cfg(args, "base", ds.name)
    cfg.snapshots = tuple(args.snapshot_at)

    def snapshot(step: int, model) -> None:  # an earlier, weaker base, e.g. for cross-model transfer
        path = args.out / "snapshots" / f"base_step{step}" / "base.safetensors"
        save_model(model, config, {**meta, "steps": step, "snapshot_of": str(args.out), "command": command_line()}, path)

    cfg.on_snapshot = snapshot
    result = train_flow(build_net(config, seeded(args)), base_batches(ds.x_train, ds.y_train, conditional, args.leak),
                        "independent",
                        args.sigma, args.batch_size, cfg, state_path(args.out, "base"), args.resume)
    finish(args.out, "base", result, config, meta)


def cmd_train_classifier(args):
    bundle_meta = load_model(args.bundle / "base.safetensors")[1]
    ds = load_dataset(bundle_meta["dataset"], args.data_dir)
    config = default_classifier_config(ds.shape, ds.num_classes, args.arch)
    cfg = train_cfg(args, args.name, ds.name)
    cfg.ema_decay = 0.0
    loss_fn = classifier_loss(ds.x_train, ds.y_train, args.batch_size, args.noise, args.max_shift)
    result = fit(build_net(config, seeded(args)), loss_fn, cfg, state_path(args.bundle, args.name), args.resume)
    acc = accuracy(result.model, ds.x_test, ds.y_test)
    print(f"{args.name} test accuracy: {acc:.4f}")
    finish(args.bundle, args.name, result, config, {"role": args.name, "dataset": ds.name, "test_accuracy": acc,
           "noise": args.noise, "max_shift": args.max_shift, "seed": args.seed})


def cmd_invert(args):
    bundle = Bundle(args.bundle)
    ds = load_dataset(bundle.dataset, args.data_dir)
    n = min(args.n or len(ds.x_train), len(ds.x_train))
    x, y = ds.x_train[:n], ds.y_train[:n]
    labels = y if bundle.num_classes else None
    t0 = time.perf_counter()
    z = invert(bundle.models["base"], x, labels, args.solver, args.nfe, desc=None if args.quiet else "invert")
    wall = time.perf_counter() - t0
    x_back, _ = flow_map(bundle.models["base"], z[:500], None if labels is None else labels[:500], None, 0.0, 1.0,
                         args.solver, args.nfe)
    round_trip = float((x_back - x[:500]).abs().mean())
    bias = latent_bias(z)
    meta = {"role": "latents", "dataset": ds.name, "n": n, "solver": args.solver, "nfe": args.nfe,
            "round_trip_mae": round_trip, "latent_bias": bias, "wall_s": round(wall, 2), "command": command_line()}
    save_tensors({"z": z.half(), "y": y}, meta, args.bundle / "latents.safetensors")
    print(json.dumps({"inverted": n, "round_trip_mae": round_trip, "latent_bias": bias, "wall_s": round(wall, 1)}, indent=1))


def load_latents(bundle: Bundle):
    if bundle.latents is None:
        raise CheckpointError(f"{bundle.path}: no latents.safetensors; run `python -m bfr_core invert --bundle {bundle.path}` first")
    return bundle.latents["z"], bundle.latents["y"]


def cmd_train_lfr(args):
    bundle = Bundle(args.bundle)
    z_b, y = load_latents(bundle)
    conditional = bundle.num_classes > 0
    config = default_velocity_config(bundle.shape, bundle.num_classes, cond_dim=1 if args.alpha_max is not None else 0,
                                     channels=args.channels)
    draw = lfr_batches(z_b, y, conditional, None if args.alpha_max is not None else args.alpha, args.alpha_max)
    result = train_flow(build_net(config, seeded(args)), draw, "ot", args.sigma, args.batch_size,
                        train_cfg(args, args.name, bundle.dataset), state_path(args.bundle, args.name), args.resume,
                        ot_batch=args.ot_batch)
    finish(args.bundle, args.name, result, config, {
        "role": "lfr", "dataset": bundle.dataset, "alpha": None if args.alpha_max is not None else args.alpha,
        "alpha_max": args.alpha_max, "alpha_default": args.alpha, "sigma": args.sigma, "coupling": "ot",
        "batch_size": args.batch_size, "ot_batch": max(args.ot_batch or 0, args.batch_size),
        "sampling": {"solver": args.solver, "nfe": args.nfe}})


def cmd_reflow_lfr(args):
    bundle = Bundle(args.bundle)
    if not bundle.has("lfr"):
        raise CheckpointError(f"{bundle.path}: no lfr.safetensors to distil; run train-lfr first")
    g = torch.Generator().manual_seed(args.seed + 1)
    n = args.pairs
    z0 = torch.randn((n, *bundle.shape), generator=g)
    labels = torch.randint(0, bundle.num_classes, (n,), generator=g) if bundle.num_classes else None
    rng = bundle.alpha_range()
    cond = torch.rand(n, 1, generator=g) * rng[1] if rng else None
    lfr_meta = bundle.meta["lfr"]
    z1, _ = flow_map(bundle.models["lfr"], z0, labels, cond, 0.0, 1.0, args.teacher_solver, args.teacher_nfe,
                     desc=None if args.quiet else "reflow pairs")
    config = lfr_meta["net"]
    net = build_net(config, seeded(args))
    if args.init == "teacher":  # as 2-rectified flow starts from the 1-rectified one (Liu et al., 2022)
        net.load_state_dict(bundle.models["lfr"].state_dict())
    result = train_flow(net, paired_batches(z0, z1, labels, cond), "paired", 0.0, args.batch_size,
                        train_cfg(args, args.name, bundle.dataset), state_path(args.bundle, args.name), args.resume)
    finish(args.bundle, args.name, result, config, {
        "role": "lfr_reflow", "dataset": bundle.dataset, "alpha": lfr_meta.get("alpha"),
        "alpha_max": lfr_meta.get("alpha_max"), "alpha_default": lfr_meta.get("alpha_default"),
        "pairs": n, "init": args.init, "teacher": {"solver": args.teacher_solver, "nfe": args.teacher_nfe},
        "sampling": {"solver": "euler", "nfe": 1}})


def cmd_train_dfr(args):
    bundle = Bundle(args.bundle)
    ds = load_dataset(bundle.dataset, args.data_dir)
    pipe = Pipeline(bundle)
    t0 = time.perf_counter()
    pool = pipe.run(args.pool, seed=args.seed + 2, settings=Settings(mode="none"))
    pool_s = time.perf_counter() - t0
    conditional = bundle.num_classes > 0
    augment = Augment(args.noise_p, args.noise_std, args.blur_p, args.blur_sigma_min, args.blur_sigma_max)
    pool_y = pool.labels if conditional else torch.zeros(len(pool.base), dtype=torch.long)
    draw = dfr_batches(pool.base, pool_y, ds.x_train, ds.y_train, conditional, augment)
    config = default_velocity_config(bundle.shape, bundle.num_classes, channels=args.channels)
    result = train_flow(build_net(config, seeded(args)), draw, "ot-per-class" if conditional else "ot", args.sigma, args.batch_size,
                        train_cfg(args, args.name, bundle.dataset), state_path(args.bundle, args.name), args.resume,
                        ot_batch=args.ot_batch)
    finish(args.bundle, args.name, result, config, {
        "role": "dfr", "dataset": bundle.dataset, "pool": args.pool, "pool_wall_s": round(pool_s, 2),
        "augment": augment.to_dict(), "sigma": args.sigma, "batch_size": args.batch_size,
        "ot_batch": max(args.ot_batch or 0, args.batch_size), "coupling": "ot-per-class" if conditional else "ot", "sampling": {"solver": args.solver, "nfe": args.nfe}})


def cmd_reference(args):
    bundle = Bundle(args.bundle)
    ds = load_dataset(bundle.dataset, args.data_dir)
    if not ds.is_image or not bundle.has("classifier"):
        raise ValueError(f"{bundle.path}: a reference needs an image dataset and classifier.safetensors")
    ref = reference_from_data(bundle, ds)
    save_reference(ref, ds.y_test, {"dataset": ds.name, "test_images": len(ds.x_test), "command": command_line(),
                                    "extractors": [n for n in FEATURE_EXTRACTORS if bundle.has(n)]},
                   args.bundle / REFERENCE_FILE)
    print(f"wrote {args.bundle / REFERENCE_FILE}: features of {len(ds.x_test)} test images")


def cmd_sweep(args):
    bundle = Bundle(args.bundle)
    pipe = Pipeline(bundle)
    alpha = pipe.resolve(Settings(mode="none")).alpha
    t0 = time.perf_counter()
    sweep = nfe_sweep(pipe, scorer_for(bundle, args.data_dir), n=args.n, seed=args.seed, alpha=alpha,
                      progress=None if args.quiet else lambda f, text: print(f"{f:4.0%} {text}", flush=True))
    out = {"command": command_line(), "date": time.strftime("%Y-%m-%d"), "n": args.n, "seed": args.seed,
           "alpha": alpha, "wall_s": round(time.perf_counter() - t0, 1),
           "sweep": sweep}
    (args.bundle / SWEEP_FILE).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.bundle / SWEEP_FILE} in {out['wall_s']} s")


def settings_from(args) -> Settings:
    return Settings(mode=args.mode, base_solver=args.base_solver, base_nfe=args.base_nfe, lfr_variant=args.lfr_variant,
                    lfr_solver=args.lfr_solver, lfr_nfe=args.lfr_nfe, alpha=args.alpha,
                    dfr_solver=args.dfr_solver, dfr_nfe=args.dfr_nfe)


def cmd_sample(args):
    pipe = Pipeline(args.bundle)
    st = pipe.run(args.n, args.seed, settings_from(args), label=args.label)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".npy":  # the raw samples, for anyone's own metric
        np.save(args.out, st.final.float().numpy())
    else:
        picture(st.final).save(args.out)
    print(f"wrote {args.out}: {args.n} samples, mode {st.settings.mode}, NFE {st.nfe}")


def cmd_evaluate(args):
    t0 = time.perf_counter()
    rows = evaluate_bundle(Bundle(args.bundle), args.n, args.seed, args.data_dir, progress=not args.quiet)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    for name, r in rows.items():
        score = f"fid {r['fid']:8.3f}" if "fid" in r else f"energy {r['energy']:.4f}"
        score += f"  fid2 {r['fid2']:8.3f}" if "fid2" in r else ""
        mem = f"  memorisation {r['memorisation_ratio']:.3f}" if "memorisation_ratio" in r else ""
        print(f"{name:20s} {score}  extra NFE {r['extra_nfe']:3d} ({r['solver']}){mem}")
    print(f"wrote {args.out} in {time.perf_counter() - t0:.1f} s")


# ----------------------------------------------------------------------------- parser
def positive_int(s: str) -> int:
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {s}")
    return v


def model_name(s: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*", s):
        raise argparse.ArgumentTypeError(f"a model name is letters, digits, '_', '-' and '/' separators, got {s!r}")
    return s


def add_coupling_args(p, default_name: str) -> None:
    """--ot-batch and --name, shared by the two refiners' training commands."""
    p.add_argument("--ot-batch", type=positive_int, default=None,
                   help="pairs coupled by minibatch OT per step, of which --batch-size are trained on "
                        "(default: the batch size; larger gives closer pairs)")
    add_name_arg(p, default_name)


def add_name_arg(p, default_name: str) -> None:
    p.add_argument("--name", type=model_name, default=default_name,
                   help=f"write BUNDLE/NAME.safetensors (e.g. ablation/{default_name}_variant, which the app ignores)")


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


def add_sampling_args(p, solver: str, nfe: int):
    p.add_argument("--solver", choices=FIXED_SOLVERS, default=solver,
                   help="default solver recorded in the bundle")
    p.add_argument("--nfe", type=positive_int, default=nfe, help="default network evaluations")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)  # accepted before or after the command
    common.add_argument("--data-dir", default=argparse.SUPPRESS,
                        help="directory with MNIST/Fashion-MNIST IDX files (or set BFR_DATA_DIR)")
    common.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")
    ap = argparse.ArgumentParser(prog="python -m bfr_core", parents=[common],
                                 description="BFR Explorer: bias-correcting flow refiners.")
    # No ap.set_defaults(quiet=...): parents share action objects, so it would reset the subcommands' SUPPRESS.
    sub = ap.add_subparsers(dest="command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, parents=[common])

    p = command("train-base", "train the base flow-matching generator")
    p.add_argument("--dataset", choices=DATASETS, required=True)
    p.add_argument("--out", type=Path, required=True, help="bundle directory")
    p.add_argument("--unconditional", action="store_true", help="ignore labels")
    p.add_argument("--sigma", type=float, default=0.0, help="path noise σ")
    p.add_argument("--leak", type=leak_fraction, default=0.0,
                   help="train from sources √(1-l²)·ε + l·x but sample from pure N(0, I): a signal-leak bias")
    p.add_argument("--snapshot-at", type=positive_int, nargs="*", default=[], metavar="STEP",
                   help="also save the base after these steps, as OUT/snapshots/base_stepSTEP/base.safetensors")
    add_training_args(p, 256)
    add_sampling_args(p, "rk4", 20)
    p.set_defaults(func=cmd_train_base)

    p = command("train-classifier", "train a metric feature extractor (classifier) for the bundle's dataset")
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--name", choices=FEATURE_EXTRACTORS, default="classifier",
                   help="classifier: the bundle's metric; classifier2: an independent second metric "
                        "(train it with another --arch, --seed and augmentation)")
    p.add_argument("--arch", choices=["cnn", "cnn-wide", "mlp"], default=None,
                   help="network family (default: cnn for 28x28 images, mlp for small ones; cnn-wide: 48 channels, "
                        "64 features)")
    p.add_argument("--noise", type=float, default=0.3, help="std of training-time input noise")
    p.add_argument("--max-shift", type=int, default=1, help="random shift in pixels at training time")
    add_training_args(p, 256, velocity_net=False)
    p.set_defaults(func=cmd_train_classifier)

    p = command("invert", "invert real training data: z_b = G⁻¹(x), cached in latents.safetensors")
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--n", type=positive_int, default=None, help="images to invert (default all)")
    add_sampling_args(p, "rk4", 20)
    p.set_defaults(func=cmd_invert)

    p = command("train-lfr", "train the latent-space refiner N(0,I) → mixed biased latents")
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--alpha", type=probability, default=0.2, help="mixing coefficient α (default when --alpha-max)")
    p.add_argument("--alpha-max", type=probability, default=None, help="train one α-conditioned net for α in [0, max]")
    p.add_argument("--sigma", type=float, default=0.1, help="path noise σ")
    add_coupling_args(p, "lfr")
    add_training_args(p, 256)
    add_sampling_args(p, "rk4", 4)
    p.set_defaults(func=cmd_train_lfr)

    p = command("reflow-lfr", "distil the LFR ODE into a one-Euler-step refiner")
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--pairs", type=positive_int, default=20000)
    p.add_argument("--teacher-solver", choices=FIXED_SOLVERS, default="rk4")
    p.add_argument("--teacher-nfe", type=positive_int, default=20)
    p.add_argument("--init", choices=["teacher", "scratch"], default="teacher",
                   help="start from the LFR's weights (default) or from a fresh network")
    add_name_arg(p, "lfr_reflow")
    add_training_args(p, 256)
    p.set_defaults(func=cmd_reflow_lfr)

    p = command("train-dfr", "train the data-space refiner generated → real")
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--pool", type=positive_int, default=4096, help="generated samples to refine from")
    p.add_argument("--noise-p", type=probability, default=0.0)
    p.add_argument("--noise-std", type=float, default=0.01)
    p.add_argument("--blur-p", type=probability, default=0.3)
    p.add_argument("--blur-sigma-min", type=float, default=0.01)
    p.add_argument("--blur-sigma-max", type=float, default=0.02)
    p.add_argument("--sigma", type=float, default=0.0, help="path noise σ")
    add_coupling_args(p, "dfr")
    add_training_args(p, 256)
    add_sampling_args(p, "rk4", 4)
    p.set_defaults(func=cmd_train_dfr)

    p = command("reference", "store the test split's features in the bundle, so scoring needs no dataset")
    p.add_argument("--bundle", type=Path, required=True)
    p.set_defaults(func=cmd_reference)

    p = command("sweep", "measure quality against refiner NFE and store it in the bundle (Over-refinement view)")
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--n", type=positive_int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_sweep)

    p = command("sample", "write a PNG of samples")
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--n", type=positive_int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--label", type=int, default=None, help="class to draw (conditional bases)")
    p.add_argument("--mode", choices=MODES, default="lfr+dfr")
    p.add_argument("--lfr-variant", choices=["ode", "reflow"], default="ode")
    p.add_argument("--alpha", type=probability, default=None)
    for stage in ("base", "lfr", "dfr"):
        p.add_argument(f"--{stage}-solver", choices=FIXED_SOLVERS, default=None)
        p.add_argument(f"--{stage}-nfe", type=positive_int, default=None)
    p.add_argument("--out", type=Path, required=True,
                   help="a .png grid, or .npy for the raw float32 samples (N×C×H×W in [-1, 1], not clipped)")
    p.set_defaults(func=cmd_sample)

    p = command("evaluate", "metrics of base / LFR / DFR against the held-out test split")
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--n", type=positive_int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_evaluate)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.quiet, args.data_dir = getattr(args, "quiet", False), getattr(args, "data_dir", None)
    try:
        args.func(args)
    except (DataError, CheckpointError, ValueError, DivergenceError, FloatingPointError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; the last checkpoint is kept: rerun the same command with --resume", file=sys.stderr)
        return 130
    return 0
