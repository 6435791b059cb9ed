"""Is integrating the LFR past t = 1 a real gain, or one seed's luck?

    python -m bench.overshoot_seeds --bundle checkpoints/mnist-leak [--n 1000] [--seeds 0 1 2]
        [--factors 1 1.25 1.5]

The stored overshoot view (``bfr overshoot``: 200 samples, one seed, one metric) showed mnist-leak scoring
better at t = 1.25 than at the trained t = 1. Here every factor refines the same prior draws of each seed
(``sweep.lfr_overshoots``: Euler steps of 0.25, one batched decode) and is scored by FID under the bundle's
classifier and under its independent classifier2, against the last 10,000 *training* images (the test
split plays no part: a factor chosen here does not tune a reported number). A factor counts as better than
t = 1 by ``bfr_core.views.stop_rule``'s rule with t = 1 as the default: both metrics improve on every seed
and the mean paired improvement of each exceeds the seed-to-seed spread of the t = 1 score. Writes
bench/results/overshoot_seeds_BUNDLE.json and .md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

from bfr_core.eval.validation import validation_scorer
from bfr_core.pipeline import Pipeline
from bfr_core.views.stop_rule import choose, paired_verdict
from bfr_core.views.sweep import lfr_overshoots

ROOT = Path(__file__).resolve().parent.parent


class Primary:
    """``lfr_overshoots``' scorer: FID under the bundle's classifier (the other metric is scored here)."""

    primary = "fid"

    def __init__(self, score):
        self.score = score

    def __call__(self, x, labels) -> dict:
        return {"fid": self.score.one("fid", x)}


REFERENCES = {"validation": "last 10000 training images", "test": "10000 test images"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--factors", type=float, nargs="+", default=[1.0, 1.25, 1.5])
    ap.add_argument(
        "--split",
        choices=("validation", "test"),
        default="validation",
        help="score against the last 10,000 training images (choose here) or the test split (check a choice)",
    )
    args = ap.parse_args()
    if 1.0 not in args.factors:
        ap.error("--factors must include 1 (the trained t = 1 every factor is compared with)")
    pipe = Pipeline(args.bundle)
    score = validation_scorer(pipe.bundle, args.split)
    rows = {"base": []} | {f"{f:g}": [] for f in args.factors}
    t0 = time.perf_counter()
    for seed in args.seeds:
        got = lfr_overshoots(pipe, Primary(score), args.n, seed, tuple(args.factors))
        rows["base"].append(score(got["base"][0]))
        for f, (x, _, _) in got["factors"].items():
            rows[f"{f:g}"].append(score(x))
        print(f"seed {seed}: " + ", ".join(f"{k} {v[-1]}" for k, v in rows.items()), flush=True)
    metrics = score.metrics
    out = {
        "command": shlex.join(["python", "-m", "bench.overshoot_seeds", *sys.argv[1:]]),
        "reference": REFERENCES[args.split],
        "n": args.n,
        "seeds": args.seeds,
        "wall_s": round(time.perf_counter() - t0, 1),
        "scores": {k: [{m: round(r[m], 3) for m in metrics} for r in v] for k, v in rows.items()},
        "versus_t1": {
            f"{f:g}": paired_verdict(rows["1"], rows[f"{f:g}"], metrics) for f in args.factors if f != 1.0
        },
    }
    out["stop_rule"] = choose(out["versus_t1"], metrics, default="1")
    suffix = "" if args.split == "validation" else "_test"
    dest = ROOT / "bench" / "results" / f"overshoot_seeds_{args.bundle.name}{suffix}.json"
    dest.write_text(json.dumps(out, indent=1) + "\n")
    dest.with_suffix(".md").write_text(markdown(out, args.bundle.name, metrics))
    print(f"wrote {dest} and .md")


def markdown(out: dict, name: str, metrics: tuple) -> str:
    """The results as a table of mean ± standard deviation over seeds, and the verdict per factor."""
    lines = [
        f"# Overshoot over seeds: {name}",
        "",
        f"`{out['command']}` — {out['n']} samples per seed, seeds {out['seeds']}, FID against the "
        f"{out['reference']} ({out['wall_s']} s). The stop rule picks t = {out['stop_rule']}.",
        "",
        "| t | " + " | ".join(f"{m} (mean ± sd over seeds)" for m in metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    for k, v in out["scores"].items():
        cells = [
            f"{statistics.mean(r[m] for r in v):.3f} ± {statistics.stdev(r[m] for r in v):.3f}"
            for m in metrics
        ]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines.append("")
    for f, v in out["versus_t1"].items():
        detail = "; ".join(
            f"{m} paired gain {v[m]['mean_gain']} (t = 1 sd {v[m]['default_spread']})" for m in metrics
        )
        lines.append(f"- t = {f} vs t = 1: **{'better' if v['counts'] else 'not shown better'}** — {detail}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
