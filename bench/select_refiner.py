"""Choose between refiner files on a validation split, never on the test images.

    python -m bench.select_refiner --bundle checkpoints/mnist --role dfr \
        --candidate checkpoints/mnist/dfr.safetensors --candidate other/dfr.safetensors

Every candidate refines the same n prior draws (seed 7, balanced classes; the benchmark uses
seed 0) with the bundle's default solver and α: a DFR candidate refines the base images
G(z), an LFR (or reflow) candidate refines z and the base draws G(F(z)). Each is scored by
FID under the bundle's classifier (and its independent classifier2, as ``fid2``, when it has one) against the
last 10,000 *training* images. The test split, which bench/report.py reports on, plays no part,
so a choice made here does not tune the reported numbers. Writes bench/results/select_<role>_<bundle>.json.
``--setting rk4:8`` (repeatable) scores every candidate at those solver:NFE instead of its recorded default,
each as the row "FILE @ SOLVER NFE".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent

from bfr_core.generative.ode import FIXED_SOLVERS
from bfr_core.bundle import Bundle
from bfr_core.pipeline import Pipeline, Settings, refiner_settings
from bfr_core.refiners import REFINERS
from bfr_core.eval.runner import run_rows
from bfr_core.eval.validation import VALIDATION, validation_scorer

CHUNK = 500  # base and candidates run in the same chunks, so each chunk has the same labels


def solver_setting(s: str) -> tuple[str, int]:
    """ "rk4:8" → ("rk4", 8): a fixed-step solver and its network evaluations."""
    solver, _, nfe = s.partition(":")
    if solver not in FIXED_SOLVERS or not nfe.isdigit() or int(nfe) < 1:
        raise argparse.ArgumentTypeError(f"a setting is SOLVER:NFE with SOLVER in {FIXED_SOLVERS}, got {s!r}")
    return solver, int(nfe)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument(
        "--role", choices=list(REFINERS), default="dfr", help="the registered refiner the candidates are"
    )
    ap.add_argument("--candidate", type=Path, action="append", required=True, help="a refiner file (repeat)")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--setting",
        type=solver_setting,
        action="append",
        default=None,
        help="SOLVER:NFE to run every candidate at (repeat); default: each candidate's recorded one",
    )
    ap.add_argument(
        "--dfr-clip",
        choices=["card", "on", "off"],
        default="card",
        help="clip DFR images to [-1, 1] as the bundle card says (default), always, or never",
    )
    args = ap.parse_args(argv)
    bundle = Bundle(args.bundle)
    if args.dfr_clip != "card":
        bundle.card = {**bundle.card, "dfr_clip": args.dfr_clip == "on"}
    score = validation_scorer(bundle)

    out = {
        "command": "python -m bench.select_refiner " + " ".join(sys.argv[1:] if argv is None else argv),
        "n": args.n,
        "seed": args.seed,
        "reference": f"last {VALIDATION} training images",
        "role": args.role,
        "dfr_clip": bool(bundle.card.get("dfr_clip")),
        "candidates": {},
    }
    refiner = REFINERS[args.role]
    rows, pipes = {"base": Settings(mode="none")}, {}
    for path in args.candidate:
        pipe = Pipeline(bundle.with_model(args.role, path))
        for solver, nfe in args.setting or [(None, None)]:
            name = str(path) if solver is None else f"{path} @ {solver} {nfe}"
            pipes[name] = pipe
            rows[name] = pipe.resolve(refiner_settings(refiner, solver, nfe))
    for name, run in run_rows(Pipeline(bundle), rows, args.n, args.seed, chunk=CHUNK, pipes=pipes):
        if name == "base":
            base_scores = score(run.x)
            out.update({f"base_{m}": v for m, v in base_scores.items()})
            continue
        solver, nfe = run.settings.solver(refiner.stage)
        out["candidates"][name] = got = {
            **score(run.x),
            "alpha": run.settings.alpha if refiner.space == "latent" else None,
            "solver": f"{solver} NFE {nfe}",
            "wall_s": run.wall_s,
        }
        line = "  ".join(f"{m} {got[m]:.3f} (base {base_scores[m]:.3f})" for m in score.metrics)
        print(f"{name:60s} {line}")
    dest = args.out or ROOT / "bench" / "results" / f"select_{args.role}_{args.bundle.name}.json"
    dest.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
