"""Command line: ``python -m bfr_core <command> --help``.

Every command is thin over the library and records its own command line, step count and
wall time in the files it writes. Errors print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


from bfr_core.infra.checkpoint import (
    CheckpointError,
)
from bfr_core.infra import distributed
from bfr_core.cli.commands import (
    add_device_args,
    add_sampling_args,
    add_name_arg,
    add_snapshot_arg,
    add_training_args,
    leak_fraction,
    record_invocation,
    positive_int,
    probability,
)
from bfr_core.infra.data import DATASETS
from bfr_core.infra.dataset import DataError
from bfr_core.generative.ode import FIXED_SOLVERS, DivergenceError
from bfr_core.eval.inception import WEIGHTS_ENV
from bfr_core.views.latent_view import MAP_POINTS, MAP_REFINED_BUDGET
from bfr_core.bundle import FEATURE_EXTRACTORS
from bfr_core.pipeline import MODES, Pipeline
from bfr_core.refiners import REFINERS, variants
from bfr_core.views.sweep import (
    ALPHA_MAP_FILE,
    SWEEP_FILE,
)


# ----------------------------------------------------------------------------- commands
from bfr_core.cli.stages import cmd_invert, cmd_keep_latents, cmd_train_base, cmd_train_classifier
from bfr_core.views.bias_plane import PLANE_POINTS
from bfr_core.cli.stored import (
    cmd_bias_plane,
    cmd_examples,
    cmd_inception_reference,
    cmd_latent_map,
    cmd_overshoot,
    cmd_stop_rule,
    cmd_suggest_alpha,
    cmd_reference,
    cmd_sweep,
    cmd_worth_nfe,
)
from bfr_core.cli.sampling import cmd_evaluate, cmd_sample
from bfr_core.cli.build import cmd_build
from bfr_core.recipes import RECIPES


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
    p = command(
        "keep-latents",
        "keep only the first N cached latents (a bundle over the file-size cap)",
        cmd_keep_latents,
    )
    p.add_argument("--n", *COUNT_ALIAS, type=positive_int, required=True, help="latents to keep")

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
        "--max-images",
        type=positive_int,
        default=None,
        help="N of each split drawn at random, seed 0 (default: all)",
    )
    add_device_args(p)

    p = command(
        "examples",
        "store a few test images in the bundle, for the app's Inspect tab without a dataset",
        cmd_examples,
    )
    p.add_argument("--n", *COUNT_ALIAS, type=positive_int, default=256)

    p = command(
        "bias-plane",
        "store the Latents view's bias plane (‖z‖/√d × RMS where biased latents vary least) at every LFR NFE",
        cmd_bias_plane,
    )
    p.add_argument(
        "--points", type=positive_int, default=PLANE_POINTS, help="draws of each cloud on the plane"
    )
    add_device_args(p)

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
        "stop-rule",
        "choose where to end the LFR (the paper's one RK4 step to t = 1, or another end) on held-out "
        "training images over seeds under two metrics, and store the choice and its evidence in the bundle",
        cmd_stop_rule,
    )
    p.add_argument("--n", *COUNT_ALIAS, type=positive_int, default=1000, help="samples scored per seed")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="prior draws (at least two)")
    add_device_args(p)

    p = command(
        "suggest-alpha",
        "estimate the LFR's mixing coefficient α from the inverted latents alone (no LFR trained) and store "
        "the estimate and the latent statistics behind it in the bundle",
        cmd_suggest_alpha,
    )
    p.add_argument("--n", *COUNT_ALIAS, type=positive_int, default=1000, help="inverted latents used")
    p.add_argument("--seed", type=int, default=0, help="the prior and mixing draws")

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

    p = command(
        "build", "build a bundle from its recipe (bfr_core/recipes.py), timing every stage", None, False
    )
    p.set_defaults(func=lambda args: cmd_build(args, run=main))
    p.add_argument("recipe", choices=RECIPES)
    p.add_argument("--out", type=Path, default=None, help="bundle directory (default checkpoints/RECIPE)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="change a recipe setting")
    p.add_argument("--smoke", action="store_true", help="the recipe's smoke settings: every stage in minutes")
    p.add_argument("--stages", nargs="+", metavar="STAGE", help="run only these stages of the recipe")
    p.add_argument(
        "--resume", action="store_true", help="skip finished stages, continue interrupted trainings"
    )
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda: the recipe's GPU settings")
    p.add_argument("--dry-run", action="store_true", help="print the stages' commands, run nothing")
    return ap


DISTRIBUTED_COMMANDS = ("train-base", "train-classifier", "invert", "sample") + tuple(
    r.command for r in REFINERS.values()
)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    record_invocation(argv)
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
        args.func(args, Pipeline(args.bundle)) if getattr(args, "on_pipeline", False) else args.func(args)
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
