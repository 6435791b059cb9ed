"""Compute cost of one Refine request (the library call behind the app's button).

    python -m bench.refine_cost --bundle checkpoints/digits [--n 16] [--repeats 10]

Times Pipeline.run at the bundle's default settings for each mode (median of ``repeats``)
and writes bench/results/refine_cost_<bundle>.json. Cost depends on the architecture, not
on the weights, so a smoke-trained bundle measures the cost of a fully trained one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent

from bfr_core.pipeline import Pipeline, Settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--name", default=None, help="name for the results file (default: the bundle's folder)")
    args = ap.parse_args()
    pipe = Pipeline(args.bundle)
    net = pipe.bundle.meta["base"]["net"]
    report = {
        "command": "python -m bench.refine_cost " + " ".join(sys.argv[1:]),
        "n": args.n,
        "torch_threads": torch.get_num_threads(),
        "base_net": net,
        "median_s": {},
    }
    for mode in ("none", "lfr", "dfr", "lfr+dfr"):
        pipe.run(args.n, 0, Settings(mode=mode))  # warm-up
        times = []
        for r in range(args.repeats):
            t = time.perf_counter()
            st = pipe.run(args.n, r, Settings(mode=mode))
            times.append(time.perf_counter() - t)
        report["median_s"][mode] = {"seconds": round(statistics.median(times), 3), "nfe": st.nfe}
    out = ROOT / "bench" / "results" / f"refine_cost_{args.name or args.bundle.name}.json"
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report["median_s"], indent=1))


if __name__ == "__main__":
    main()
