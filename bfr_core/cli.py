"""Command line: ``python -m bfr_core <command> --help``.

Every command is thin over the library and records its own command line, step count and
wall time in the files it writes. Errors print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .budget import BUDGET_FILE, worth_its_nfe
from .device import describe, resolve_device
from .checkpoint import CheckpointError, atomic_torch_save, load_model, load_train_state, save_tensors
from . import distributed
from .classifier import accuracy, classifier_loss
from .commands import (
    add_device_args,
    add_sampling_args,
    add_name_arg,
    add_snapshot_arg,
    add_training_args,
    command_line,
    finish,
    leak_fraction,
    positive_int,
    probability,
    seeded,
    state_path,
    train_cfg,
    with_snapshots,
)
from .data import DATASETS, DataError, load_dataset
from .evaluate import evaluate_bundle, scorer_for
from .flow import base_batches, train_flow
from .images import picture
from .metrics import latent_bias
from .nets import build_net, default_classifier_config, default_velocity_config
from .ode import FIXED_SOLVERS, DivergenceError, flow_map, invert
from .inception import WEIGHTS_ENV
from .latent_view import MAP_FILE, MAP_POINTS, MAP_REFINED_BUDGET, build_latent_map
from .pipeline import FEATURE_EXTRACTORS, MODES, Bundle, Pipeline, Settings
from .reference import FILE as REFERENCE_FILE
from .reference import reference_from_data, save_reference
from .refiners import REFINERS, variants
from .roundtrip import EXAMPLES_FILE, save_examples
from .sweep import (
    ALPHA_MAP_FILE,
    OVERSHOOT_FILE,
    SWEEP_FILE,
    alpha_nfe_map,
    load_sweep,
    merge_sweep,
    nfe_sweep,
    overshoot_tensors,
    same_metrics,
    sibling_sweep,
)
from .train import fit


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


def invert_resumably(base, x, labels, args, state: Path) -> tuple[torch.Tensor, float]:
    """Invert ``x`` chunk by chunk, saving the latents done so far to ``state`` after every chunk.

    Returns (z, wall seconds summed over every run that contributed). With ``--resume`` a killed
    run continues after its last finished chunk; under torchrun each rank inverts its share of
    each chunk and all shares are gathered, so every rank holds the same partial result.
    """
    n, chunk = len(x), args.chunk
    settings = {"n": n, "solver": args.solver, "nfe": args.nfe, "chunk": chunk}
    z, done, wall = torch.empty(n, *x.shape[1:]), 0, 0.0
    if args.resume and state.exists():
        saved = load_train_state(state)
        if {k: saved.get(k) for k in settings} != settings:
            raise ValueError(
                f"{state}: was started with { ({k: saved.get(k) for k in settings}) }, not {settings}; "
                "rerun without --resume to start over"
            )
        done, wall = int(saved["done"]), float(saved["wall_s"])
        z[:done] = saved["z"].float()
    bar = None if args.quiet or not distributed.is_main() else tqdm(total=n, initial=done, desc="invert")
    while done < n:
        t0 = time.perf_counter()
        rows = slice(done, min(done + chunk, n))
        part = x[rows]
        mine = distributed.rows_of(len(part))  # under torchrun each rank inverts its share of the chunk
        z_part = invert(
            base, part[mine], None if labels is None else labels[rows][mine], args.solver, args.nfe, desc=None
        )
        z[rows] = distributed.gather_rows(z_part, len(part))
        done, wall = rows.stop, wall + time.perf_counter() - t0
        if distributed.is_main():
            atomic_torch_save({**settings, "done": done, "wall_s": wall, "z": z[:done].half()}, state)
        if bar is not None:
            bar.update(rows.stop - rows.start)
    if bar is not None:
        bar.close()
    return z, wall


def cmd_invert(args):
    bundle = Bundle(args.bundle)
    ds = load_dataset(bundle.dataset, args.data_dir)
    n = min(args.n or len(ds.x_train), len(ds.x_train))
    x, y = ds.x_train[:n], ds.y_train[:n]
    labels = y if bundle.num_classes else None
    state = state_path(args.bundle, args.name)
    base = bundle.models["base"].to(resolve_device(args.device))
    z, wall = invert_resumably(base, x, labels, args, state)
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


def cmd_reference(args):
    bundle = Bundle(args.bundle)
    ds = load_dataset(bundle.dataset, args.data_dir)
    if not ds.is_image or not bundle.has("classifier"):
        raise ValueError(f"{bundle.path}: a reference needs an image dataset and classifier.safetensors")
    ref = reference_from_data(bundle, ds)
    save_reference(
        ref,
        ds.y_test,
        {
            "dataset": ds.name,
            "test_images": len(ds.x_test),
            "command": command_line(),
            "extractors": [n for n in FEATURE_EXTRACTORS if bundle.has(n)],
        },
        args.bundle / REFERENCE_FILE,
    )
    print(f"wrote {args.bundle / REFERENCE_FILE}: features of {len(ds.x_test)} test images")


def cmd_inception_reference(args):
    from .inception import REFERENCE_FILE as INCEPTION_FILE
    from .inception import load_inception, reference_stats, weights_path

    bundle = Bundle(args.bundle)
    ds = load_dataset(bundle.dataset, args.data_dir)
    if not ds.is_image:
        raise ValueError(f"{bundle.path}: Inception statistics need an image dataset; {ds.name} is not one")
    net = load_inception(args.inception_weights, resolve_device(args.device))
    t0 = time.perf_counter()
    images = {"train": ds.x_train[: args.max_images], "test": ds.x_test[: args.max_images]}
    tensors = reference_stats(net, images)
    meta = {
        "dataset": ds.name,
        "n": {split: len(x) for split, x in images.items()},
        "weights": weights_path(args.inception_weights).name,
        "protocol": "torch-fidelity: 8-bit levels, TF1 bilinear resize to 299, (q - 128) / 128",
        "device": str(net.Conv2d_1a_3x3.conv.weight.device),
        "wall_s": round(time.perf_counter() - t0, 1),
        "command": command_line(),
    }
    save_tensors(tensors, meta, args.bundle / f"{INCEPTION_FILE}.safetensors")
    print(f"wrote {args.bundle / INCEPTION_FILE}.safetensors: {meta['n']} images, {meta['wall_s']} s")


def cmd_examples(args):
    bundle = Bundle(args.bundle)
    ds = load_dataset(bundle.dataset, args.data_dir)
    if not ds.is_image:
        raise ValueError(f"{bundle.path}: examples are images; {ds.name} is not an image dataset")
    k = min(args.n, len(ds.x_test))
    meta = {"dataset": ds.name, "n": k, "source": f"the first {k} test images", "command": command_line()}
    save_examples(ds.x_test[:k], ds.y_test[:k], meta, args.bundle / EXAMPLES_FILE)
    print(f"wrote {args.bundle / EXAMPLES_FILE}: {k} test images")


def cmd_latent_map(args):
    pipe = Pipeline(bundle_on_device(args))
    t0 = time.perf_counter()
    if pipe.bundle.file(MAP_FILE) is not None:
        raise ValueError(f"{args.bundle}: already has a stored map; delete {MAP_FILE}.safetensors to refit")
    tensors, meta = build_latent_map(pipe, args.refined_points, args.points, progress=printed_progress(args))
    meta |= {"wall_s": round(time.perf_counter() - t0, 1), "command": command_line()}
    save_tensors(tensors, meta, args.bundle / f"{MAP_FILE}.safetensors")
    print(
        f"wrote {args.bundle / MAP_FILE}.safetensors: {len(tensors['xy'])} points, "
        f"{len(meta['settings'])} LFR settings, in {meta['wall_s']} s"
    )


def cmd_overshoot(args):
    pipe = Pipeline(bundle_on_device(args))
    if not pipe.bundle.has("lfr"):
        raise ValueError(f"{args.bundle}: has no LFR to overshoot")
    t0 = time.perf_counter()
    tensors, meta = overshoot_tensors(pipe, scorer_for(pipe.bundle, args.data_dir), args.n, args.seed)
    meta |= {
        "wall_s": round(time.perf_counter() - t0, 1),
        "command": command_line(),
        "date": time.strftime("%Y-%m-%d"),
    }
    save_tensors(tensors, meta, args.bundle / f"{OVERSHOOT_FILE}.safetensors")
    scores = ", ".join(f"t = {f:g}: {q:.3f}" for f, q in zip(meta["factors"], meta["quality"][1:]))
    print(
        f"wrote {args.bundle / OVERSHOOT_FILE}.safetensors in {meta['wall_s']} s: "
        f"base {meta['quality'][0]:.3f}, {scores}"
    )


def store_measurement(args, name: str, t0: float, **payload) -> None:
    """Write BUNDLE/NAME as JSON with its provenance (command, date, n, seed, wall time) and payload."""
    out = {
        "command": command_line(),
        "date": time.strftime("%Y-%m-%d"),
        "n": args.n,
        "seed": args.seed,
        "wall_s": round(time.perf_counter() - t0, 1),
        **payload,
    }
    (args.bundle / name).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.bundle / name} in {out['wall_s']} s")


def printed_progress(args):
    return None if args.quiet else lambda f, text: print(f"{f:4.0%} {text}", flush=True)


def cmd_sweep(args):
    bundle = bundle_on_device(args)
    pipe = Pipeline(bundle)
    alpha = pipe.resolve(Settings(mode="none")).alpha
    t0 = time.perf_counter()
    score = scorer_for(bundle, args.data_dir)
    if args.alphas:  # the α × NFE map instead of the NFE curves
        found = alpha_nfe_map(pipe, score, args.n, args.seed, args.alphas, progress=printed_progress(args))
        store_measurement(args, ALPHA_MAP_FILE, t0, map=found)
        return
    stages = args.refiners or ("lfr", "dfr")
    stored = load_sweep(bundle) if args.refiners else None
    if args.refiners and (
        stored is None or (stored["n"], stored["seed"], stored["alpha"]) != (args.n, args.seed, alpha)
    ):
        raise ValueError(f"--refiners: {bundle.path / SWEEP_FILE} must exist with the same --n, --seed, α")
    if args.same_as:  # the sibling's solves would repeat exactly: take its curves
        if not args.refiners:
            raise ValueError("--same-as needs --refiners: which curves to take")
        sibling = sibling_sweep(bundle, Bundle(args.same_as), stages, args.n, args.seed, alpha)
        sweep, taken = sibling["sweep"], {m: f"{sibling['command']} (as {args.same_as})" for m in stages}
    else:

        def check_base(metrics):  # before the refiners' rows are solved: the same draws as stored?
            if stored is not None and not same_metrics(stored["sweep"]["metrics"]["base"], metrics):
                raise ValueError(f"--refiners: the base row differs from {bundle.path / SWEEP_FILE}'s")

        progress = printed_progress(args)
        sweep = nfe_sweep(
            pipe,
            score,
            args.n,
            args.seed,
            alpha=alpha,
            progress=progress,
            stages=stages,
            check_base=check_base,
        )
        taken = {}
    kept = {}
    if args.refiners:  # the other curves stay as stored, measured on the same draws
        sweep = merge_sweep(stored["sweep"], sweep, stages)
        others = [m for m in ("lfr", "dfr") if m not in stages]
        kept = {"kept": {m: stored.get("kept", {}).get(m, stored["command"]) for m in others} | taken}
    store_measurement(args, SWEEP_FILE, t0, alpha=alpha, sweep=sweep, **kept)


def cmd_worth_nfe(args):
    bundle = bundle_on_device(args)
    t0 = time.perf_counter()
    score = scorer_for(bundle, args.data_dir)
    rows = worth_its_nfe(Pipeline(bundle), score, args.n, args.seed, progress=printed_progress(args))
    store_measurement(args, BUDGET_FILE, t0, metric=score.primary, rows=rows)


def settings_from(args) -> Settings:
    return Settings(
        mode=args.mode,
        base_solver=args.base_solver,
        base_nfe=args.base_nfe,
        alpha=args.alpha,
        lfr_variant=args.lfr_variant,
        lfr_solver=args.lfr_solver,
        lfr_nfe=args.lfr_nfe,
        dfr_variant=args.dfr_variant,
        dfr_solver=args.dfr_solver,
        dfr_nfe=args.dfr_nfe,
    )


def cmd_sample(args):
    """Draw --n samples; under torchrun each rank runs its rows of the batch (the same prior, labels
    and refiner noise as one process draws) and rank 0 gathers them and writes the file."""
    pipe = Pipeline(Bundle(args.bundle).flows_to(resolve_device(args.device)))
    rows = distributed.rows_of(args.n) if distributed.launched() else None
    st = pipe.run(args.n, args.seed, settings_from(args), label=args.label, rows=rows)
    final = distributed.gather_rows(st.final, args.n)
    if not distributed.is_main():
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".npy":  # the raw samples, for anyone's own metric
        np.save(args.out, final.float().numpy())
    else:
        picture(final).save(args.out)
    print(f"wrote {args.out}: {args.n} samples, mode {st.settings.mode}, NFE {st.nfe}")


def bundle_on_device(args) -> Bundle:
    """The --bundle with its flow networks on --device (feature extractors and metrics stay on the CPU)."""
    return Bundle(args.bundle).flows_to(resolve_device(args.device))


def cmd_evaluate(args):
    t0 = time.perf_counter()
    bundle, device = bundle_on_device(args), resolve_device(args.device)
    inception = None
    if args.inception_weights or os.environ.get(WEIGHTS_ENV):
        inception = {
            "weights": args.inception_weights,
            "n_reference": args.inception_reference,
            "device": device,
        }
    rows = evaluate_bundle(
        bundle, args.n, args.seed, args.data_dir, progress=not args.quiet, inception=inception
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    for name, r in rows.items():
        score = f"fid {r['fid']:8.3f}" if "fid" in r else f"energy {r['energy']:.4f}"
        score += f"  fid2 {r['fid2']:8.3f}" if "fid2" in r else ""
        score += f"  fid-inception {r['fid_inception']:8.3f}" if "fid_inception" in r else ""
        mem = f"  memorisation {r['memorisation_ratio']:.3f}" if "memorisation_ratio" in r else ""
        print(f"{name:20s} {score}  extra NFE {r['extra_nfe']:3d} ({r['solver']}){mem}")
    print(f"wrote {args.out} in {time.perf_counter() - t0:.1f} s")


# ----------------------------------------------------------------------------- parser
# torchrun's own parser reads an abbreviated "--n" after "-m bfr_core" as its --nnodes/--nproc_per_node
# ("ambiguous option"), so every --n has a spelling torchrun leaves alone.
COUNT_ALIAS = ("--count",)


def add_draw_args(p, n: int) -> None:
    """--n (how many samples) and --seed (which prior draws), for commands that sample and measure."""
    p.add_argument("--n", *COUNT_ALIAS, type=positive_int, default=n)
    p.add_argument("--seed", type=int, default=0)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)  # accepted before or after the command
    common.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS,
        help="directory with MNIST/Fashion-MNIST IDX files (or set BFR_DATA_DIR)",
    )
    common.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")
    ap = argparse.ArgumentParser(
        prog="python -m bfr_core",
        parents=[common],
        description="BFR Explorer: bias-correcting flow refiners.",
    )
    # No ap.set_defaults(quiet=...): parents share action objects, so it would reset the
    # subcommands' SUPPRESS.
    sub = ap.add_subparsers(dest="command", required=True)

    def command(name: str, help: str, func, bundle: bool = True) -> argparse.ArgumentParser:
        """A subcommand that runs ``func(args)``; with ``bundle``, it takes the required --bundle DIR."""
        p = sub.add_parser(name, help=help, parents=[common])
        if bundle:
            p.add_argument("--bundle", type=Path, required=True)
        p.set_defaults(func=func)
        return p

    p = command("train-base", "train the base flow-matching generator", cmd_train_base, bundle=False)
    p.add_argument("--dataset", choices=DATASETS, required=True)
    p.add_argument("--out", type=Path, required=True, help="bundle directory")
    p.add_argument("--unconditional", action="store_true", help="ignore labels")
    p.add_argument("--sigma", type=float, default=0.0, help="path noise σ")
    p.add_argument(
        "--leak",
        type=leak_fraction,
        default=0.0,
        help="train from sources √(1-l²)·ε + l·x but sample from pure N(0, I): a signal-leak bias",
    )
    add_snapshot_arg(p, "OUT/snapshots/base_stepSTEP/base.safetensors")
    add_training_args(p, 256)
    add_sampling_args(p, "rk4", 20)

    p = command(
        "train-classifier",
        "train a metric feature extractor (classifier) for the bundle's dataset",
        cmd_train_classifier,
    )
    p.add_argument(
        "--name",
        choices=FEATURE_EXTRACTORS,
        default="classifier",
        help="classifier: the bundle's metric; classifier2: an independent second metric "
        "(train it with another --arch, --seed and augmentation)",
    )
    p.add_argument(
        "--arch",
        choices=["cnn", "cnn-wide", "mlp"],
        default=None,
        help="network family (default: cnn for 28x28 images, mlp for small ones; cnn-wide: 48 channels, "
        "64 features)",
    )
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        default=None,
        help="the data to classify (default: the bundle base's; give it to train before the base exists)",
    )
    p.add_argument("--noise", type=float, default=0.3, help="std of training-time input noise")
    p.add_argument("--max-shift", type=int, default=1, help="random shift in pixels at training time")
    add_training_args(p, 256, velocity_net=False)

    p = command(
        "invert", "invert real training data: z_b = G⁻¹(x), cached in latents.safetensors", cmd_invert
    )
    p.add_argument(
        "--n", *COUNT_ALIAS, type=positive_int, default=None, help="images to invert (default all)"
    )
    add_name_arg(p, "latents")
    add_sampling_args(p, "rk4", 20)
    p.add_argument("--chunk", type=positive_int, default=2000, help="images per saved step (resumable)")
    p.add_argument("--resume", action="store_true", help="continue a killed run after its last saved chunk")
    add_device_args(p)

    for refiner in REFINERS.values():  # each refiner file defines its own training command
        refiner.add_command(sub, [common])

    command(
        "reference",
        "store the test split's features in the bundle, so scoring needs no dataset",
        cmd_reference,
    )

    p = command(
        "inception-reference",
        "store the Inception-FID statistics (μ, Σ) of the training and test images in the bundle",
        cmd_inception_reference,
    )
    p.add_argument("--inception-weights", type=Path, default=None, help="converted weights (see inception)")
    p.add_argument(
        "--max-images", type=positive_int, default=None, help="the first N of each split (default: all)"
    )
    add_device_args(p)

    p = command(
        "examples",
        "store a few test images in the bundle, for the app's Inspect tab without a dataset",
        cmd_examples,
    )
    p.add_argument("--n", *COUNT_ALIAS, type=positive_int, default=256)

    p = command(
        "latent-map",
        "fit the Latents view's UMAP once, over every setting of its sliders, and store it in the bundle",
        cmd_latent_map,
    )
    p.add_argument(
        "--refined-points",
        type=positive_int,
        default=MAP_REFINED_BUDGET,
        help="refined latents on the map over all its LFR settings (the default setting shows all its draws)",
    )
    p.add_argument(
        "--points",
        type=positive_int,
        default=MAP_POINTS,
        help="prior draws and biased latents on the map (each); every setting refines that many draws",
    )
    add_device_args(p)

    p = command(
        "sweep",
        "measure quality against refiner NFE and store it in the bundle (Over-refinement view)",
        cmd_sweep,
    )
    add_draw_args(p, 2000)
    p.add_argument(
        "--alphas",
        type=probability,
        nargs="+",
        default=None,
        help=f"map quality over these α × LFR NFE instead (α-conditioned LFR; stored as {ALPHA_MAP_FILE})",
    )
    p.add_argument(
        "--refiners",
        choices=["lfr", "dfr"],
        nargs="+",
        default=None,
        help=f"measure only these refiners' curves (after one of them was retrained) and keep the others "
        f"stored in {SWEEP_FILE}, which must hold the same --n, --seed and α",
    )
    p.add_argument(
        "--same-as",
        type=Path,
        default=None,
        help="with --refiners: take those curves from this sibling bundle's stored sweep instead of "
        "measuring them, when its base and those refiners are the very same files (shared.json)",
    )
    add_device_args(p)

    p = command(
        "overshoot",
        "integrate the LFR past t = 1 at every factor of the app's slider and store the view in the bundle",
        cmd_overshoot,
    )
    p.add_argument(
        "--n", *COUNT_ALIAS, type=positive_int, default=200, help="samples scored (the app's view: 200)"
    )
    p.add_argument("--seed", type=int, default=1, help="prior draws (the app's view: seed 1)")
    add_device_args(p)

    p = command(
        "worth-nfe",
        "compare, at equal total NFE, more base steps with each refiner and store it in the bundle",
        cmd_worth_nfe,
    )
    add_draw_args(p, 1000)
    add_device_args(p)

    p = command("sample", "write a PNG of samples", cmd_sample)
    add_draw_args(p, 64)
    p.add_argument("--label", type=int, default=None, help="class to draw (conditional bases)")
    p.add_argument("--mode", choices=MODES, default="lfr+dfr")
    p.add_argument("--lfr-variant", choices=list(variants("latent")), default="ode")
    p.add_argument("--dfr-variant", choices=list(variants("data")), default="dfr")
    p.add_argument("--alpha", type=probability, default=None)
    for stage in ("base", "lfr", "dfr"):
        p.add_argument(f"--{stage}-solver", choices=FIXED_SOLVERS, default=None)
        p.add_argument(f"--{stage}-nfe", type=positive_int, default=None)
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="a .png grid, or .npy for the raw float32 samples (N×C×H×W in [-1, 1], not clipped)",
    )
    add_device_args(p)

    p = command("evaluate", "metrics of base / LFR / DFR against the held-out test split", cmd_evaluate)
    add_draw_args(p, 2000)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--inception-weights",
        type=Path,
        help=f"converted FID Inception weights (scripts/convert_inception_weights.py; or ${WEIGHTS_ENV}): "
        "adds fid_inception, the FID papers quote",
    )
    p.add_argument(
        "--inception-reference",
        type=positive_int,
        default=10_000,
        help="test images the Inception FID compares against (slow on a CPU: ~5.7 GFLOP per image)",
    )
    add_device_args(p)
    return ap


DISTRIBUTED_COMMANDS = ("train-base", "train-classifier", "invert", "sample") + tuple(
    r.command for r in REFINERS.values()
)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.quiet, args.data_dir = getattr(args, "quiet", False), getattr(args, "data_dir", None)
    if distributed.launched() and args.command not in DISTRIBUTED_COMMANDS:
        print(
            f"error: {args.command} runs as one process; under torchrun only "
            f"{', '.join(DISTRIBUTED_COMMANDS)} do",
            file=sys.stderr,
        )
        return 2
    try:
        distributed.init()
        args.func(args)
        distributed.finish()
    except (
        DataError,
        CheckpointError,
        ValueError,
        DivergenceError,
        FloatingPointError,
        FileNotFoundError,
    ) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\ninterrupted; the last checkpoint is kept: rerun the same command with --resume",
            file=sys.stderr,
        )
        return 130
    return 0
