"""BFR vs training-free noise injection (SDEdit-style) at matched extra NFE, over seeds.

    python bench/baselines.py --bundle checkpoints/digits --n 2000 --seeds 0 1 2

Every row refines the same base samples (base at the bundle's default solver/NFE) and is
measured against the held-out test split. Writes bench/results/<bundle>_baselines.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent

from bfr_core.baselines import sdedit
from bfr_core.data import load_dataset
from bfr_core.metrics import image_metrics, image_reference
from bfr_core.pipeline import Pipeline, Settings

ROWS = [  # (name, extra NFE, how)
    ("lfr rk4x1", 4, ("lfr", "rk4", 4)), ("dfr rk4x1", 4, ("dfr", "rk4", 4)),
    ("sdedit t*=0.25 euler x4", 4, ("sdedit", 0.25, "euler", 4)), ("sdedit t*=0.5 rk4x1", 4, ("sdedit", 0.5, "rk4", 4)),
    ("lfr euler x10", 10, ("lfr", "euler", 10)), ("dfr euler x10", 10, ("dfr", "euler", 10)),
    ("sdedit t*=0.5 euler x10", 10, ("sdedit", 0.5, "euler", 10)),
    ("sdedit t*=0.25 euler x10", 10, ("sdedit", 0.25, "euler", 10)),
]


def run_row(pipe, base_st, how, seed):
    if how[0] == "sdedit":
        _, t_star, solver, nfe = how
        return sdedit(pipe.bundle.models["base"], base_st.base, base_st.labels, t_star, solver, nfe,
                      torch.Generator().manual_seed(1000 + seed))[0]
    mode, solver, nfe = how
    return pipe.run(len(base_st.z), seed, Settings(mode=mode, **{f"{mode}_solver": solver, f"{mode}_nfe": nfe}),
                    z=base_st.z).final


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    pipe = Pipeline(args.bundle)
    ds = load_dataset(pipe.bundle.dataset)
    ref = image_reference(pipe.bundle.models["classifier"], ds.x_test, ds.x_train)
    names = ["base"] + [r[0] for r in ROWS]
    assert len(set(names)) == len(names), "row names must be unique"
    fids = {name: [] for name in names}
    for seed in args.seeds:
        st = pipe.run(args.n, seed, Settings(mode="none"))
        fids["base"].append(image_metrics(ref, st.base, st.labels)["fid"])
        for name, _, how in ROWS:
            fids[name].append(image_metrics(ref, run_row(pipe, st, how, seed), st.labels)["fid"])
    extra = {"base": 0, **{r[0]: r[1] for r in ROWS}}
    command = "python bench/baselines.py " + " ".join(sys.argv[1:])
    lines = [f"Command: `{command}` (FID vs the held-out test split, mean ± std over seeds {args.seeds})", "",
             "| method | extra NFE | FID |", "|---|---|---|"]
    for name, v in fids.items():
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        lines.append(f"| {name} | {extra[name]} | {statistics.mean(v):.3f} ± {sd:.3f} |")
    out = ROOT / "bench" / "results" / f"{args.bundle.name}_baselines"
    out.with_suffix(".json").write_text(json.dumps({"command": command, "n": args.n, "fid": fids, "extra_nfe": extra}, indent=1))
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
