"""The commands that store what the app reads: references, examples, the latent map, the NFE sweep, the
α × NFE map, the overshoot, the stop rule and the equal-NFE comparison."""

from __future__ import annotations

import json
import time


from bfr_core.views.budget import BUDGET_FILE, worth_its_nfe
from bfr_core.infra.device import resolve_device
from bfr_core.infra.checkpoint import (
    save_tensors,
)
from bfr_core.cli.commands import (
    command_line,
)
from bfr_core.infra.data import load_dataset
from bfr_core.eval.evaluate import scorer_for
from bfr_core.views.latent_view import MAP_FILE, build_latent_map
from bfr_core.cli.sampling import bundle_on_device
from bfr_core.views.bias_plane import PLANE_FILE, build_bias_plane
from bfr_core.bundle import FEATURE_EXTRACTORS, Bundle
from bfr_core.pipeline import Pipeline, Settings
from bfr_core.eval.reference import FILE as REFERENCE_FILE
from bfr_core.eval.reference import reference_from_data, save_reference
from bfr_core.views.roundtrip import EXAMPLES_FILE, save_examples
from bfr_core.views.sweep import (
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
from bfr_core.eval.validation import validation_scorer
from bfr_core.views.stop_rule import STOP_RULE_FILE, measure
from bfr_core.views.alpha_suggestion import SUGGESTION_FILE, suggest_alpha
from bfr_core.eval.inception import REFERENCE_FILE as INCEPTION_FILE
from bfr_core.infra.dataset import random_rows
from bfr_core.eval.inception import load_inception, reference_stats, weights_path


# ----------------------------------------------------------------------------- commands


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


def image_dataset(args, needs: str):
    """(the bundle, its dataset) for a command that ``needs`` images; a ValueError names a point-cloud one."""
    bundle = Bundle(args.bundle)
    ds = load_dataset(bundle.dataset, args.data_dir)
    if not ds.is_image:
        raise ValueError(f"{bundle.path}: {needs} an image dataset; {ds.name} is not one")
    return bundle, ds


def cmd_inception_reference(args):
    _, ds = image_dataset(args, "Inception statistics need")
    net = load_inception(args.inception_weights, resolve_device(args.device))
    t0 = time.perf_counter()
    images = {
        "train": random_rows(ds.x_train, args.max_images),
        "test": random_rows(ds.x_test, args.max_images),
    }
    tensors = reference_stats(net, images)
    meta = {
        "dataset": ds.name,
        "n": {split: len(x) for split, x in images.items()},
        "rows": "a uniform random draw of each split (random_rows, seed 0); all of it when n covers it",
        "weights": weights_path(args.inception_weights).name,
        "protocol": "torch-fidelity: 8-bit levels, TF1 bilinear resize to 299, (q - 128) / 128",
        "device": str(net.Conv2d_1a_3x3.conv.weight.device),
        "wall_s": round(time.perf_counter() - t0, 1),
        "command": command_line(),
    }
    save_tensors(tensors, meta, args.bundle / f"{INCEPTION_FILE}.safetensors")
    print(f"wrote {args.bundle / INCEPTION_FILE}.safetensors: {meta['n']} images, {meta['wall_s']} s")


def cmd_examples(args):
    _, ds = image_dataset(args, "examples are images and need")
    k = min(args.n, len(ds.x_test))
    meta = {"dataset": ds.name, "n": k, "source": f"the first {k} test images", "command": command_line()}
    save_examples(ds.x_test[:k], ds.y_test[:k], meta, args.bundle / EXAMPLES_FILE)
    print(f"wrote {args.bundle / EXAMPLES_FILE}: {k} test images")


def stored_file(args, name: str, build) -> tuple[dict, dict]:
    """Run ``build(pipe, progress)`` on the bundle's pipeline, stamp the metadata it returns with the wall
    time and this command, and save the tensors as BUNDLE/NAME.safetensors; returns (tensors, meta)."""
    pipe = Pipeline(bundle_on_device(args))
    t0 = time.perf_counter()
    tensors, meta = build(pipe, printed_progress(args))
    meta |= {"wall_s": round(time.perf_counter() - t0, 1), "command": command_line()}
    save_tensors(tensors, meta, args.bundle / f"{name}.safetensors")
    return tensors, meta


def cmd_latent_map(args):
    def build(pipe, progress):
        if pipe.bundle.file(MAP_FILE) is not None:
            raise ValueError(
                f"{args.bundle}: already has a stored map; delete {MAP_FILE}.safetensors to refit"
            )
        return build_latent_map(pipe, args.refined_points, args.points, progress=progress)

    tensors, meta = stored_file(args, MAP_FILE, build)
    print(
        f"wrote {args.bundle / MAP_FILE}.safetensors: {len(tensors['xy'])} points, "
        f"{len(meta['settings'])} LFR settings, in {meta['wall_s']} s"
    )


def cmd_bias_plane(args):
    _, meta = stored_file(
        args, PLANE_FILE, lambda pipe, progress: build_bias_plane(pipe, args.points, progress)
    )
    print(
        f"wrote {args.bundle / PLANE_FILE}.safetensors: {meta['points']} draws per cloud, "
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
        **({"seed": args.seed} if hasattr(args, "seed") else {"seeds": args.seeds}),
        "wall_s": round(time.perf_counter() - t0, 1),
        **payload,
    }
    (args.bundle / name).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.bundle / name} in {out['wall_s']} s")


def cmd_stop_rule(args):
    pipe = Pipeline(bundle_on_device(args))
    if not pipe.bundle.has("lfr"):
        raise ValueError(f"{args.bundle}: has no LFR to stop")
    if len(set(args.seeds)) < 2:
        raise ValueError("--seeds: the rule needs at least two different seeds to know the seed spread")
    t0 = time.perf_counter()
    score = validation_scorer(pipe.bundle, "validation", args.data_dir)
    found = measure(pipe, score, args.n, args.seeds, progress=printed_progress(args))
    store_measurement(args, STOP_RULE_FILE, t0, reference=score.reference, **found)
    print(f"the stop rule picks LFR {found['choice']} (paper's default: {found['default']})")


def cmd_suggest_alpha(args):
    bundle = Bundle(args.bundle)
    if bundle.latents is None:
        raise ValueError(f"{args.bundle}: has no inverted latents (run `bfr invert --bundle {args.bundle}`)")
    t0 = time.perf_counter()
    found = suggest_alpha(bundle.latents["z"], seed=args.seed, points=args.n)
    store_measurement(args, SUGGESTION_FILE, t0, **found)
    shown = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in found["estimates"].items())
    print(f"suggested α = {found['alpha']:g} ({found['suggested'].replace('_', ' ')}; estimates: {shown})")


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
